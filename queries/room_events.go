package queries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/internal/pdus"
	"spelt.dev/spelt/sql/gen/readdb"
)

// RoomEventFilter is the spec's RoomEventFilter (client-server API, "Filtering").
type RoomEventFilter struct {
	Limit                   *int      `json:"limit,omitempty"`
	Types                   *[]string `json:"types,omitempty"`
	NotTypes                []string  `json:"not_types,omitempty"`
	Senders                 *[]string `json:"senders,omitempty"`
	NotSenders              []string  `json:"not_senders,omitempty"`
	Rooms                   *[]string `json:"rooms,omitempty"`
	NotRooms                []string  `json:"not_rooms,omitempty"`
	ContainsURL             *bool     `json:"contains_url,omitempty"`
	LazyLoadMembers         bool      `json:"lazy_load_members,omitempty"`
	IncludeRedundantMembers bool      `json:"include_redundant_members,omitempty"`
	// UnreadThreadNotifications splits a room's unread counts by thread (/sync).
	UnreadThreadNotifications bool `json:"unread_thread_notifications,omitempty"`
}

// typeMatches reports whether t matches pattern, where '*' matches any run of characters.
func typeMatches(pattern, t string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == t
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(t, parts[0]) {
		return false
	}
	t = t[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(t, p)
		}
		j := strings.Index(t, p)
		if j < 0 {
			return false
		}
		t = t[j+len(p):]
	}
	return true
}

// Matches reports whether the filter lets e through.
func (f RoomEventFilter) matches(e *eventRow) bool {
	if e.RoomID != "" && (f.Rooms != nil && !slices.Contains(*f.Rooms, e.RoomID) || slices.Contains(f.NotRooms, e.RoomID)) {
		return false
	}
	for _, p := range f.NotTypes {
		if typeMatches(p, e.Type) {
			return false
		}
	}
	if f.Types != nil {
		ok := false
		for _, p := range *f.Types {
			if typeMatches(p, e.Type) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, s := range f.NotSenders {
		if s == e.Sender {
			return false
		}
	}
	if f.Senders != nil {
		ok := false
		for _, s := range *f.Senders {
			if s == e.Sender {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if f.ContainsURL != nil {
		var c struct {
			Content struct {
				URL any `json:"url"`
			} `json:"content"`
		}
		_ = json.Unmarshal([]byte(e.Event), &c)
		if (c.Content.URL != nil) != *f.ContainsURL {
			return false
		}
	}
	return true
}

// render turns rows into client events with unsigned data for the viewer: age,
// transaction_id (the sender's own device), prev_content and replaces_state (state
// events), redacted_because.
func (q *Queries) render(ctx context.Context, db readdb.DBTX, v Viewer, rows []*eventRow) ([]json.RawMessage, error) {
	var ids []string
	for _, r := range rows {
		if r.ReplacesState != nil {
			ids = append(ids, *r.ReplacesState)
		}
		if r.RedactedBecause != nil {
			ids = append(ids, *r.RedactedBecause)
		}
	}
	related := map[string]*eventRow{}
	if len(ids) > 0 {
		rel, err := q.q.RoomEventsByIDs(ctx, db, ids)
		if err != nil {
			return nil, fmt.Errorf("related events: %w", err)
		}
		for _, r := range rel {
			e := eventRow(r)
			related[r.EventID] = &e
		}
	}
	aggs, err := q.aggregations(ctx, db, v, rows)
	if err != nil {
		return nil, err
	}
	erased, err := q.erasedFor(ctx, db, v, rows)
	if err != nil {
		return nil, err
	}
	now := q.now().UnixMilli()
	out := make([]json.RawMessage, 0, len(rows))
	for _, r := range rows {
		if version, ok := erased[r.EventID]; ok {
			r = erasedCopy(r, version)
		}
		b, err := q.renderOne(r, v, now, related, aggs[r.EventID])
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func (q *Queries) renderOne(r *eventRow, v Viewer, now int64, related map[string]*eventRow, relations json.RawMessage) (json.RawMessage, error) {
	var ev map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.Event), &ev); err != nil {
		return nil, fmt.Errorf("event %s: %w", r.EventID, err)
	}
	unsigned := map[string]any{"age": max(now-r.OriginServerTs, 0)}
	if r.TxnID != nil && r.Sender == v.UserID && r.TxnDevice != nil && *r.TxnDevice == v.DeviceID {
		unsigned["transaction_id"] = *r.TxnID
	}
	if r.ReplacesState != nil {
		unsigned["replaces_state"] = *r.ReplacesState
		if p := related[*r.ReplacesState]; p != nil {
			var pe struct {
				Content json.RawMessage `json:"content"`
			}
			if json.Unmarshal([]byte(p.Event), &pe) == nil {
				unsigned["prev_content"] = pe.Content
			}
			unsigned["prev_sender"] = p.Sender
		}
	}
	if r.RedactedBecause != nil {
		if p := related[*r.RedactedBecause]; p != nil {
			b, err := q.renderOne(p, v, now, nil, nil)
			if err != nil {
				return nil, err
			}
			unsigned["redacted_because"] = b
		}
	}
	if relations != nil {
		unsigned["m.relations"] = relations
	}
	u, err := json.Marshal(unsigned)
	if err != nil {
		return nil, err
	}
	ev["unsigned"] = u
	return json.Marshal(ev)
}

// Event returns one event of a room, if the viewer may see it (GET
// /rooms/{roomId}/event/{eventId}).
func (q *Queries) Event(ctx context.Context, v Viewer, roomID, eventID string) (json.RawMessage, error) {
	row, err := q.q.RoomEventByID(ctx, q.pool, eventID)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && roomID != "" && row.RoomID != roomID {
		return nil, ErrEventNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	e := eventRow(row)
	a, err := q.access(ctx, q.pool, e.RoomID, v.UserID)
	if err != nil {
		return nil, err
	}
	if !a.sees(v.UserID, &e) {
		return nil, ErrEventNotFound
	}
	out, err := q.render(ctx, q.pool, v, []*eventRow{&e})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// MessagesRequest is a GET /rooms/{roomId}/messages request.
type MessagesRequest struct {
	RoomID   string
	From, To *Token
	Backward bool
	Limit    int
	Filter   RoomEventFilter
}

// Messages is a page of a room's timeline.
type Messages struct {
	Chunk []json.RawMessage `json:"chunk"`
	Start string            `json:"start"`
	End   string            `json:"end,omitempty"`
	State []json.RawMessage `json:"state,omitempty"`
}

// maxScan bounds how many events one page reads while filtering.
const maxScan = 2000

// Messages pages through a room's timeline, showing only the events the viewer may
// see (spec: GET /rooms/{roomId}/messages).
func (q *Queries) Messages(ctx context.Context, v Viewer, req MessagesRequest) (Messages, error) {
	last, err := q.q.RoomLastOrdering(ctx, q.pool, req.RoomID)
	if err != nil {
		return Messages{}, err
	}
	a, err := q.access(ctx, q.pool, req.RoomID, v.UserID)
	if err != nil {
		return Messages{}, err
	}
	if last == 0 {
		return Messages{}, ErrRoomForbidden
	}
	if a.current() != "join" && a.lastSeen() == 0 {
		vis, err := q.roomVisibility(ctx, q.pool, req.RoomID, last)
		if err != nil {
			return Messages{}, err
		}
		if vis != "world_readable" && a.current() != "invite" {
			return Messages{}, ErrRoomForbidden
		}
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 10
	}
	limit = min(limit, 1000)
	var from Token
	switch {
	case req.From != nil:
		from = *req.From
	case req.Backward:
		from = Token(last)
	}
	out := Messages{Chunk: []json.RawMessage{}, Start: from.String()}
	var picked []*eventRow
	cur := int64(from)
	exhausted := false
	scanned := 0
	for len(picked) < limit && !exhausted && scanned < maxScan {
		n := int64(min(max(limit*2, 50), maxScan))
		var rows []*eventRow
		if req.Backward {
			lower := int64(0)
			if req.To != nil {
				lower = int64(*req.To)
			}
			rs, err := q.q.RoomEventsBackward(ctx, q.pool, readdb.RoomEventsBackwardParams{RoomID: req.RoomID, Before: cur, After: lower, Lim: int32(n)})
			if err != nil {
				return Messages{}, fmt.Errorf("messages: %w", err)
			}
			for _, r := range rs {
				e := eventRow(r)
				rows = append(rows, &e)
			}
		} else {
			upper := last
			if req.To != nil {
				upper = int64(*req.To)
			}
			rs, err := q.q.RoomEventsForward(ctx, q.pool, readdb.RoomEventsForwardParams{RoomID: req.RoomID, After: cur, Before: upper, Lim: int32(n)})
			if err != nil {
				return Messages{}, fmt.Errorf("messages: %w", err)
			}
			for _, r := range rs {
				e := eventRow(r)
				rows = append(rows, &e)
			}
		}
		if int64(len(rows)) < n {
			exhausted = true
		}
		for i, r := range rows {
			scanned++
			if req.Backward {
				cur = r.StreamOrdering - 1
			} else {
				cur = r.StreamOrdering
			}
			if a.sees(v.UserID, r) && req.Filter.matches(r) {
				picked = append(picked, r)
				if len(picked) == limit {
					if i < len(rows)-1 {
						exhausted = false
					}
					break
				}
			}
		}
	}
	if !exhausted || len(picked) == limit {
		out.End = Token(cur).String()
	}
	if req.Backward && cur <= 0 {
		out.End = ""
	}
	chunk, err := q.render(ctx, q.pool, v, picked)
	if err != nil {
		return Messages{}, err
	}
	out.Chunk = chunk
	if req.Filter.LazyLoadMembers && len(picked) > 0 {
		out.State, err = q.memberStateFor(ctx, v, req.RoomID, picked)
		if err != nil {
			return Messages{}, err
		}
	}
	return out, nil
}

// memberStateFor returns the m.room.member events of the senders of events, as of the
// latest of them (lazy-loading members).
func (q *Queries) memberStateFor(ctx context.Context, v Viewer, roomID string, events []*eventRow) ([]json.RawMessage, error) {
	at := int64(0)
	seen := map[string]bool{}
	var senders []string
	for _, e := range events {
		at = max(at, e.StreamOrdering)
		if !seen[e.Sender] {
			seen[e.Sender] = true
			senders = append(senders, e.Sender)
		}
	}
	var rows []*eventRow
	for _, s := range senders {
		r, err := q.q.RoomStateEventAt(ctx, q.pool, readdb.RoomStateEventAtParams{RoomID: roomID, Type: "m.room.member", StateKey: s, At: at})
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		key := s
		rows = append(rows, &eventRow{StreamOrdering: r.StreamOrdering, EventID: r.EventID, RoomID: roomID, Type: "m.room.member", StateKey: &key,
			Sender: r.Sender, OriginServerTs: r.OriginServerTs, Event: r.Event, ReplacesState: r.ReplacesState, RedactedBecause: r.RedactedBecause,
			Visibility: r.Visibility, Membership: r.Membership, TxnID: r.TxnID, TxnDevice: r.TxnDevice})
	}
	return q.render(ctx, q.pool, v, rows)
}

// State returns the state of a room the viewer may read: current, or as it was when
// they left (GET /rooms/{roomId}/state).
func (q *Queries) State(ctx context.Context, v Viewer, roomID string) ([]json.RawMessage, error) {
	at, _, err := q.stateView(ctx, q.pool, roomID, v.UserID)
	if err != nil {
		return nil, err
	}
	return q.stateAt(ctx, v, roomID, at, func(string, string) bool { return true })
}

func (q *Queries) stateAt(ctx context.Context, v Viewer, roomID string, at int64, keep func(typ, key string) bool) ([]json.RawMessage, error) {
	rs, err := q.q.RoomStateAt(ctx, q.pool, readdb.RoomStateAtParams{RoomID: roomID, At: at})
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	rows := make([]*eventRow, 0, len(rs))
	for _, r := range rs {
		if !keep(r.Type, r.StateKey) {
			continue
		}
		key := r.StateKey
		rows = append(rows, &eventRow{StreamOrdering: r.StreamOrdering, EventID: r.EventID, RoomID: roomID, Type: r.Type, StateKey: &key,
			Sender: r.Sender, OriginServerTs: r.OriginServerTs, Event: r.Event, ReplacesState: r.ReplacesState, RedactedBecause: r.RedactedBecause,
			Visibility: r.Visibility, Membership: r.Membership, TxnID: r.TxnID, TxnDevice: r.TxnDevice})
	}
	return q.render(ctx, q.pool, v, rows)
}

// StateEvent returns the content of one state event (GET
// /rooms/{roomId}/state/{eventType}/{stateKey}).
func (q *Queries) StateEvent(ctx context.Context, v Viewer, roomID, typ, key string) (json.RawMessage, error) {
	at, _, err := q.stateView(ctx, q.pool, roomID, v.UserID)
	if err != nil {
		return nil, err
	}
	r, err := q.q.RoomStateEventAt(ctx, q.pool, readdb.RoomStateEventAtParams{RoomID: roomID, Type: typ, StateKey: key, At: at})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrEventNotFound
	}
	if err != nil {
		return nil, err
	}
	var ev struct {
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal([]byte(r.Event), &ev); err != nil {
		return nil, err
	}
	return ev.Content, nil
}

// MembersRequest is a GET /rooms/{roomId}/members request.
type MembersRequest struct {
	RoomID        string
	At            *Token
	Membership    string
	NotMembership string
}

// Members returns the m.room.member events of a room.
func (q *Queries) Members(ctx context.Context, v Viewer, req MembersRequest) ([]json.RawMessage, error) {
	at, _, err := q.stateView(ctx, q.pool, req.RoomID, v.UserID)
	if err != nil {
		return nil, err
	}
	if req.At != nil && int64(*req.At) < at {
		at = int64(*req.At)
	}
	return q.stateAt(ctx, v, req.RoomID, at, func(typ, key string) bool { return typ == "m.room.member" })
}

// filterMembership keeps the member events whose membership passes the filters.
func FilterMembership(events []json.RawMessage, membership, notMembership string) []json.RawMessage {
	out := events[:0]
	for _, e := range events {
		var ev struct {
			Content struct {
				Membership string `json:"membership"`
			} `json:"content"`
		}
		_ = json.Unmarshal(e, &ev)
		if membership != "" && ev.Content.Membership != membership || notMembership != "" && ev.Content.Membership == notMembership {
			continue
		}
		out = append(out, e)
	}
	return out
}

// JoinedMember is a joined member's profile in the room.
type JoinedMember struct {
	DisplayName *string `json:"display_name,omitempty"`
	AvatarURL   *string `json:"avatar_url,omitempty"`
}

// JoinedMembers returns the joined members of a room the viewer is joined to.
func (q *Queries) JoinedMembers(ctx context.Context, v Viewer, roomID string) (map[string]JoinedMember, error) {
	at, a, err := q.stateView(ctx, q.pool, roomID, v.UserID)
	if err != nil {
		return nil, err
	}
	if a.current() != "join" {
		return nil, ErrRoomForbidden
	}
	rs, err := q.q.RoomStateAt(ctx, q.pool, readdb.RoomStateAtParams{RoomID: roomID, At: at})
	if err != nil {
		return nil, err
	}
	out := map[string]JoinedMember{}
	for _, r := range rs {
		if r.Type != "m.room.member" || deref(r.Membership) != "join" {
			continue
		}
		var ev struct {
			Content JoinedMember `json:"content"`
		}
		_ = json.Unmarshal([]byte(r.Event), &ev)
		out[r.StateKey] = ev.Content
	}
	return out, nil
}

// JoinedRooms lists the rooms the user is joined to.
func (q *Queries) JoinedRooms(ctx context.Context, user string) ([]string, error) {
	return q.q.RoomJoinedRooms(ctx, q.pool, user)
}

// EventContext is GET /rooms/{roomId}/context/{eventId}'s answer.
type EventContext struct {
	Event        json.RawMessage   `json:"event"`
	EventsBefore []json.RawMessage `json:"events_before"`
	EventsAfter  []json.RawMessage `json:"events_after"`
	Start        string            `json:"start"`
	End          string            `json:"end"`
	State        []json.RawMessage `json:"state"`
}

// Context returns an event with the events around it.
func (q *Queries) Context(ctx context.Context, v Viewer, roomID, eventID string, limit int, f RoomEventFilter) (EventContext, error) {
	row, err := q.q.RoomEventByID(ctx, q.pool, eventID)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && row.RoomID != roomID {
		return EventContext{}, ErrEventNotFound
	}
	if err != nil {
		return EventContext{}, err
	}
	e := eventRow(row)
	a, err := q.access(ctx, q.pool, roomID, v.UserID)
	if err != nil {
		return EventContext{}, err
	}
	if !a.sees(v.UserID, &e) {
		return EventContext{}, ErrEventNotFound
	}
	before := limit / 2
	after := limit - before
	from := Token(e.StreamOrdering - 1)
	b, err := q.Messages(ctx, v, MessagesRequest{RoomID: roomID, From: &from, Backward: true, Limit: max(before, 0), Filter: f})
	if err != nil {
		return EventContext{}, err
	}
	fwd := Token(e.StreamOrdering)
	fa, err := q.Messages(ctx, v, MessagesRequest{RoomID: roomID, From: &fwd, Limit: max(after, 0), Filter: f})
	if err != nil {
		return EventContext{}, err
	}
	out := EventContext{EventsBefore: b.Chunk, EventsAfter: fa.Chunk, Start: b.End, End: fa.End}
	if limit == 0 {
		out.EventsBefore, out.EventsAfter = []json.RawMessage{}, []json.RawMessage{}
	}
	if out.Start == "" {
		out.Start = Token(0).String()
	}
	if out.End == "" {
		out.End = fwd.String()
	}
	ev, err := q.render(ctx, q.pool, v, []*eventRow{&e})
	if err != nil {
		return EventContext{}, err
	}
	out.Event = ev[0]
	lastOrdering := e.StreamOrdering
	if tok, err := ParseToken(out.End); err == nil {
		lastOrdering = max(int64(tok), e.StreamOrdering)
	}
	if f.LazyLoadMembers {
		out.State, err = q.memberStateFor(ctx, v, roomID, []*eventRow{&e})
	} else {
		out.State, err = q.stateAt(ctx, v, roomID, lastOrdering, func(string, string) bool { return true })
	}
	if err != nil {
		return EventContext{}, err
	}
	return out, nil
}

// TimestampToEvent finds the event closest to ts in the direction given.
func (q *Queries) TimestampToEvent(ctx context.Context, v Viewer, roomID string, ts int64, forward bool) (string, int64, error) {
	if _, _, err := q.stateView(ctx, q.pool, roomID, v.UserID); err != nil {
		return "", 0, err
	}
	if forward {
		r, err := q.q.RoomEventAtOrAfterTS(ctx, q.pool, readdb.RoomEventAtOrAfterTSParams{RoomID: roomID, Ts: ts})
		if errors.Is(err, pgx.ErrNoRows) {
			return "", 0, ErrEventNotFound
		}
		return r.EventID, r.OriginServerTs, err
	}
	r, err := q.q.RoomEventAtOrBeforeTS(ctx, q.pool, readdb.RoomEventAtOrBeforeTSParams{RoomID: roomID, Ts: ts})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, ErrEventNotFound
	}
	return r.EventID, r.OriginServerTs, err
}

// erasedFor returns, by event ID, the events of rows the viewer must get redacted
// because their sender deactivated with erase (spec: POST /account/deactivate: users
// who join the room after the erasure are served redacted copies; those who could see
// the events before still can), with their room version.
// erasedUsers returns every erased user and when they were erased; the list is
// cached until the rooms read model moves (erasures are few, and every timeline looks).
func (q *Queries) erasedUsers(ctx context.Context, db readdb.DBTX) (map[string]int64, error) {
	all, gen, ok := q.erased.get(struct{}{})
	if ok {
		return all, nil
	}
	list, err := q.q.ErasedUsersAll(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("erased users: %w", err)
	}
	all = make(map[string]int64, len(list))
	for _, e := range list {
		all[e.UserID] = e.ErasedAt
	}
	q.erased.put(struct{}{}, all, gen)
	return all, nil
}

// ForgetRooms empties the caches of the rooms read model (erased users); call it
// whenever it moves.
func (q *Queries) ForgetRooms() { q.erased.forget() }

func (q *Queries) erasedFor(ctx context.Context, db readdb.DBTX, v Viewer, rows []*eventRow) (map[string]string, error) {
	var senders []string
	for _, r := range rows {
		if r.Sender != v.UserID && r.RedactedBecause == nil && !slices.Contains(senders, r.Sender) {
			senders = append(senders, r.Sender)
		}
	}
	if len(senders) == 0 {
		return nil, nil
	}
	all, err := q.erasedUsers(ctx, db)
	if err != nil {
		return nil, err
	}
	erasedAt := map[string]int64{}
	for _, s := range senders {
		if at, ok := all[s]; ok {
			erasedAt[s] = at
		}
	}
	if len(erasedAt) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	rooms := map[string]struct {
		a       access
		version string
	}{}
	for _, r := range rows {
		at, ok := erasedAt[r.Sender]
		if !ok || r.Sender == v.UserID || r.RedactedBecause != nil {
			continue
		}
		room, ok := rooms[r.RoomID]
		if !ok {
			a, err := q.access(ctx, db, r.RoomID, v.UserID)
			if err != nil {
				return nil, err
			}
			info, err := q.q.RoomInfo(ctx, db, r.RoomID)
			if err != nil {
				return nil, err
			}
			room.a, room.version = a, info.RoomVersion
			rooms[r.RoomID] = room
		}
		// The viewer saw the room before the erasure if one of their stays began before it.
		before := false
		for _, sp := range room.a.spans {
			if sp.membership == "join" && sp.from <= at {
				before = true
				break
			}
		}
		if !before {
			out[r.EventID] = room.version
		}
	}
	return out, nil
}

// erasedCopy is r with its content redacted by the rules of room version version.
func erasedCopy(r *eventRow, version string) *eventRow {
	var ev map[string]json.RawMessage
	if json.Unmarshal([]byte(r.Event), &ev) != nil {
		return r
	}
	ev["content"] = pdus.RedactContent(version, r.Type, ev["content"])
	b, err := json.Marshal(ev)
	if err != nil {
		return r
	}
	c := *r
	c.Event = string(b)
	return &c
}
