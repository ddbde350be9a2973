package eventlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Position is an event's place in the global order: the id of the transaction that
// appended it, then its offset. Offsets alone are not ordered by commit (a transaction
// that takes offset 7 can commit after one that took offset 8); readers only take rows
// of transactions older than every running one, so the pair is a gap-free order.
type Position struct {
	XID    uint64
	Offset int64
}

// Less reports whether p comes before q in the global order.
func (p Position) Less(q Position) bool {
	if p.XID != q.XID {
		return p.XID < q.XID
	}
	return p.Offset < q.Offset
}

// IsZero reports whether p is the position before the first event.
func (p Position) IsZero() bool { return p == Position{} }

// String formats p as "XID:OFFSET", the form ParsePosition reads.
func (p Position) String() string {
	return strconv.FormatUint(p.XID, 10) + ":" + strconv.FormatInt(p.Offset, 10)
}

// ParsePosition reads the "XID:OFFSET" form of a position.
func ParsePosition(s string) (Position, error) {
	x, o, ok := strings.Cut(s, ":")
	if !ok {
		return Position{}, fmt.Errorf("position %q: want XID:OFFSET", s)
	}
	xid, err := strconv.ParseUint(x, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("position %q: bad transaction id: %w", s, err)
	}
	off, err := strconv.ParseInt(o, 10, 64)
	if err != nil || off < 0 {
		return Position{}, fmt.Errorf("position %q: bad offset", s)
	}
	return Position{XID: xid, Offset: off}, nil
}

// Origin says where the write that caused an event came from.
type Origin string

// The origins of a write.
const (
	OriginClient     Origin = "client"
	OriginFederation Origin = "federation"
	OriginAdmin      Origin = "admin"
	OriginSystem     Origin = "system"
)

// Metadata describes who caused an event and why. It is stored with the event and
// covered by its hash.
type Metadata struct {
	Actor         string `json:"actor,omitempty"`
	Origin        Origin `json:"origin"`
	RequestID     string `json:"request_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	// Appservice is the application service that made the request, acting as Actor.
	Appservice string `json:"appservice,omitempty"`
}

// Version expectations for NewEvent.ExpectVersion.
const (
	// AnyVersion appends whatever the stream's current version is. Two concurrent
	// appends to one stream still cannot both take the same version: one fails with
	// ErrVersionConflict.
	AnyVersion int64 = -1
	// NoStream requires that the stream has no event yet.
	NoStream int64 = 0
)

// ErrVersionConflict means the stream moved on since the caller decided: another
// writer appended to it first. The caller re-reads its state and retries the command.
var ErrVersionConflict = errors.New("stream version conflict")

// NewEvent is an event to append.
type NewEvent struct {
	Stream string
	Type   string
	// Data is marshalled to JSON as the payload.
	Data any
	// ExpectVersion is the stream version the caller's decision was based on, or
	// AnyVersion. Only the first event of each stream in one Append is checked.
	ExpectVersion int64
}

// Event is an event as stored in the log.
type Event struct {
	Position Position
	ID       string
	Stream   string
	Version  int64
	Type     string
	Payload  json.RawMessage
	// RawMeta is the JSON of the event's Metadata, as stored; Meta decodes it.
	RawMeta    json.RawMessage
	RecordedAt time.Time
	PrevHash   []byte
	Hash       []byte
}

// Meta decodes the event's metadata. Readers that need it decode it on demand: most
// (projectors) never do, and decoding every event's would slow replays.
func (e Event) Meta() (Metadata, error) {
	var m Metadata
	if err := json.Unmarshal(e.RawMeta, &m); err != nil {
		return Metadata{}, fmt.Errorf("metadata of %s: %w", e.Position, err)
	}
	return m, nil
}

// Decode unmarshals the payload into v.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Payload, v); err != nil {
		return fmt.Errorf("decode %s at %s: %w", e.Type, e.Position, err)
	}
	return nil
}
