package eventlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Querier is what readers of the log need: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Bound limits a read to a point in the past: events up to and including Position, or
// recorded at or before Time. The zero Bound reads everything.
type Bound struct {
	Position *Position
	Time     *time.Time
}

// Read returns up to limit events after `after`, in global order, from transactions
// that ended before every transaction still running began, so that no event that might
// still commit at a lower position is passed over.
func Read(ctx context.Context, q Querier, after Position, limit int, until Bound) ([]Event, error) {
	var untilXID, untilOff any
	var untilTime any
	if until.Position != nil {
		untilXID, untilOff = until.Position.XID, until.Position.Offset
	}
	if until.Time != nil {
		untilTime = *until.Time
	}
	rows, err := q.Query(ctx, `SELECT `+eventColumns+` FROM eventlog.events
		WHERE (transaction_id, "offset") > ($1::xid8, $2::bigint)
		  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		  AND ($4::xid8 IS NULL OR (transaction_id, "offset") <= ($4::xid8, $5::bigint))
		  AND ($6::timestamptz IS NULL OR recorded_at <= $6::timestamptz)
		ORDER BY transaction_id, "offset"
		LIMIT $3`, after.XID, after.Offset, limit, untilXID, untilOff, untilTime)
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	defer rows.Close()
	out := make([]Event, 0, min(limit, 4096))
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	return out, nil
}

// Head returns the position of the last event readers can see now, and how many
// events precede it (an estimate from the offset sequence, for progress reports).
func Head(ctx context.Context, q Querier) (Position, error) {
	var p Position
	err := q.QueryRow(ctx, `SELECT transaction_id, "offset" FROM eventlog.events
		WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY transaction_id DESC, "offset" DESC LIMIT 1`).Scan(&p.XID, &p.Offset)
	if errors.Is(err, pgx.ErrNoRows) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("log head: %w", err)
	}
	return p, nil
}

// Count returns the number of events after `after` and up to until.
func Count(ctx context.Context, q Querier, after Position, until Bound) (int64, error) {
	var untilXID, untilOff, untilTime any
	if until.Position != nil {
		untilXID, untilOff = until.Position.XID, until.Position.Offset
	}
	if until.Time != nil {
		untilTime = *until.Time
	}
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM eventlog.events
		WHERE (transaction_id, "offset") > ($1::xid8, $2::bigint)
		  AND ($3::xid8 IS NULL OR (transaction_id, "offset") <= ($3::xid8, $4::bigint))
		  AND ($5::timestamptz IS NULL OR recorded_at <= $5::timestamptz)`,
		after.XID, after.Offset, untilXID, untilOff, untilTime).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count log: %w", err)
	}
	return n, nil
}

// Last returns the position of the last committed event up to until, whether or not
// readers can see it yet (a transaction still running may hold it back); the zero
// Position when there is none. A rebuild reads until it has passed it.
func Last(ctx context.Context, q Querier, until Bound) (Position, error) {
	var untilXID, untilOff, untilTime any
	if until.Position != nil {
		untilXID, untilOff = until.Position.XID, until.Position.Offset
	}
	if until.Time != nil {
		untilTime = *until.Time
	}
	var p Position
	err := q.QueryRow(ctx, `SELECT transaction_id, "offset" FROM eventlog.events
		WHERE ($1::xid8 IS NULL OR (transaction_id, "offset") <= ($1::xid8, $2::bigint))
		  AND ($3::timestamptz IS NULL OR recorded_at <= $3::timestamptz)
		ORDER BY transaction_id DESC, "offset" DESC LIMIT 1`, untilXID, untilOff, untilTime).Scan(&p.XID, &p.Offset)
	if errors.Is(err, pgx.ErrNoRows) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("last position: %w", err)
	}
	return p, nil
}

// StreamVersion returns the stream's current version (0 when it has no event). A
// command that decides on state other writers may change reads it first and appends
// with it as NewEvent.ExpectVersion: if another writer appended to the stream after
// the read, the append fails with ErrVersionConflict and the command runs again.
func StreamVersion(ctx context.Context, q Querier, stream string) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, `SELECT COALESCE(max(stream_version), 0) FROM eventlog.events WHERE stream = $1`, stream).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("stream version of %s: %w", stream, err)
	}
	return v, nil
}
