package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/id"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pdus"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/projdb"
)

// Rooms projects rooms: their events in the order the server accepted them (timelines,
// single events, relations), their state through time (current state, state at any
// event, membership history), aliases, the directory, forgotten rooms and reports.
//
// Each room event gets the next stream_ordering, a dense number assigned in log order:
// a replay assigns the same numbers, so pagination tokens survive it.
type Rooms struct {
	// ServerName is this server's name: only its users get notifications here.
	ServerName string
	rules      *ruleCache
}

// NewRooms returns the rooms projector of the server serverName.
func NewRooms(serverName string) Rooms { return Rooms{ServerName: serverName, rules: newRuleCache()} }

// Name implements Projector.
func (Rooms) Name() string { return "rooms" }

// Version implements Projector.
func (Rooms) Version() int { return 5 }

// Tables implements Projector.
func (Rooms) Tables() []string {
	return []string{"rooms", "room_events", "room_state", "room_aliases", "rooms_forgotten", "event_reports", "erased_users",
		"event_push_actions", "room_event_pdus"}
}

// Handles implements Projector.
func (Rooms) Handles(t string) bool {
	switch t {
	case eventlog.TypeRoomEventAccepted, eventlog.TypeRoomPublished, eventlog.TypeAliasCreated, eventlog.TypeAliasDeleted,
		eventlog.TypeRoomForgotten, eventlog.TypeEventReported, eventlog.TypeAccountDeactivated:
		return true
	}
	return false
}

// roomsBatch is what Apply remembers within one batch: the rows it queued are not in
// the tables until the batch is sent, so later events of the batch read them here.
type roomsBatch struct {
	ctx      context.Context
	tx       pgx.Tx
	q        *projdb.Queries
	b        pgbatch.DB
	next     int64
	hv       map[string]string     // room → current history visibility
	state    map[stateKey]string   // current state event IDs
	events   map[string]batchEvent // events inserted in this batch
	versions map[string]string     // room → room version
	last     map[string]int64      // room → last stream ordering
	reports  int64
	parsed   map[int]parsedEvent // the batch's room events, by index
	redacted map[string]bool     // rooms with a redaction in the batch
}

type stateKey struct{ room, typ, key string }

type batchEvent struct {
	room, typ, version string
	event              []byte
	pdu                []byte // nil: not read
}

// Apply implements Projector. It reads what the batch's events need (the last
// ordering, the rooms' history visibility, the state their state events replace, the
// push rules' room state) in one round trip, unless the live memory has it all, then
// queues every row in one pipelined batch.
func (r Rooms) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	q := projdb.New()
	rb := &roomsBatch{ctx: ctx, tx: tx, q: q, hv: map[string]string{}, state: map[stateKey]string{},
		events: map[string]batchEvent{}, versions: map[string]string{}, last: map[string]int64{}, reports: -1,
		parsed: map[int]parsedEvent{}, redacted: map[string]bool{}}
	mem := liveMemoryOf(ctx, newRoomsMemory)
	var pre projdb.RoomsBatchPreludeParams
	pre.Rooms, pre.StateRooms, pre.StateTypes, pre.StateKeys = []string{}, []string{}, []string{}, []string{}
	seenRoom := map[string]bool{}
	push := map[string]*notifyRoom{}
	for i, e := range events {
		if e.Type != eventlog.TypeRoomEventAccepted {
			continue
		}
		var d eventlog.RoomEventAccepted
		if err := e.Decode(&d); err != nil {
			return fmt.Errorf("rooms: %w", err)
		}
		ev, err := pdus.Parse(d.RoomVersion, d.EventID, d.PDU)
		if err != nil {
			return fmt.Errorf("rooms: %w", err)
		}
		rb.parsed[i] = parsedEvent{d: d, ev: ev}
		if !seenRoom[d.RoomID] {
			seenRoom[d.RoomID] = true
			if m := mem.room(d.RoomID); m != nil {
				rb.hv[d.RoomID], push[d.RoomID] = m.hv, m.push
			} else {
				pre.Rooms = append(pre.Rooms, d.RoomID)
			}
		}
		if key, ok := ev.StateKey(); ok {
			k := stateKey{d.RoomID, ev.Type(), key}
			if id, known := mem.current(k); known {
				rb.state[k] = id
			} else {
				pre.StateRooms = append(pre.StateRooms, d.RoomID)
				pre.StateTypes = append(pre.StateTypes, ev.Type())
				pre.StateKeys = append(pre.StateKeys, key)
			}
		}
	}
	if next, known := mem.ordering(); known && len(pre.Rooms) == 0 && len(pre.StateKeys) == 0 {
		rb.next = next // all the batch needs is remembered
	} else if err := rb.prelude(pre, push); err != nil {
		return fmt.Errorf("rooms: %w", err)
	}
	items := make([]parsedEvent, 0, len(rb.parsed))
	for i, e := range events {
		var err error
		if p, ok := rb.parsed[i]; ok {
			err = rb.roomEvent(p.d, p.ev)
			p.ordering = rb.next
			items = append(items, p)
		} else {
			err = rb.apply(e)
		}
		if err != nil {
			return fmt.Errorf("rooms: %w", err)
		}
	}
	if err := notify(ctx, &rb.b, r.ServerName, r.rules, items, push); err != nil {
		return fmt.Errorf("rooms: %w", err)
	}
	if err := rb.b.Send(ctx, tx); err != nil {
		return err
	}
	mem.update(rb, push)
	return nil
}

// prelude reads what the batch needs and the live memory does not have: the last
// ordering, and for pre's rooms and state keys the history visibility, the push rules'
// room state (into push) and the current state event.
func (rb *roomsBatch) prelude(pre projdb.RoomsBatchPreludeParams, push map[string]*notifyRoom) error {
	row, err := rb.q.RoomsBatchPrelude(rb.ctx, rb.tx, pre)
	if err != nil {
		return err
	}
	rb.next = row.MaxOrdering
	for _, r := range pre.Rooms {
		rb.hv[r] = "shared"
	}
	for i := range pre.StateRooms {
		rb.state[stateKey{pre.StateRooms[i], pre.StateTypes[i], pre.StateKeys[i]}] = ""
	}
	var vis []struct {
		RoomID string `json:"room_id"`
		HV     string `json:"hv"`
	}
	if err := json.Unmarshal([]byte(row.Visibilities), &vis); err != nil {
		return err
	}
	for _, v := range vis {
		rb.hv[v.RoomID] = knownVisibility(v.HV)
	}
	var cur []struct {
		RoomID   string `json:"room_id"`
		Type     string `json:"type"`
		StateKey string `json:"state_key"`
		EventID  string `json:"event_id"`
	}
	if err := json.Unmarshal([]byte(row.CurrentState), &cur); err != nil {
		return err
	}
	for _, c := range cur {
		rb.state[stateKey{c.RoomID, c.Type, c.StateKey}] = c.EventID
	}
	read, err := notifyRooms(row.PushMembers, row.PushPower)
	if err != nil {
		return err
	}
	for _, r := range pre.Rooms {
		push[r] = read[r]
		if push[r] == nil {
			push[r] = &notifyRoom{members: map[string]string{}}
		}
	}
	return nil
}

type parsedEvent struct {
	d        eventlog.RoomEventAccepted
	ev       *pdus.Event
	ordering int64 // its stream ordering, once the batch assigned it
}

// knownVisibility is v when it is a history visibility the spec defines, else "shared"
// (spec: a server treats an unknown value as shared).
func knownVisibility(v string) string {
	switch v {
	case "world_readable", "shared", "invited", "joined":
		return v
	}
	return "shared"
}

func (rb *roomsBatch) apply(e eventlog.Event) error {
	ctx, q := rb.ctx, rb.q
	switch e.Type {
	case eventlog.TypeRoomPublished:
		var d eventlog.RoomPublished
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.RoomProjSetPublished(ctx, &rb.b, projdb.RoomProjSetPublishedParams{RoomID: d.RoomID, Published: d.Public})
	case eventlog.TypeAliasCreated:
		var d eventlog.AliasCreated
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.RoomAliasProjInsert(ctx, &rb.b, projdb.RoomAliasProjInsertParams{Alias: d.Alias, RoomID: d.RoomID, Creator: d.Creator})
	case eventlog.TypeAliasDeleted:
		var d eventlog.AliasDeleted
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.RoomAliasProjDelete(ctx, &rb.b, d.Alias)
	case eventlog.TypeAccountDeactivated:
		var d eventlog.AccountDeactivated
		if err := e.Decode(&d); err != nil {
			return err
		}
		if !d.Erase {
			return nil
		}
		// Erased from now on: the events so far are what users already there saw.
		return q.ErasedUserInsert(ctx, &rb.b, projdb.ErasedUserInsertParams{UserID: d.UserID, ErasedAt: rb.next})
	case eventlog.TypeRoomForgotten:
		var d eventlog.RoomForgotten
		if err := e.Decode(&d); err != nil {
			return err
		}
		last, err := rb.lastOrdering(d.RoomID)
		if err != nil {
			return err
		}
		return q.RoomForgottenUpsert(ctx, &rb.b, projdb.RoomForgottenUpsertParams{UserID: d.UserID, RoomID: d.RoomID, UpTo: last})
	case eventlog.TypeEventReported:
		var d eventlog.EventReported
		if err := e.Decode(&d); err != nil {
			return err
		}
		if rb.reports < 0 {
			n, err := q.EventReportsMaxID(ctx, rb.tx)
			if err != nil {
				return err
			}
			rb.reports = n
		}
		rb.reports++
		var eventID, reason *string
		if d.EventID != "" {
			eventID = &d.EventID
		}
		if d.Reason != "" {
			reason = &d.Reason
		}
		var score *int32
		if d.Score != nil {
			s := int32(*d.Score)
			score = &s
		}
		return q.EventReportInsert(ctx, &rb.b, projdb.EventReportInsertParams{
			ReportID: rb.reports, RoomID: d.RoomID, EventID: eventID, Reporter: d.Reporter, Reason: reason, Score: score, ReportedAt: e.RecordedAt,
		})
	}
	return nil
}

func (rb *roomsBatch) lastOrdering(room string) (int64, error) {
	if n, ok := rb.last[room]; ok {
		return n, nil
	}
	n, err := rb.q.RoomEventsLastInRoom(rb.ctx, rb.tx, room)
	if err != nil {
		return 0, err
	}
	rb.last[room] = n
	return n, nil
}

func (rb *roomsBatch) roomEvent(d eventlog.RoomEventAccepted, ev *pdus.Event) error {
	ctx, q := rb.ctx, rb.q
	rb.next++
	ordering := rb.next
	rb.last[d.RoomID] = ordering
	rb.versions[d.RoomID] = d.RoomVersion
	client, err := json.Marshal(ev.Client())
	if err != nil {
		return err
	}
	// The batch's prelude read the visibility of every room of the batch and the current
	// event of every state key it changes.
	vis := rb.hv[d.RoomID]
	row := projdb.RoomEventProjInsertParams{
		StreamOrdering: ordering, EventID: d.EventID, RoomID: d.RoomID, Type: ev.Type(), StateKey: ev.PDU.StateKey,
		Sender: ev.Sender(), OriginServerTs: ev.PDU.OriginServerTS, Depth: ev.PDU.Depth, Event: client, Visibility: vis,
	}
	if d.TxnID != "" {
		row.TxnID, row.TxnDevice = &d.TxnID, &d.DeviceID
	}
	if rel := gjson.GetBytes(ev.PDU.Content, `m\.relates_to`); rel.IsObject() {
		relType, target := rel.Get("rel_type").Str, rel.Get("event_id").Str
		if relType != "" && target != "" {
			row.RelType, row.RelatesTo = &relType, &target
		}
	}
	if ev.Type() == "m.room.member" && ev.IsState() {
		m := ev.Membership()
		row.Membership = &m
	}
	if key, ok := ev.StateKey(); ok {
		k := stateKey{d.RoomID, ev.Type(), key}
		if prev := rb.state[k]; prev != "" {
			row.ReplacesState = &prev
			if err := q.RoomStateProjClose(ctx, &rb.b, projdb.RoomStateProjCloseParams{ToOrdering: &ordering, RoomID: k.room, Type: k.typ, StateKey: k.key}); err != nil {
				return err
			}
		}
		if err := q.RoomStateProjInsert(ctx, &rb.b, projdb.RoomStateProjInsertParams{
			RoomID: k.room, Type: k.typ, StateKey: k.key, EventID: d.EventID, FromOrdering: ordering, Membership: row.Membership,
		}); err != nil {
			return err
		}
		rb.state[k] = d.EventID
		switch {
		case ev.Type() == "m.room.create" && key == "":
			var roomType *string
			if t := gjson.GetBytes(ev.PDU.Content, "type"); t.Type == gjson.String {
				roomType = &t.Str
			}
			if err := q.RoomProjInsert(ctx, &rb.b, projdb.RoomProjInsertParams{
				RoomID: d.RoomID, RoomVersion: d.RoomVersion, Creator: ev.Sender(), RoomType: roomType,
			}); err != nil {
				return err
			}
		case ev.Type() == "m.room.history_visibility" && key == "":
			rb.hv[d.RoomID] = knownVisibility(gjson.GetBytes(ev.PDU.Content, "history_visibility").Str)
		}
	}
	row.Pdu = d.PDU
	if err := q.RoomEventProjInsert(ctx, &rb.b, row); err != nil {
		return err
	}
	rb.events[d.EventID] = batchEvent{room: d.RoomID, typ: ev.Type(), version: d.RoomVersion, event: client, pdu: d.PDU}
	if target := ev.Redacts(); target != "" {
		rb.redacted[d.RoomID] = true
		return rb.redact(d.RoomID, target, d.EventID)
	}
	return nil
}

// redact replaces the stored form of target with its redaction (spec: client-server
// API, "Redactions"): every read model reads events from here, so the content is gone
// everywhere at once. Its relation goes too (m.relates_to does not survive).
func (rb *roomsBatch) redact(room, target, redaction string) error {
	be, ok := rb.events[target]
	if !ok {
		row, err := rb.q.RoomEventProjGet(rb.ctx, rb.tx, target)
		if errors.Is(err, pgx.ErrNoRows) {
			// TODO(#4): events that arrive after their redaction (federation).
			return nil
		}
		if err != nil {
			return err
		}
		be = batchEvent{room: row.RoomID, typ: row.Type, version: row.RoomVersion, event: []byte(row.Event)}
	}
	if be.room != room {
		return nil // a redaction applies only to an event of its own room
	}
	var ce map[string]json.RawMessage
	if err := json.Unmarshal(be.event, &ce); err != nil {
		return err
	}
	ce["content"] = pdus.RedactContent(be.version, be.typ, ce["content"])
	if be.typ == "m.room.redaction" && !id.RoomVersion(be.version).RedactsInContent() {
		delete(ce, "redacts")
	}
	redacted, err := json.Marshal(ce)
	if err != nil {
		return err
	}
	if be.pdu == nil {
		p, err := rb.q.RoomEventPDUGet(rb.ctx, rb.tx, target)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		be.pdu = []byte(p)
	}
	var pdu []byte
	if len(be.pdu) > 0 {
		if pdu, err = pdus.RedactPDU(be.version, be.pdu); err != nil {
			return err
		}
	}
	rb.events[target] = batchEvent{room: be.room, typ: be.typ, version: be.version, event: redacted, pdu: pdu}
	if pdu != nil {
		if err := rb.q.RoomEventPDURedact(rb.ctx, &rb.b, projdb.RoomEventPDURedactParams{Pdu: pdu, EventID: target}); err != nil {
			return err
		}
	}
	return rb.q.RoomEventProjRedact(rb.ctx, &rb.b, projdb.RoomEventProjRedactParams{Event: redacted, RedactedBecause: &redaction, EventID: target})
}
