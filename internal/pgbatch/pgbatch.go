// Package pgbatch queues the statements of sqlc's generated :exec methods into one
// pgx.Batch, so that code applying thousands of events (projectors, the write model
// during a replay) sends them in one pipelined round trip, in order.
package pgbatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB implements sqlc's DBTX for statements without results by queueing them.
type DB struct {
	b pgx.Batch
}

// ErrNotBatchable is returned by Query and QueryRow: only statements without results
// can be queued.
var ErrNotBatchable = errors.New("pgbatch: only statements without results can be queued")

// Exec queues sql.
func (d *DB) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	d.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

// Query fails with ErrNotBatchable.
func (d *DB) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, ErrNotBatchable
}

// QueryRow returns a row whose Scan fails with ErrNotBatchable.
func (d *DB) QueryRow(context.Context, string, ...any) pgx.Row {
	return errRow{}
}

type errRow struct{}

func (errRow) Scan(...any) error { return ErrNotBatchable }

// Len is the number of queued statements.
func (d *DB) Len() int { return d.b.Len() }

// Send runs the queued statements on tx, in order, and empties the queue.
func (d *DB) Send(ctx context.Context, tx pgx.Tx) error {
	if d.b.Len() == 0 {
		return nil
	}
	err := tx.SendBatch(ctx, &d.b).Close()
	d.b = pgx.Batch{}
	if err != nil {
		return fmt.Errorf("batch: %w", err)
	}
	return nil
}

// Pipeline implements sqlc's DBTX so that statements without results (Exec) are
// queued and sent together with the next query that returns a row, in one round trip:
// for example a lock and then the reads it protects. PostgreSQL runs them in order, each
// with its own snapshot.
type Pipeline struct {
	Tx pgx.Tx
	b  pgx.Batch
}

// Exec queues sql.
func (p *Pipeline) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	p.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

// Query fails with ErrNotBatchable.
func (p *Pipeline) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, ErrNotBatchable
}

// QueryRow sends the queued statements and sql in one batch and returns sql's row.
func (p *Pipeline) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	b := p.b // the results refer to the batch's queries until closed
	p.b = pgx.Batch{}
	n := b.Len()
	b.Queue(sql, args...)
	br := p.Tx.SendBatch(ctx, &b)
	for range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return errRowOf{err}
		}
	}
	return &batchRow{br: br}
}

type errRowOf struct{ err error }

func (r errRowOf) Scan(...any) error { return r.err }

type batchRow struct{ br pgx.BatchResults }

func (r *batchRow) Scan(dest ...any) error {
	err := r.br.QueryRow().Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

// Batch returns the queued statements.
func (d *DB) Batch() *pgx.Batch { return &d.b }
