package eventlog

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Log appends to the event log and reads it.
type Log struct {
	schema   SchemaAdapter
	notifier *Notifier
	wmLogger watermill.LoggerAdapter
	now      func() time.Time
}

// New returns a Log. notifier may be nil (nothing is woken after commits).
func New(logger *slog.Logger, notifier *Notifier) *Log {
	return &Log{
		schema:   SchemaAdapter{},
		notifier: notifier,
		wmLogger: watermill.NewSlogLogger(logger),
		now:      time.Now,
	}
}

// Append writes events in the caller's transaction through Watermill's SQL publisher
// and returns them as stored, positions included. Each stream's version and hash chain
// continue from its current head; if the head moved since the caller decided (see
// NewEvent.ExpectVersion), or a concurrent transaction appends to the same stream first,
// Append fails with ErrVersionConflict and the caller's transaction is unusable.
//
// The caller commits, then calls Committed so that subscribers wake at once.
func (l *Log) Append(ctx context.Context, tx pgx.Tx, meta Metadata, events ...NewEvent) ([]Event, error) {
	return l.AppendAfter(ctx, tx, meta, nil, events...)
}

// StreamHead is the version and hash of a stream's last event.
type StreamHead struct {
	Version int64
	Hash    []byte
}

// AppendAfter is Append for a caller that already read the heads of some of the
// streams (known), under a lock that keeps them from moving; the heads of the others
// are read as Append reads them. A wrong head makes the append fail (a version
// conflict) rather than break a chain.
func (l *Log) AppendAfter(ctx context.Context, tx pgx.Tx, meta Metadata, known map[string]StreamHead, events ...NewEvent) ([]Event, error) {
	out, msgs, err := l.prepare(ctx, tx, meta, known, events)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	exec := &returningExec{tx: tx}
	if err := l.publish(exec, msgs); err != nil {
		return nil, err
	}
	if err := exec.place(out); err != nil {
		return nil, err
	}
	return out, nil
}

// QueueAppend is AppendAfter for a caller that sends the append with its COMMIT: the
// INSERT is queued in b instead of run, so that the append, whatever else the caller
// queues after it and the commit go to PostgreSQL in one round trip. The events'
// positions are zero until b's results are read (the callback queued with the INSERT
// sets them); a version conflict then fails b with ErrVersionConflict.
func (l *Log) QueueAppend(ctx context.Context, tx pgx.Tx, b *pgx.Batch, meta Metadata, known map[string]StreamHead, events ...NewEvent) ([]Event, error) {
	out, msgs, err := l.prepare(ctx, tx, meta, known, events)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	if err := l.publish(&queueingExec{b: b, out: out}, msgs); err != nil {
		return nil, err
	}
	return out, nil
}

// prepare reads the heads of events' streams (those not known) and builds the events as
// they will be stored, with the Watermill messages that carry them.
func (l *Log) prepare(ctx context.Context, tx pgx.Tx, meta Metadata, known map[string]StreamHead, events []NewEvent) ([]Event, message.Messages, error) {
	if len(events) == 0 {
		return nil, nil, nil
	}
	rawMeta, err := json.Marshal(meta)
	if err != nil {
		return nil, nil, fmt.Errorf("append: metadata: %w", err)
	}
	recorded := l.now().UTC().Truncate(time.Microsecond)

	heads, err := streamHeads(ctx, tx, events, known)
	if err != nil {
		return nil, nil, err
	}
	checked := make(map[string]bool, len(heads))
	out := make([]Event, len(events))
	msgs := make(message.Messages, len(events))
	for i, ne := range events {
		h := heads[ne.Stream]
		if !checked[ne.Stream] {
			checked[ne.Stream] = true
			if ne.ExpectVersion != AnyVersion && ne.ExpectVersion != h.version {
				return nil, nil, fmt.Errorf("append to %s: expected version %d, stream is at %d: %w",
					ne.Stream, ne.ExpectVersion, h.version, ErrVersionConflict)
			}
		}
		payload, err := json.Marshal(ne.Data)
		if err != nil {
			return nil, nil, fmt.Errorf("append %s: payload: %w", ne.Type, err)
		}
		e := Event{
			ID:         uuid.NewString(),
			Stream:     ne.Stream,
			Version:    h.version + 1,
			Type:       ne.Type,
			Payload:    payload,
			RawMeta:    rawMeta,
			RecordedAt: recorded,
			PrevHash:   h.hash,
		}
		e.Hash = computeHash(e)
		h.version, h.hash = e.Version, e.Hash
		out[i] = e

		msg := message.NewMessage(e.ID, message.Payload(payload))
		msg.Metadata = message.Metadata{
			mdStream:     e.Stream,
			mdVersion:    strconv.FormatInt(e.Version, 10),
			mdType:       e.Type,
			mdMeta:       string(rawMeta),
			mdRecordedAt: recorded.Format(time.RFC3339Nano),
			mdPrevHash:   hex.EncodeToString(e.PrevHash),
			mdHash:       hex.EncodeToString(e.Hash),
		}
		msg.SetContext(ctx)
		msgs[i] = msg
	}
	return out, msgs, nil
}

// publish inserts msgs through Watermill's SQL publisher, executing with exec.
func (l *Log) publish(exec wsql.ContextExecutor, msgs message.Messages) error {
	pub, err := wsql.NewPublisher(exec, wsql.PublisherConfig{SchemaAdapter: l.schema}, l.wmLogger)
	if err != nil {
		return fmt.Errorf("append: publisher: %w", err)
	}
	if err := pub.Publish(Topic, msgs...); err != nil {
		return appendError(err)
	}
	return nil
}

// appendError is err of an INSERT into the log, a version conflict when a concurrent
// writer took the stream version first.
func appendError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "events_stream_stream_version_key" {
		return fmt.Errorf("append: %w", ErrVersionConflict)
	}
	return fmt.Errorf("append: %w", err)
}

// Committed tells subscribers that a transaction which appended events of types has
// ended. A rolled-back writer can have held back the readers' horizon too: it passes no
// types, which wakes every subscriber.
func (l *Log) Committed(types ...string) {
	if l.notifier != nil {
		l.notifier.Notify(types...)
	}
}

// TypesOf returns the distinct types of events, for Committed.
func TypesOf(events []Event) []string {
	var out []string
	for _, e := range events {
		if !slices.Contains(out, e.Type) {
			out = append(out, e.Type)
		}
	}
	return out
}

// returningExec is the ContextExecutor handed to Watermill's publisher: it runs the
// INSERT on the caller's transaction and keeps the positions it returns, so the append
// reports where its events landed without another round trip.
type returningExec struct {
	tx        pgx.Tx
	positions map[string]Position
}

var _ wsql.ContextExecutor = (*returningExec)(nil)

func (r *returningExec) ExecContext(ctx context.Context, query string, args ...any) (wsql.Result, error) {
	rows, err := r.tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	r.positions, err = scanPositions(rows)
	if err != nil {
		return nil, err
	}
	return wsql.PgxResult{CommandTag: rows.CommandTag()}, nil
}

// place sets the positions of out from what the INSERT returned.
func (r *returningExec) place(out []Event) error {
	return placePositions(out, r.positions)
}

func scanPositions(rows pgx.Rows) (map[string]Position, error) {
	positions := make(map[string]Position)
	for rows.Next() {
		var id string
		var p Position
		if err := rows.Scan(&id, &p.XID, &p.Offset); err != nil {
			return nil, err
		}
		positions[id] = p
	}
	return positions, rows.Err()
}

func placePositions(out []Event, positions map[string]Position) error {
	if len(positions) != len(out) {
		return fmt.Errorf("append: %d rows inserted for %d events", len(positions), len(out))
	}
	for i := range out {
		out[i].Position = positions[out[i].ID]
	}
	return nil
}

func (r *returningExec) QueryContext(ctx context.Context, query string, args ...any) (wsql.Rows, error) {
	rows, err := r.tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return wsql.PgxRows{Rows: rows}, nil
}

// queueingExec is the ContextExecutor of QueueAppend: it queues the INSERT in a batch,
// with a callback that sets out's positions from what the INSERT returns.
type queueingExec struct {
	b   *pgx.Batch
	out []Event
}

var _ wsql.ContextExecutor = (*queueingExec)(nil)

func (q *queueingExec) ExecContext(_ context.Context, query string, args ...any) (wsql.Result, error) {
	out := q.out
	q.b.Queue(query, args...).Fn = func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return appendError(err)
		}
		defer rows.Close()
		positions, err := scanPositions(rows)
		if err != nil {
			return appendError(err)
		}
		return placePositions(out, positions)
	}
	return wsql.PgxResult{}, nil
}

func (q *queueingExec) QueryContext(context.Context, string, ...any) (wsql.Rows, error) {
	return nil, errors.New("append: a queued append runs no queries")
}

// head is a stream's last version and hash.
type head struct {
	version int64
	hash    []byte
}

// streamHeads returns the head of every stream events go to, in one query however
// many streams there are (a stream without events has version 0).
func streamHeads(ctx context.Context, tx pgx.Tx, events []NewEvent, known map[string]StreamHead) (map[string]*head, error) {
	heads := make(map[string]*head, 1)
	var streams []string
	for _, ne := range events {
		if ne.Stream == "" || ne.Type == "" {
			return nil, errors.New("append: event without stream or type")
		}
		if heads[ne.Stream] == nil {
			if k, ok := known[ne.Stream]; ok {
				heads[ne.Stream] = &head{version: k.Version, hash: k.Hash}
				continue
			}
			heads[ne.Stream] = &head{}
			streams = append(streams, ne.Stream)
		}
	}
	if len(streams) == 0 {
		return heads, nil
	}
	if len(streams) == 1 {
		// The common case, and the cheapest query for it.
		h := heads[streams[0]]
		err := tx.QueryRow(ctx, `SELECT stream_version, hash FROM eventlog.events
			WHERE stream = $1 ORDER BY stream_version DESC LIMIT 1`, streams[0]).Scan(&h.version, &h.hash)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("append: head of %s: %w", streams[0], err)
		}
		return heads, nil
	}
	// Several streams: one index probe each, in one query (LATERAL ... LIMIT 1 walks
	// (stream, stream_version) backwards from the end).
	rows, err := tx.Query(ctx, `SELECT s.stream, h.stream_version, h.hash
		FROM unnest($1::text[]) AS s (stream),
		LATERAL (SELECT stream_version, hash FROM eventlog.events e
			WHERE e.stream = s.stream ORDER BY stream_version DESC LIMIT 1) AS h`, streams)
	if err != nil {
		return nil, fmt.Errorf("append: stream heads: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var stream string
		var h head
		if err := rows.Scan(&stream, &h.version, &h.hash); err != nil {
			return nil, fmt.Errorf("append: stream heads: %w", err)
		}
		heads[stream] = &h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("append: stream heads: %w", err)
	}
	return heads, nil
}
