package pgbatch_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func noMigrations(context.Context, string) error { return nil }

// tablePool returns a pool on an empty database that has one table, named table, of
// int keys n.
func tablePool(t *testing.T, table string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testkit.DB(t, noMigrations))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(context.Background(), "CREATE TABLE "+table+" (n int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	return pool
}

func TestLazyTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := tablePool(t, "t")
	count := func() int {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Committed: the first statement began the transaction; rows read to the end free
	// the connection for the next statement.
	tx, err := pgbatch.BeginLazy(ctx, pool, "BEGIN ISOLATION LEVEL REPEATABLE READ", "SET LOCAL synchronous_commit = off")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, "SELECT current_setting('synchronous_commit'), current_setting('transaction_isolation')")
	if err != nil {
		t.Fatal(err)
	}
	var sc, iso string
	for rows.Next() {
		if err := rows.Scan(&sc, &iso); err != nil {
			t.Fatal(err)
		}
	}
	if sc != "off" || iso != "repeatable read" {
		t.Fatalf("began with synchronous_commit=%s isolation=%s", sc, iso)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	// A savepoint rolled back keeps the rest.
	if err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
		if _, err := sp.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
			return err
		}
		return errors.New("undo")
	}); err == nil {
		t.Fatal("savepoint error lost")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d rows after commit, want 1", n)
	}

	// Rolled back, the first statement being a batch.
	tx, _ = pgbatch.BeginLazy(ctx, pool)
	var b pgx.Batch
	b.Queue("INSERT INTO t VALUES (3)")
	b.Queue("INSERT INTO t VALUES (4)")
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d rows after rollback, want 1", n)
	}

	// A failed statement fails the commit; an unused transaction commits nothing.
	tx, _ = pgbatch.BeginLazy(ctx, pool)
	if err := tx.QueryRow(ctx, "INSERT INTO t VALUES (1) RETURNING n").Scan(new(int)); err == nil {
		t.Fatal("duplicate key accepted")
	}
	if err := tx.Commit(ctx); !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Fatalf("commit after a failure: %v", err)
	}
	tx, _ = pgbatch.BeginLazy(ctx, pool)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); !errors.Is(err, pgx.ErrTxClosed) {
		t.Fatalf("second commit: %v", err)
	}
}
