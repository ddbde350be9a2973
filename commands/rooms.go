package commands

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"
	"maunium.net/go/mautrix/id"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pdus"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/writedb"
)

// Errors of room commands.
var (
	ErrRoomNotFound           = errors.New("room not found")
	ErrEventNotFound          = errors.New("event not found")
	ErrUnsupportedRoomVersion = errors.New("unsupported room version")
	ErrAliasInUse             = errors.New("room alias already in use")
	ErrEventTooLarge          = errors.New("event is larger than 65536 bytes")
	ErrGuestsForbidden        = errors.New("guests may not join this room")
	ErrRemoteRoom             = errors.New("the room is on another server: joining over federation is not supported yet")
)

// ForbiddenError is a room operation the rules (auth rules, power levels, membership)
// do not allow.
type ForbiddenError struct{ Reason string }

func (e *ForbiddenError) Error() string { return e.Reason }

func forbidden(format string, args ...any) error {
	return &ForbiddenError{Reason: fmt.Sprintf(format, args...)}
}

// maxPDUSize is the largest event the spec allows (server-server API, "Size limits").
const maxPDUSize = 65536

// maxPrevEvents bounds an event's prev_events.
const maxPrevEvents = 10

func (c *Commands) signer() pdus.Signer {
	return pdus.Signer{ServerName: c.cfg.ServerName, KeyID: c.cfg.SigningKeyID, Key: c.cfg.SigningKey}
}

// serverKey returns this server's public key for the auth rules' signature checks
// (restricted joins authorised by this server).
func (c *Commands) serverKey(server, keyID string) ed25519.PublicKey {
	if server == c.cfg.ServerName && keyID == c.cfg.SigningKeyID && c.cfg.SigningKey != nil {
		return c.cfg.SigningKey.Public().(ed25519.PublicKey)
	}
	return nil
}

// txnRef is the client transaction a local send belongs to.
type txnRef struct {
	DeviceID, Scope, TxnID string
}

// room builds the events of one room inside a command's transaction. It holds the
// room's lock, so the room's events are built one at a time, each new event's
// prev_events are the room's single forward extremity, and the log orders the room's
// events as they were built (the transaction gets its ID at its first write, after the
// lock).
type room struct {
	c           *Commands
	tx          pgx.Tx
	id, version string
	depth       int64
	published   bool // listed in the room directory
	extremities []pdus.Ref
	state       map[pdus.StateKey]*pdus.Event // nil value: known to be absent
	news        []eventlog.NewEvent
	built       []*pdus.Event
	// head is the version of the room's stream when the command opened it; whole is
	// false when the room has more extremities than one event takes as prev_events
	// (see remember).
	head  int64
	hash  []byte
	whole bool
}

// opening is what a command asks of openRoom besides the room: state it will need
// (loaded in the same round trip) and its client transaction, if any.
type opening struct {
	preload []pdus.StateKey
	user    string
	txn     *txnRef
}

// openRoom takes roomID's lock for the rest of tx and reads what building the next
// event needs, all in one round trip. txnEvent is the event an earlier attempt of the
// same client transaction created ("" when none).
func (c *Commands) openRoom(ctx context.Context, tx pgx.Tx, roomID string, o opening) (r *room, txnEvent string, err error) {
	p := &pgbatch.Pipeline{Tx: tx}
	if err := c.q.RoomLock(ctx, p, roomID); err != nil {
		return nil, "", fmt.Errorf("lock room %s: %w", roomID, err)
	}
	memo := c.rooms.get(roomID)
	params := writedb.RoomOpenParams{RoomID: roomID, KnownVersion: -1, UserID: o.user,
		Types: make([]string, 0, len(o.preload)), StateKeys: make([]string, 0, len(o.preload)), Cached: make([]bool, 0, len(o.preload))}
	if memo != nil {
		params.KnownVersion = memo.head
	}
	for _, k := range o.preload {
		params.Types = append(params.Types, k.Type)
		params.StateKeys = append(params.StateKeys, k.StateKey)
		cached := false
		if memo != nil {
			_, cached = memo.state[k]
		}
		params.Cached = append(params.Cached, cached)
	}
	if o.txn != nil {
		params.DeviceID, params.Scope, params.TxnID = o.txn.DeviceID, o.txn.Scope, o.txn.TxnID
	}
	row, err := c.q.RoomOpen(ctx, p, params)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", ErrRoomNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("open room %s: %w", roomID, err)
	}
	r = &room{c: c, tx: tx, id: roomID, version: row.RoomVersion, depth: row.MaxDepth, published: row.Published,
		head: row.HeadVersion, hash: row.HeadHash, whole: true}
	if row.HeadVersion > 0 {
		knowHead(ctx, eventlog.RoomStream(roomID), eventlog.StreamHead{Version: row.HeadVersion, Hash: row.HeadHash})
	}
	onCommit(ctx, r.remember)
	if memo != nil && memo.head == row.HeadVersion {
		// Nothing was appended to the room since this process last wrote to it.
		r.extremities = memo.extremities
		r.state = maps.Clone(memo.state)
	} else {
		r.state = map[pdus.StateKey]*pdus.Event{}
		var ext []extremity
		if err := json.Unmarshal([]byte(row.Extremities), &ext); err != nil {
			return nil, "", fmt.Errorf("open room %s: %w", roomID, err)
		}
		if len(ext) > maxPrevEvents {
			ext = ext[:maxPrevEvents]
			r.whole = false
		}
		for _, x := range ext {
			ref := pdus.Ref{ID: x.EventID, Hash: x.Hash}
			if ref.Hash == nil && x.PDU != nil && r.rv().EventIDFormat() == id.EventIDFormatCustom {
				ev, err := pdus.Parse(r.version, x.EventID, x.PDU)
				if err != nil {
					return nil, "", err
				}
				ref = ev.Ref()
			}
			r.extremities = append(r.extremities, ref)
		}
	}
	for _, k := range o.preload {
		if _, known := r.state[k]; !known {
			r.state[k] = nil
		}
	}
	var state []struct {
		Type     string          `json:"type"`
		StateKey string          `json:"state_key"`
		EventID  string          `json:"event_id"`
		PDU      json.RawMessage `json:"pdu"`
	}
	if err := json.Unmarshal([]byte(row.State), &state); err != nil {
		return nil, "", fmt.Errorf("open room %s: %w", roomID, err)
	}
	for _, st := range state {
		ev, err := pdus.Parse(r.version, st.EventID, st.PDU)
		if err != nil {
			return nil, "", err
		}
		r.state[pdus.StateKey{Type: st.Type, StateKey: st.StateKey}] = ev
	}
	return r, row.TxnEvent, nil
}

// authKeys is the state an event from p needs for its auth events, plus the power
// levels: what a command preloads when it opens the room.
func authKeys(p pdus.Proto) []pdus.StateKey {
	keys := pdus.AuthSelection(pdus.DefaultVersion, p)
	return append(keys, pdus.StateKey{Type: "m.room.create"}, pdus.StateKey{Type: "m.room.power_levels"})
}

// newRoom starts a room that does not exist yet (createRoom).
func (c *Commands) newRoom(tx pgx.Tx, roomID, version string) *room {
	return &room{c: c, tx: tx, id: roomID, version: version, state: map[pdus.StateKey]*pdus.Event{}}
}

// load reads the current state of keys not known yet.
func (r *room) load(ctx context.Context, keys []pdus.StateKey) error {
	var types, stateKeys []string
	for _, k := range keys {
		if _, known := r.state[k]; !known {
			types = append(types, k.Type)
			stateKeys = append(stateKeys, k.StateKey)
			r.state[k] = nil
		}
	}
	if len(types) == 0 || r.depth == 0 && len(r.extremities) == 0 {
		return nil
	}
	rows, err := r.c.q.RoomStateEvents(ctx, r.tx, writedb.RoomStateEventsParams{RoomID: r.id, Types: types, StateKeys: stateKeys})
	if err != nil {
		return fmt.Errorf("room state: %w", err)
	}
	for _, row := range rows {
		ev, err := pdus.Parse(r.version, row.EventID, []byte(row.Pdu))
		if err != nil {
			return err
		}
		r.state[pdus.StateKey{Type: row.Type, StateKey: row.StateKey}] = ev
	}
	return nil
}

// current returns the current state event (type, key), or nil.
func (r *room) current(ctx context.Context, typ, key string) (*pdus.Event, error) {
	k := pdus.StateKey{Type: typ, StateKey: key}
	if err := r.load(ctx, []pdus.StateKey{k}); err != nil {
		return nil, err
	}
	return r.state[k], nil
}

// membership returns user's current membership ("leave" when none).
func (r *room) membership(ctx context.Context, user string) (string, error) {
	ev, err := r.current(ctx, "m.room.member", user)
	if err != nil || ev == nil {
		return "leave", err
	}
	return ev.Membership(), nil
}

// levels returns the room's power levels.
func (r *room) levels(ctx context.Context) (pdus.Levels, error) {
	if err := r.load(ctx, []pdus.StateKey{{Type: "m.room.create"}, {Type: "m.room.power_levels"}}); err != nil {
		return pdus.Levels{}, err
	}
	return pdus.PowerLevels([]*pdus.Event{r.state[pdus.StateKey{Type: "m.room.create"}], r.state[pdus.StateKey{Type: "m.room.power_levels"}]}), nil
}

// add builds the next event of the room from p, checks it against the auth rules of
// the room version and queues it for appending.
func (r *room) add(ctx context.Context, p pdus.Proto, txn *txnRef) (*pdus.Event, error) {
	p.RoomID = r.id
	if p.OriginServerTS == 0 {
		p.OriginServerTS = r.c.now().UnixMilli()
	}
	keys := pdus.AuthSelection(r.version, p)
	if err := r.load(ctx, keys); err != nil {
		return nil, err
	}
	var auth []*pdus.Event
	for _, k := range keys {
		if ev := r.state[k]; ev != nil {
			auth = append(auth, ev)
		}
	}
	depth := r.depth + 1
	ev, err := pdus.Build(r.version, p, r.extremities, auth, depth, r.c.signer())
	if errors.Is(err, pdus.ErrBadContent) {
		return nil, &BadJSONError{Reason: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	if len(ev.Raw) > maxPDUSize {
		return nil, ErrEventTooLarge
	}
	if err := pdus.Authorize(ev, auth, r.c.serverKey); err != nil {
		return nil, &ForbiddenError{Reason: err.Error()}
	}
	r.depth = depth
	r.extremities = []pdus.Ref{ev.Ref()}
	if key, ok := ev.StateKey(); ok {
		r.state[pdus.StateKey{Type: ev.Type(), StateKey: key}] = ev
	}
	payload := eventlog.RoomEventAccepted{RoomID: r.id, EventID: ev.ID, RoomVersion: r.version, PDU: ev.Raw}
	if txn != nil {
		payload.TxnID, payload.DeviceID, payload.TxnScope = txn.TxnID, txn.DeviceID, txn.Scope
	}
	r.news = append(r.news, eventlog.NewEvent{Stream: eventlog.RoomStream(r.id), Type: eventlog.TypeRoomEventAccepted,
		Data: acceptedEvent{RoomEventAccepted: payload, ev: ev}, ExpectVersion: eventlog.AnyVersion})
	r.built = append(r.built, ev)
	return ev, nil
}

// rv is the room's version as mautrix knows it (its feature switches: Knocks,
// CreatorInContent, RedactsInContent...).
func (r *room) rv() id.RoomVersion { return id.RoomVersion(r.version) }

// content marshals v as event content.
func content(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with maps and structs of plain values
	}
	return b
}

func strPtr(s string) *string { return &s }
