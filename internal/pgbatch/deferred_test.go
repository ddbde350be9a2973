package pgbatch_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/internal/pgbatch"
)

func TestDeferred(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := tablePool(t, "d")
	count := func(q interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}) int {
		var n int
		if err := q.QueryRow(ctx, "SELECT count(*) FROM d").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	insert := func(tx pgx.Tx, ns ...int) error {
		var b pgbatch.DB
		for _, n := range ns {
			_, _ = b.Exec(ctx, "INSERT INTO d VALUES ($1)", n)
		}
		return b.Send(ctx, tx)
	}

	// Batches wait for the commit; a read sends them first, and sees them.
	tx, err := pgbatch.BeginLazy(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	var tail pgx.Batch
	d := &pgbatch.Deferred{Tx: tx, Tail: &tail}
	if err := insert(d, 1, 2); err != nil {
		t.Fatal(err)
	}
	if tail.Len() != 2 || count(pool) != 0 {
		t.Fatalf("after a deferred batch: %d queued, %d rows visible; want 2 queued, none stored", tail.Len(), count(pool))
	}
	if n := count(d); n != 2 || tail.Len() != 0 {
		t.Fatalf("a read in the transaction sees %d rows with %d still queued; want 2 and none", n, tail.Len())
	}
	if err := insert(d, 3); err != nil {
		t.Fatal(err)
	}
	if err := tx.CommitBatch(ctx, &tail); err != nil {
		t.Fatal(err)
	}
	if n := count(pool); n != 3 {
		t.Fatalf("%d rows committed, want 3", n)
	}

	// A deferred statement that fails fails the commit, and nothing of the transaction
	// stays.
	tx, err = pgbatch.BeginLazy(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	tail = pgx.Batch{}
	d = &pgbatch.Deferred{Tx: tx, Tail: &tail}
	if err := insert(d, 4); err != nil {
		t.Fatal(err)
	}
	if err := insert(d, 1); err != nil {
		t.Fatalf("a deferred batch failed before the commit: %v", err)
	}
	if err := tx.CommitBatch(ctx, &tail); err == nil {
		t.Fatal("commit of a duplicate key succeeded")
	}
	if n := count(pool); n != 3 {
		t.Fatalf("%d rows after the failed commit, want 3", n)
	}

	// Results of a deferred batch cannot be read.
	tx, err = pgbatch.BeginLazy(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	tail = pgx.Batch{}
	d = &pgbatch.Deferred{Tx: tx, Tail: &tail}
	var b pgx.Batch
	b.Queue("SELECT 1").QueryRow(func(pgx.Row) error { return nil })
	if err := d.SendBatch(ctx, &b).Close(); err == nil {
		t.Fatal("a deferred batch with a result callback was accepted")
	}
}
