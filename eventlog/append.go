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
	if len(events) == 0 {
		return nil, nil
	}
	rawMeta, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("append: metadata: %w", err)
	}
	recorded := l.now().UTC().Truncate(time.Microsecond)

	heads, err := streamHeads(ctx, tx, events, known)
	if err != nil {
		return nil, err
	}
	checked := make(map[string]bool, len(heads))
	out := make([]Event, len(events))
	msgs := make(message.Messages, len(events))
	for i, ne := range events {
		h := heads[ne.Stream]
		if !checked[ne.Stream] {
			checked[ne.Stream] = true
			if ne.ExpectVersion != AnyVersion && ne.ExpectVersion != h.version {
				return nil, fmt.Errorf("append to %s: expected version %d, stream is at %d: %w",
					ne.Stream, ne.ExpectVersion, h.version, ErrVersionConflict)
			}
		}
		payload, err := json.Marshal(ne.Data)
		if err != nil {
			return nil, fmt.Errorf("append %s: payload: %w", ne.Type, err)
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

	exec := &returningExec{tx: tx}
	pub, err := wsql.NewPublisher(exec, wsql.PublisherConfig{SchemaAdapter: l.schema}, l.wmLogger)
	if err != nil {
		return nil, fmt.Errorf("append: publisher: %w", err)
	}
	if err := pub.Publish(Topic, msgs...); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "events_stream_stream_version_key" {
			return nil, fmt.Errorf("append: %w", ErrVersionConflict)
		}
		return nil, fmt.Errorf("append: %w", err)
	}
	if len(exec.positions) != len(out) {
		return nil, fmt.Errorf("append: %d rows inserted for %d events", len(exec.positions), len(out))
	}
	for i := range out {
		out[i].Position = exec.positions[out[i].ID]
	}
	return out, nil
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
	r.positions = make(map[string]Position)
	for rows.Next() {
		var id string
		var p Position
		if err := rows.Scan(&id, &p.XID, &p.Offset); err != nil {
			return nil, err
		}
		r.positions[id] = p
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return wsql.PgxResult{CommandTag: rows.CommandTag()}, nil
}

func (r *returningExec) QueryContext(ctx context.Context, query string, args ...any) (wsql.Rows, error) {
	rows, err := r.tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return wsql.PgxRows{Rows: rows}, nil
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
