package eventlog

import (
	stdsql "database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Topic is the Watermill topic of the log. There is one: every event of every stream is
// on it, in one global order.
const Topic = "events"

// Keys of the Watermill message metadata that carry an event's columns.
const (
	mdStream     = "stream"
	mdVersion    = "stream_version"
	mdType       = "type"
	mdMeta       = "meta"
	mdRecordedAt = "recorded_at"
	mdPrevHash   = "prev_hash"
	mdHash       = "hash"
	mdXID        = "transaction_id"
	mdOffset     = "offset"
)

// eventColumns are selected, in this order, by every reader of the log.
const eventColumns = `transaction_id, "offset", uuid::text, stream, stream_version, type,
	payload::text, metadata::text, recorded_at, prev_hash, hash`

// SchemaAdapter maps Watermill messages to rows of eventlog.events and back. Its select
// is the row-comparison scan of the primary key after the consumer's checkpoint,
// bounded by the oldest running transaction so that no late-committing lower position is
// ever skipped.
type SchemaAdapter struct {
	// BatchSize is the number of rows one poll reads; 100 when zero.
	BatchSize int
	// Skip lists event types the consumer does not handle. A poll still reads
	// BatchSize rows, but hands over only the others, and the window's last row so
	// that the consumer's checkpoint moves past the whole window. Consumers that handle
	// a few types then neither receive nor decode the many rows of the others.
	Skip []string
	// Seen, if not nil, is set by every row a poll hands over to the number of rows the
	// poll read (handed over or skipped): BatchSize of them means more may be waiting.
	Seen *atomic.Int64
}

var _ wsql.SchemaAdapter = SchemaAdapter{}

// InsertQuery builds one multi-row INSERT returning each row's position.
func (s SchemaAdapter) InsertQuery(params wsql.InsertQueryParams) (wsql.Query, error) {
	if params.Topic != Topic {
		return wsql.Query{}, fmt.Errorf("unknown topic %q", params.Topic)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO eventlog.events
	(uuid, stream, stream_version, type, payload, metadata, recorded_at, prev_hash, hash) VALUES `)
	args := make([]any, 0, len(params.Msgs)*9)
	for i, m := range params.Msgs {
		if i > 0 {
			b.WriteByte(',')
		}
		n := len(args)
		fmt.Fprintf(&b, "($%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9)
		version, err := strconv.ParseInt(m.Metadata.Get(mdVersion), 10, 64)
		if err != nil {
			return wsql.Query{}, fmt.Errorf("message %s: bad stream version: %w", m.UUID, err)
		}
		recorded, err := time.Parse(time.RFC3339Nano, m.Metadata.Get(mdRecordedAt))
		if err != nil {
			return wsql.Query{}, fmt.Errorf("message %s: bad recorded time: %w", m.UUID, err)
		}
		prev, err := hex.DecodeString(m.Metadata.Get(mdPrevHash))
		if err != nil {
			return wsql.Query{}, fmt.Errorf("message %s: bad previous hash: %w", m.UUID, err)
		}
		hash, err := hex.DecodeString(m.Metadata.Get(mdHash))
		if err != nil || len(hash) == 0 {
			return wsql.Query{}, fmt.Errorf("message %s: bad hash", m.UUID)
		}
		if len(prev) == 0 {
			prev = nil
		}
		args = append(args, m.UUID, m.Metadata.Get(mdStream), version, m.Metadata.Get(mdType),
			string(m.Payload), m.Metadata.Get(mdMeta), recorded, prev, hash)
	}
	b.WriteString(` RETURNING uuid::text, transaction_id, "offset"`)
	return wsql.Query{Query: b.String(), Args: args}, nil
}

// SelectQuery reads the next batch after the consumer group's checkpoint. The
// checkpoint comes from the OffsetsAdapter's NextOffsetQuery, as offset_acked and
// last_processed_transaction_id.
func (s SchemaAdapter) SelectQuery(params wsql.SelectQueryParams) (wsql.Query, error) {
	next, err := params.OffsetsAdapter.NextOffsetQuery(wsql.NextOffsetQueryParams{
		Topic: params.Topic, ConsumerGroup: params.ConsumerGroup,
	})
	if err != nil {
		return wsql.Query{}, err
	}
	batch := s.BatchSize
	if batch <= 0 {
		batch = 100
	}
	// The row comparison is an index condition on the primary key, so the scan starts
	// at the checkpoint instead of filtering the whole remaining log.
	window := `FROM eventlog.events
		WHERE (transaction_id, "offset") > (
				(SELECT last_processed_transaction_id FROM last_processed),
				(SELECT offset_acked FROM last_processed))
			AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY transaction_id, "offset"
		LIMIT ` + strconv.Itoa(batch)
	if len(s.Skip) == 0 {
		q := `WITH last_processed AS (` + next.Query + `)
		SELECT ` + eventColumns + `, 0::bigint ` + window
		return wsql.Query{Query: q, Args: next.Args}, nil
	}
	// The window is read narrow (position and type); only the rows handed over are
	// read whole, one index probe each: those of types not skipped, and the window's
	// last row, which carries the checkpoint past the others. (The LIMIT keeps the
	// planner from turning the probes into a merge join, which walks the whole index.)
	skip := "$" + strconv.Itoa(len(next.Args)+1) + "::text[]"
	q := `WITH last_processed AS (` + next.Query + `),
	picked AS (
		SELECT transaction_id, "offset", type, count(*) OVER () AS seen,
			row_number() OVER (ORDER BY transaction_id, "offset") AS n
		FROM (SELECT transaction_id, "offset", type ` + window + `) w)
	SELECT e.*, p.seen
	FROM picked p, LATERAL (SELECT ` + eventColumns + ` FROM eventlog.events e
		WHERE e.transaction_id = p.transaction_id AND e."offset" = p."offset" LIMIT 1) e
	WHERE NOT (p.type = ANY(` + skip + `)) OR p.n = p.seen
	ORDER BY p.transaction_id, p."offset"`
	return wsql.Query{Query: q, Args: append(slices.Clone(next.Args), s.Skip)}, nil
}

// UnmarshalMessage turns a row selected by SelectQuery into a Watermill message whose
// metadata carries every column; EventFromMessage reads it back.
func (s SchemaAdapter) UnmarshalMessage(params wsql.UnmarshalMessageParams) (wsql.Row, error) {
	var seen int64
	e, err := scanEvent(params.Row, &seen)
	if err != nil {
		return wsql.Row{}, err
	}
	if s.Seen != nil {
		s.Seen.Store(seen)
	}
	msg := message.NewMessage(e.ID, []byte(e.Payload))
	msg.Metadata = message.Metadata{
		mdStream:     e.Stream,
		mdVersion:    strconv.FormatInt(e.Version, 10),
		mdType:       e.Type,
		mdMeta:       string(e.RawMeta),
		mdRecordedAt: e.RecordedAt.Format(time.RFC3339Nano),
		mdPrevHash:   hex.EncodeToString(e.PrevHash),
		mdHash:       hex.EncodeToString(e.Hash),
		mdXID:        strconv.FormatUint(e.Position.XID, 10),
		mdOffset:     strconv.FormatInt(e.Position.Offset, 10),
	}
	return wsql.Row{
		Offset:    e.Position.Offset,
		UUID:      []byte(e.ID),
		Payload:   e.Payload,
		Msg:       msg,
		ExtraData: map[string]any{"transaction_id": e.Position.XID},
	}, nil
}

// SchemaInitializingQueries returns nothing: the table comes from a migration.
func (s SchemaAdapter) SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}

// SubscribeIsolationLevel is REPEATABLE READ: the poll's snapshot and the checkpoint it
// reads must agree.
func (s SchemaAdapter) SubscribeIsolationLevel() stdsql.IsolationLevel {
	return stdsql.LevelRepeatableRead
}

// EventFromMessage reads back an event delivered by a subscriber using SchemaAdapter.
func EventFromMessage(msg *message.Message) (Event, error) {
	md := msg.Metadata
	var e Event
	var err error
	e.ID = msg.UUID
	e.Stream = md.Get(mdStream)
	e.Type = md.Get(mdType)
	e.Payload = json.RawMessage(msg.Payload)
	e.RawMeta = json.RawMessage(md.Get(mdMeta))
	var errs []error
	if e.Version, err = strconv.ParseInt(md.Get(mdVersion), 10, 64); err != nil {
		errs = append(errs, err)
	}
	if e.RecordedAt, err = time.Parse(time.RFC3339Nano, md.Get(mdRecordedAt)); err != nil {
		errs = append(errs, err)
	}
	if e.PrevHash, err = hex.DecodeString(md.Get(mdPrevHash)); err != nil {
		errs = append(errs, err)
	}
	if len(e.PrevHash) == 0 {
		e.PrevHash = nil
	}
	if e.Hash, err = hex.DecodeString(md.Get(mdHash)); err != nil {
		errs = append(errs, err)
	}
	if e.Position.XID, err = strconv.ParseUint(md.Get(mdXID), 10, 64); err != nil {
		errs = append(errs, err)
	}
	if e.Position.Offset, err = strconv.ParseInt(md.Get(mdOffset), 10, 64); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Event{}, fmt.Errorf("message %s is not an event: %w", msg.UUID, err)
	}
	return e, nil
}

type scanner interface {
	Scan(dest ...any) error
}

// scanEvent scans a row of eventColumns, and of extra columns after them.
func scanEvent(row scanner, extra ...any) (Event, error) {
	var e Event
	var payload, meta string
	err := row.Scan(append([]any{&e.Position.XID, &e.Position.Offset, &e.ID, &e.Stream, &e.Version, &e.Type,
		&payload, &meta, &e.RecordedAt, &e.PrevHash, &e.Hash}, extra...)...)
	if err != nil {
		return Event{}, fmt.Errorf("scan event: %w", err)
	}
	e.Payload = json.RawMessage(payload)
	e.RawMeta = json.RawMessage(meta)
	e.RecordedAt = e.RecordedAt.UTC()
	return e, nil
}
