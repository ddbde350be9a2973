package pgbatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Deferred is a pgx.Tx whose batches are not sent but queued in Tail, for the caller to
// send with what it sends next (its COMMIT, with CommitBatch): a transaction's writes
// then cost no round trip of their own. Errors of the queued statements surface when
// Tail is sent. Any other statement sends Tail first, so that statements run in order
// and reads see the writes queued before them.
type Deferred struct {
	pgx.Tx
	Tail *pgx.Batch
}

// SendBatch queues b's statements in Tail. Their results cannot be read: the returned
// results report nothing, and statements with callbacks are refused.
func (d *Deferred) SendBatch(_ context.Context, b *pgx.Batch) pgx.BatchResults {
	for _, qq := range b.QueuedQueries {
		if qq.Fn != nil {
			return errResults{fmt.Errorf("pgbatch: a deferred batch cannot read results (%.40q)", qq.SQL)}
		}
	}
	d.Tail.QueuedQueries = append(d.Tail.QueuedQueries, b.QueuedQueries...)
	return deferredResults{}
}

// errDeferred is what reading the results of a deferred batch gives.
var errDeferred = errors.New("pgbatch: the results of a deferred batch cannot be read")

// deferredResults are a deferred batch's: nothing to close, nothing to read.
type deferredResults struct{}

func (deferredResults) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, nil }
func (deferredResults) Query() (pgx.Rows, error)         { return nil, errDeferred }
func (deferredResults) QueryRow() pgx.Row                { return errRowOf{errDeferred} }
func (deferredResults) Close() error                     { return nil }
func (deferredResults) Tx() pgx.Tx                       { return nil }

// send sends what Tail holds.
func (d *Deferred) send(ctx context.Context) error {
	if d.Tail.Len() == 0 {
		return nil
	}
	b := *d.Tail
	*d.Tail = pgx.Batch{}
	return d.Tx.SendBatch(ctx, &b).Close()
}

// Exec implements pgx.Tx.
func (d *Deferred) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := d.send(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return d.Tx.Exec(ctx, sql, args...)
}

// Query implements pgx.Tx.
func (d *Deferred) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := d.send(ctx); err != nil {
		return nil, err
	}
	return d.Tx.Query(ctx, sql, args...)
}

// QueryRow implements pgx.Tx.
func (d *Deferred) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := d.send(ctx); err != nil {
		return errRowOf{err}
	}
	return d.Tx.QueryRow(ctx, sql, args...)
}

// Begin implements pgx.Tx (a savepoint).
func (d *Deferred) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := d.send(ctx); err != nil {
		return nil, err
	}
	return d.Tx.Begin(ctx)
}

// CopyFrom implements pgx.Tx.
func (d *Deferred) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if err := d.send(ctx); err != nil {
		return 0, err
	}
	return d.Tx.CopyFrom(ctx, table, columns, src)
}

// Commit implements pgx.Tx.
func (d *Deferred) Commit(ctx context.Context) error {
	if err := d.send(ctx); err != nil {
		return err
	}
	return d.Tx.Commit(ctx)
}
