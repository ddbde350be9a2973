package projections

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
)

// beginner opens the transactions Watermill's subscriber polls and acks in. Its
// transactions remember the last position a handler applied and report it after a
// successful commit, which is when waiters may be told.
type beginner struct {
	pool     *pgxpool.Pool
	onCommit func(eventlog.Position)
	mem      *liveMemory // the projector's live memory, told of commits
}

var _ wsql.Beginner = (*beginner)(nil)

func (b *beginner) BeginTx(ctx context.Context, opts *stdsql.TxOptions) (wsql.Tx, error) {
	o := pgx.TxOptions{}
	if opts != nil {
		switch opts.Isolation {
		case stdsql.LevelRepeatableRead:
			o.IsoLevel = pgx.RepeatableRead
		case stdsql.LevelSerializable:
			o.IsoLevel = pgx.Serializable
		case stdsql.LevelDefault, stdsql.LevelReadCommitted:
			o.IsoLevel = pgx.ReadCommitted
		default:
			return nil, fmt.Errorf("isolation level %v not supported", opts.Isolation)
		}
	}
	// The poll's BEGIN goes with its first statement (the select). The poll must walk
	// the log's primary key from the checkpoint and stop after a window of rows; with
	// estimates from stale statistics (a log growing fast) the planner may instead
	// read every row after the checkpoint and sort them, which for a projector that
	// skips most types and polls rarely is hundreds of rows each time. Without sorts
	// it keeps to the index.
	tx, err := pgbatch.BeginLazy(ctx, b.pool, append(asyncBegin(o.IsoLevel), "SET LOCAL enable_sort = off")...)
	if err != nil {
		return nil, err
	}
	return &hookTx{tx: tx, ctx: ctx, onCommit: b.onCommit, mem: b.mem}, nil
}

func (b *beginner) ExecContext(ctx context.Context, q string, args ...any) (wsql.Result, error) {
	tag, err := b.pool.Exec(ctx, q, args...)
	return wsql.PgxResult{CommandTag: tag}, err
}

func (b *beginner) QueryContext(ctx context.Context, q string, args ...any) (wsql.Rows, error) {
	rows, err := b.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return wsql.PgxRows{Rows: rows}, nil
}

// asyncBegin starts a projector's transaction with synchronous_commit off. A projector's
// commit then does not wait for its WAL to reach the disk: read models are derived from
// the log, which commands append with synchronous commits, and a crash loses at most
// the last moments of projection, checkpoint and rows together (asynchronous commits
// stay atomic and in order), which the projector applies again from its checkpoint.
// Requests waiting to read their writes thus wait for one disk flush (the append's),
// not two.
func asyncBegin(iso pgx.TxIsoLevel) []string {
	q := "BEGIN"
	if iso != "" {
		q += " ISOLATION LEVEL " + string(iso)
	}
	return []string{q, "SET LOCAL synchronous_commit = off"}
}

type hookTx struct {
	tx       *pgbatch.LazyTx
	ctx      context.Context
	applied  eventlog.Position
	onCommit func(eventlog.Position)
	mem      *liveMemory
	// onFail is called when the commit fails: statements deferred to it may have.
	onFail func()
	// pending are the events of this poll the projector handles, not applied yet;
	// flush applies them.
	pending []eventlog.Event
	flush   func(ctx context.Context, t *hookTx, events []eventlog.Event) error
	// tail are statements sent with the COMMIT.
	tail pgx.Batch
}

// ExecContext runs q; the only statement the subscriber executes in a poll's
// transaction is its ack (the checkpoint moving past the poll's rows), and the poll's
// pending events are applied just before it.
func (t *hookTx) ExecContext(ctx context.Context, q string, args ...any) (wsql.Result, error) {
	if len(t.pending) > 0 {
		if err := t.flush(ctx, t, t.pending); err != nil {
			return nil, err
		}
		t.pending = nil
	}
	// The ack goes to the server with the COMMIT, in one round trip (Commit); the
	// subscriber only logs the rows it affected.
	t.tail.Queue(q, args...)
	return wsql.PgxResult{}, nil
}

func (t *hookTx) QueryContext(ctx context.Context, q string, args ...any) (wsql.Rows, error) {
	rows, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return wsql.PgxRows{Rows: rows}, nil
}

func (t *hookTx) Commit() error {
	if len(t.pending) > 0 {
		// The poll ended without its ack (cut short): nothing of it is kept.
		_ = t.tx.Rollback(context.WithoutCancel(t.ctx))
		return errors.New("poll ended with events not applied")
	}
	if err := t.tx.CommitBatch(context.WithoutCancel(t.ctx), &t.tail); err != nil {
		if t.onFail != nil {
			t.onFail()
		}
		if t.ctx.Err() != nil {
			// Shutting down: the poll was cut off and its transaction rolled back, so
			// nothing was applied; the next start delivers the same events again.
			return nil
		}
		return err
	}
	if t.mem != nil {
		t.mem.committed()
	}
	if !t.applied.IsZero() && t.onCommit != nil {
		t.onCommit(t.applied)
	}
	return nil
}

func (t *hookTx) Rollback() error {
	return t.tx.Rollback(context.WithoutCancel(t.ctx))
}
