package queries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"spelt.dev/spelt/sql/gen/readdb"
)

// SyncToken is a position in every stream /sync reads: room events, account data,
// presence... Each is a dense number its projector assigns in log order, so a token
// means the same after a restart and after a replay. It is written "s<rooms>_<account
// data>_<presence>_<receipts>_<typing>_<to-device>_<acknowledged>_<device lists>"; its
// first part is a room timeline token too.
type SyncToken struct {
	Rooms, AccountData, Presence, Receipts int64
	// Typing is the serving process's typing position (typing is not in the log; a
	// position from another process or from before a restart counts as the beginning).
	Typing   int64
	ToDevice int64
	// Acked is the to-device position up to which messages are known to be deleted;
	// below ToDevice, the next sync with this token acknowledges them.
	Acked       int64
	DeviceLists int64
}

func (t SyncToken) String() string {
	return "s" + strconv.FormatInt(t.Rooms, 10) + "_" + strconv.FormatInt(t.AccountData, 10) + "_" + strconv.FormatInt(t.Presence, 10) +
		"_" + strconv.FormatInt(t.Receipts, 10) + "_" + strconv.FormatInt(t.Typing, 10) + "_" + strconv.FormatInt(t.ToDevice, 10) +
		"_" + strconv.FormatInt(t.Acked, 10) + "_" + strconv.FormatInt(t.DeviceLists, 10)
}

// ParseSyncToken reads a sync token. A timeline token ("s<N>") is a sync token of the
// room events only.
func ParseSyncToken(s string) (SyncToken, error) {
	if !strings.HasPrefix(s, "s") {
		return SyncToken{}, ErrBadToken
	}
	parts := strings.Split(s[1:], "_")
	var n [8]int64
	for i, p := range parts {
		if i >= len(n) {
			break
		}
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil || v < 0 {
			return SyncToken{}, ErrBadToken
		}
		n[i] = v
	}
	return SyncToken{Rooms: n[0], AccountData: n[1], Presence: n[2], Receipts: n[3], Typing: n[4], ToDevice: n[5], Acked: n[6], DeviceLists: n[7]}, nil
}

// SyncFilter is what /sync uses of a filter (spec: client-server API, "Filtering").
type SyncFilter struct {
	Room struct {
		Rooms        *[]string       `json:"rooms"`
		NotRooms     []string        `json:"not_rooms"`
		IncludeLeave bool            `json:"include_leave"`
		Timeline     RoomEventFilter `json:"timeline"`
		State        RoomEventFilter `json:"state"`
		Ephemeral    RoomEventFilter `json:"ephemeral"`
		AccountData  RoomEventFilter `json:"account_data"`
	} `json:"room"`
	AccountData RoomEventFilter `json:"account_data"`
	Presence    RoomEventFilter `json:"presence"`
	// EventFields limits room events to these fields; EventFormat "federation" gives
	// them as PDUs.
	EventFields []string `json:"event_fields"`
	EventFormat string   `json:"event_format"`
}

// SyncRequest is a GET /sync request.
type SyncRequest struct {
	Since     *SyncToken
	Filter    SyncFilter
	FullState bool
	// Typing returns the typing position and, for rooms whose typing changed after
	// since, who types there; nil: no typing.
	Typing func(rooms []string, since int64) (int64, map[string][]string)

	// Members remembers the member events this device was given, so that lazy
	// loading without include_redundant_members does not give them again (nil: it
	// gives them again).
	Members MemberCache

	ignored map[string]bool // the viewer's m.ignored_user_list, once read
}

// MemberCache remembers, for one device, the member event of each user in each room it
// was last given.
type MemberCache interface {
	// Sent returns the member event of user in room the device was given ("" none).
	Sent(room, user string) string
	Record(room, user, eventID string)
	// Reset forgets everything: the device starts again (an initial sync).
	Reset()
}

// ignoring reads the viewer's ignored users (spec: client-server API, "Ignoring Users"):
// their events other than state events, and their invites, are not synced.
func (q *Queries) ignoring(ctx context.Context, v Viewer, req *SyncRequest) (map[string]bool, error) {
	if req.ignored != nil {
		return req.ignored, nil
	}
	cached, gen, ok := q.ignored.get(v.UserID)
	if ok {
		req.ignored = cached
		return cached, nil
	}
	ignored := map[string]bool{}
	raw, err := q.AccountData(ctx, v.UserID, "", "m.ignored_user_list")
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	var c struct {
		Ignored map[string]json.RawMessage `json:"ignored_users"`
	}
	_ = json.Unmarshal(raw, &c)
	for u := range c.Ignored {
		ignored[u] = true
	}
	q.ignored.put(v.UserID, ignored, gen)
	req.ignored = ignored
	return ignored, nil
}

// ForgetAccountData empties the caches of account data (the ignored users); call it
// whenever the account_data read model moves.
func (q *Queries) ForgetAccountData() { q.ignored.forget() }

// Sync is a /sync response.
type Sync struct {
	NextBatch   string          `json:"next_batch"`
	Rooms       SyncRooms       `json:"rooms"`
	AccountData eventList       `json:"account_data"`
	Presence    eventList       `json:"presence"`
	ToDevice    eventList       `json:"to_device"`
	DeviceLists SyncDeviceLists `json:"device_lists"`
	OTKCounts   map[string]int  `json:"device_one_time_keys_count"`
	// FallbackKeys are the algorithms of the device's unused fallback keys.
	FallbackKeys []string `json:"device_unused_fallback_key_types"`
	// ToDeviceAck is the to-device position the client acknowledged by syncing past it,
	// when messages up to it are left to delete (0: none).
	ToDeviceAck int64 `json:"-"`
	// Joined are the rooms the viewer is joined to, when this sync read them (nil
	// otherwise), whatever the filter.
	Joined []string `json:"-"`
}

// Empty reports whether an incremental sync has nothing to say.
func (s *Sync) Empty() bool {
	return len(s.Rooms.Join) == 0 && len(s.Rooms.Invite) == 0 && len(s.Rooms.Leave) == 0 && len(s.Rooms.Knock) == 0 &&
		len(s.AccountData.Events) == 0 && len(s.Presence.Events) == 0 && len(s.ToDevice.Events) == 0 &&
		len(s.DeviceLists.Changed) == 0 && len(s.DeviceLists.Left) == 0
}

// SyncDeviceLists are whose device lists changed: users to fetch keys of again, and
// users who no longer share a room with the syncing user.
type SyncDeviceLists struct {
	Changed []string `json:"changed"`
	Left    []string `json:"left"`
}

type eventList struct {
	Events []json.RawMessage `json:"events"`
}

// SyncRooms are the rooms sections of /sync.
type SyncRooms struct {
	Join   map[string]*JoinedRoom  `json:"join"`
	Invite map[string]*InvitedRoom `json:"invite"`
	Leave  map[string]*LeftRoom    `json:"leave"`
	Knock  map[string]*KnockedRoom `json:"knock"`
}

// Timeline is a room's timeline in /sync.
type Timeline struct {
	Events    []json.RawMessage `json:"events"`
	Limited   bool              `json:"limited"`
	PrevBatch string            `json:"prev_batch,omitempty"`
}

// JoinedRoom is a room of rooms.join.
type JoinedRoom struct {
	Summary             RoomSummary         `json:"summary"`
	State               eventList           `json:"state"`
	Timeline            Timeline            `json:"timeline"`
	Ephemeral           eventList           `json:"ephemeral"`
	AccountData         eventList           `json:"account_data"`
	UnreadNotifications UnreadNotifications `json:"unread_notifications"`
	// UnreadThreadNotifications are the counts by thread, when the filter asks.
	UnreadThreadNotifications map[string]UnreadNotifications `json:"unread_thread_notifications,omitempty"`
}

// RoomSummary is a joined room's summary.
type RoomSummary struct {
	Heroes  []string `json:"m.heroes,omitempty"`
	Joined  *int     `json:"m.joined_member_count,omitempty"`
	Invited *int     `json:"m.invited_member_count,omitempty"`
}

// UnreadNotifications are a room's unread counts.
type UnreadNotifications struct {
	Highlight    int `json:"highlight_count"`
	Notification int `json:"notification_count"`
}

// InvitedRoom is a room of rooms.invite.
type InvitedRoom struct {
	InviteState eventList `json:"invite_state"`
}

// KnockedRoom is a room of rooms.knock.
type KnockedRoom struct {
	KnockState eventList `json:"knock_state"`
}

// LeftRoom is a room of rooms.leave.
type LeftRoom struct {
	State       eventList `json:"state"`
	Timeline    Timeline  `json:"timeline"`
	AccountData eventList `json:"account_data"`
}

// AddUnreadCounts sets the unread counts of the joined rooms of a sync response: the
// viewer's notifying events after their read receipt (spec: "Receiving
// notifications"). With byThread, a room's counts are its main timeline's and each
// thread's are apart (unread_thread_notifications).
func (q *Queries) AddUnreadCounts(ctx context.Context, v Viewer, res *Sync, byThread bool) error {
	if len(res.Rooms.Join) == 0 {
		return nil
	}
	rooms := make([]string, 0, len(res.Rooms.Join))
	for r := range res.Rooms.Join {
		rooms = append(rooms, r)
	}
	rows, err := q.q.SyncUnreadCounts(ctx, q.pool, readdb.SyncUnreadCountsParams{UserID: v.UserID, RoomIds: rooms})
	if err != nil {
		return fmt.Errorf("unread counts: %w", err)
	}
	for _, r := range rows {
		jr := res.Rooms.Join[r.RoomID]
		n := UnreadNotifications{Notification: int(r.Notifications), Highlight: int(r.Highlights)}
		if !byThread || r.ThreadID == "main" {
			jr.UnreadNotifications.Notification += n.Notification
			jr.UnreadNotifications.Highlight += n.Highlight
			continue
		}
		if jr.UnreadThreadNotifications == nil {
			jr.UnreadThreadNotifications = map[string]UnreadNotifications{}
		}
		jr.UnreadThreadNotifications[r.ThreadID] = n
	}
	return nil
}

// SyncPositions returns the current position of every stream /sync reads.
func (q *Queries) SyncPositions(ctx context.Context) (SyncToken, error) {
	p, err := q.q.SyncPositions(ctx, q.pool)
	if err != nil {
		return SyncToken{}, fmt.Errorf("sync positions: %w", err)
	}
	return SyncToken{Rooms: p.Rooms, AccountData: p.AccountData, Presence: p.Presence, Receipts: p.Receipts, ToDevice: p.ToDevice,
		DeviceLists: p.DeviceLists}, nil
}

// strippedTypes are the state an invited or knocking user sees of a room (spec:
// client-server API, "Stripped state").
var strippedTypes = []string{"m.room.create", "m.room.name", "m.room.avatar", "m.room.topic", "m.room.join_rules",
	"m.room.canonical_alias", "m.room.encryption"}

// Sync answers GET /sync: everything that changed for the viewer after req.Since (all
// of it without), up to now, which the returned next_batch names.
func (q *Queries) Sync(ctx context.Context, v Viewer, req SyncRequest) (*Sync, error) {
	out, err := q.sync(ctx, v, req)
	if err != nil {
		return nil, err
	}
	applyFilters(out, req.Filter)
	if req.Filter.EventFormat == "federation" {
		if err := q.federationFormat(ctx, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (q *Queries) sync(ctx context.Context, v Viewer, req SyncRequest) (*Sync, error) {
	now, err := q.SyncPositions(ctx)
	if err != nil {
		return nil, err
	}
	if req.Typing != nil {
		now.Typing, _ = req.Typing(nil, 0)
	}
	var since SyncToken
	if req.Since != nil {
		since = *req.Since
		// A token from the future (another server's, or before a restore) counts as now.
		since.Rooms, since.AccountData, since.Presence = min(since.Rooms, now.Rooms), min(since.AccountData, now.AccountData), min(since.Presence, now.Presence)
		since.Receipts, since.ToDevice = min(since.Receipts, now.Receipts), min(since.ToDevice, now.ToDevice)
		since.DeviceLists = min(since.DeviceLists, now.DeviceLists)
		if since.Typing > now.Typing {
			since.Typing = 0
		}
	}
	out := &Sync{NextBatch: now.String(), Rooms: SyncRooms{Join: map[string]*JoinedRoom{}, Invite: map[string]*InvitedRoom{},
		Leave: map[string]*LeftRoom{}, Knock: map[string]*KnockedRoom{}}, AccountData: eventList{Events: []json.RawMessage{}},
		Presence: eventList{Events: []json.RawMessage{}}, ToDevice: eventList{Events: []json.RawMessage{}},
		DeviceLists: SyncDeviceLists{Changed: []string{}, Left: []string{}}, OTKCounts: map[string]int{}, FallbackKeys: []string{}}
	initial := req.Since == nil
	if initial && req.Members != nil {
		req.Members.Reset()
	}
	// Messages the previous sync gave are acknowledged by this one (spec: "Send-to-Device
	// messaging": deleted once the client acknowledges them with a later since).
	if !initial && since.Acked < since.ToDevice {
		out.ToDeviceAck = since.ToDevice
	}
	now.Acked = now.ToDevice
	cmp := since
	cmp.Acked = now.Acked
	if !initial && !req.FullState && cmp == now {
		out.NextBatch = now.String()
		return out, nil // nothing happened anywhere: no query per stream, let alone per room
	}
	if initial || since.ToDevice < now.ToDevice {
		last, err := q.syncToDevice(ctx, v, since.ToDevice, now.ToDevice, out)
		if err != nil {
			return nil, err
		}
		now.ToDevice = last // less than all of it when there was more than one sync's worth
		if len(out.ToDevice.Events) > 0 {
			now.Acked = since.ToDevice
		} else {
			now.Acked = now.ToDevice
		}
	}

	var memberships []readdb.SyncMembershipsRow
	if initial || req.FullState || since.Rooms < now.Rooms || since.AccountData < now.AccountData || since.Receipts < now.Receipts ||
		since.Typing < now.Typing || since.DeviceLists < now.DeviceLists {
		if memberships, err = q.q.SyncMemberships(ctx, q.pool, readdb.SyncMembershipsParams{UserID: v.UserID, At: now.Rooms}); err != nil {
			return nil, fmt.Errorf("sync: %w", err)
		}
	}
	wanted := func(room string) bool {
		f := req.Filter.Room
		return (f.Rooms == nil || slices.Contains(*f.Rooms, room)) && !slices.Contains(f.NotRooms, room)
	}
	var joined []string
	changed := map[string]bool{} // rooms whose membership changed since the token
	if memberships != nil {
		out.Joined = []string{}
	}
	for _, m := range memberships {
		if m.Membership == "join" {
			out.Joined = append(out.Joined, m.RoomID)
		}
		if !wanted(m.RoomID) {
			continue
		}
		if m.FromOrdering > since.Rooms {
			changed[m.RoomID] = true
		}
		if m.Membership == "join" {
			joined = append(joined, m.RoomID)
		}
	}
	withEvents := map[string]int64{}
	memberMoves := false // a member event in one of the joined rooms since the token
	if !initial && len(joined) > 0 && since.Rooms < now.Rooms {
		rows, err := q.q.SyncRoomsWithEvents(ctx, q.pool, readdb.SyncRoomsWithEventsParams{Since: since.Rooms, At: now.Rooms, RoomIds: joined})
		if err != nil {
			return nil, fmt.Errorf("sync: %w", err)
		}
		for _, r := range rows {
			withEvents[r.RoomID] = r.N
			memberMoves = memberMoves || r.Members > 0
		}
	}
	roomData, globalData := map[string][]json.RawMessage{}, []json.RawMessage{}
	if initial || since.AccountData < now.AccountData {
		if roomData, globalData, err = q.syncAccountData(ctx, v.UserID, since.AccountData, now.AccountData, initial); err != nil {
			return nil, err
		}
	}
	out.AccountData.Events = globalData

	receipts := map[string][]json.RawMessage{}
	if len(joined) > 0 && (initial || since.Receipts < now.Receipts) {
		if receipts, err = q.syncReceipts(ctx, v.UserID, joined, since.Receipts, now.Receipts, initial); err != nil {
			return nil, err
		}
	}

	typingIn := map[string][]string{}
	if req.Typing != nil && len(joined) > 0 && (initial || since.Typing < now.Typing) {
		_, typingIn = req.Typing(joined, since.Typing)
	}

	limit := 10
	if l := req.Filter.Room.Timeline.Limit; l != nil && *l > 0 {
		limit = min(*l, 100)
	}
	for _, m := range memberships {
		room := m.RoomID
		if !wanted(room) {
			continue
		}
		switch m.Membership {
		case "join":
			fresh := initial || changed[room] || req.FullState
			_, typed := typingIn[room]
			if !fresh && withEvents[room] == 0 && len(roomData[room]) == 0 && len(receipts[room]) == 0 && !typed {
				continue
			}
			ignored, err := q.ignoring(ctx, v, &req)
			if err != nil {
				return nil, err
			}
			jr, err := q.syncJoined(ctx, v, room, since.Rooms, now.Rooms, fresh, limit, req.Filter, ignored)
			if err != nil {
				return nil, err
			}
			dropRedundantMembers(room, jr, req)
			jr.AccountData.Events = orEmpty(roomData[room])
			jr.Ephemeral.Events = orEmpty(receipts[room])
			if users, ok := typingIn[room]; ok {
				b, err := json.Marshal(map[string]any{"type": "m.typing", "content": map[string]any{"user_ids": users}})
				if err != nil {
					return nil, err
				}
				jr.Ephemeral.Events = append(jr.Ephemeral.Events, b)
			}
			out.Rooms.Join[room] = jr
		case "invite", "knock":
			if !initial && !changed[room] {
				continue
			}
			state, inviter, err := q.strippedState(ctx, v, room, now.Rooms)
			if err != nil {
				return nil, err
			}
			ignored, err := q.ignoring(ctx, v, &req)
			if err != nil {
				return nil, err
			}
			if ignored[inviter] {
				continue // invites from ignored users are not synced
			}
			if m.Membership == "invite" {
				out.Rooms.Invite[room] = &InvitedRoom{InviteState: eventList{Events: state}}
			} else {
				out.Rooms.Knock[room] = &KnockedRoom{KnockState: eventList{Events: state}}
			}
		case "leave", "ban":
			if initial && !req.Filter.Room.IncludeLeave || !initial && !changed[room] {
				continue
			}
			ignored, err := q.ignoring(ctx, v, &req)
			if err != nil {
				return nil, err
			}
			lr, err := q.syncLeft(ctx, v, room, since.Rooms, m.FromOrdering, initial, limit, req.Filter, ignored)
			if err != nil {
				return nil, err
			}
			lr.AccountData.Events = orEmpty(roomData[room])
			out.Rooms.Leave[room] = lr
		}
	}
	if !initial && (since.Rooms < now.Rooms || since.DeviceLists < now.DeviceLists) {
		// Device lists are not filtered by room: every room shared counts.
		if out.DeviceLists.Changed, out.DeviceLists.Left, err = q.deviceListChanges(ctx, v.UserID, since, now, memberships, memberMoves || len(changed) > 0); err != nil {
			return nil, err
		}
	}
	out.NextBatch = now.String()
	if initial || since.Presence < now.Presence {
		if joined == nil && len(memberships) == 0 {
			// The memberships were not read (nothing moved in rooms): read them now.
			ms, err := q.q.SyncMemberships(ctx, q.pool, readdb.SyncMembershipsParams{UserID: v.UserID, At: now.Rooms})
			if err != nil {
				return nil, fmt.Errorf("sync: %w", err)
			}
			for _, m := range ms {
				if m.Membership == "join" {
					joined = append(joined, m.RoomID)
				}
			}
		}
		if out.Presence.Events, err = q.syncPresence(ctx, v.UserID, joined, since.Presence, now.Presence); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func orEmpty(l []json.RawMessage) []json.RawMessage {
	if l == nil {
		return []json.RawMessage{}
	}
	return l
}

// syncAccountData returns the account data that changed after since, by room ("" for
// global ones), as events.
func (q *Queries) syncAccountData(ctx context.Context, user string, since, at int64, initial bool) (map[string][]json.RawMessage, []json.RawMessage, error) {
	if initial {
		since = 0
	}
	rows, err := q.q.SyncAccountData(ctx, q.pool, readdb.SyncAccountDataParams{UserID: user, Since: since, At: at})
	if err != nil {
		return nil, nil, fmt.Errorf("sync account data: %w", err)
	}
	byRoom := map[string][]json.RawMessage{}
	var global []json.RawMessage
	for _, r := range rows {
		ev, err := json.Marshal(map[string]any{"type": r.Type, "content": json.RawMessage(r.Content)})
		if err != nil {
			return nil, nil, err
		}
		if r.RoomID == "" {
			global = append(global, ev)
		} else {
			byRoom[r.RoomID] = append(byRoom[r.RoomID], ev)
		}
	}
	return byRoom, orEmpty(global), nil
}

// timelineRows returns the latest events of a room in (after, upto] that v sees and the
// filter lets through, at most limit, oldest first, and whether there were more.
func (q *Queries) timelineRows(ctx context.Context, v Viewer, room string, after, upto int64, limit int, f RoomEventFilter, ignored map[string]bool) ([]*eventRow, bool, error) {
	a, err := q.access(ctx, q.pool, room, v.UserID)
	if err != nil {
		return nil, false, err
	}
	var picked []*eventRow
	cur := upto
	limited := false
	for scanned := 0; len(picked) <= limit && scanned < maxScan; {
		rs, err := q.q.RoomEventsBackward(ctx, q.pool, readdb.RoomEventsBackwardParams{RoomID: room, Before: cur, After: after, Lim: int32(limit + 1)})
		if err != nil {
			return nil, false, fmt.Errorf("sync timeline: %w", err)
		}
		for _, r := range rs {
			scanned++
			cur = r.StreamOrdering - 1
			e := eventRow(r)
			if a.sees(v.UserID, &e) && f.matches(&e) && (e.StateKey != nil || !ignored[e.Sender]) {
				picked = append(picked, &e)
			}
		}
		if len(rs) < limit+1 {
			break
		}
	}
	if len(picked) > limit {
		picked, limited = picked[:limit], true
	}
	slices.Reverse(picked)
	return picked, limited, nil
}

// dropRedundantMembers takes out of a joined room's state the member events the device
// was already given, when lazy loading without include_redundant_members (spec:
// "Lazy-loading room members"), and records the member events it is given now, in
// the state or the timeline.
func dropRedundantMembers(room string, jr *JoinedRoom, req SyncRequest) {
	f := req.Filter.Room.State
	if req.Members == nil || !f.LazyLoadMembers {
		return
	}
	memberOf := func(e json.RawMessage) (user, eventID string, ok bool) {
		r := gjson.GetManyBytes(e, "type", "state_key", "event_id")
		return r[1].Str, r[2].Str, r[0].Str == "m.room.member" && r[1].Exists()
	}
	kept := jr.State.Events[:0]
	for _, e := range jr.State.Events {
		user, id, ok := memberOf(e)
		if ok && !f.IncludeRedundantMembers && req.Members.Sent(room, user) == id {
			continue
		}
		if ok {
			req.Members.Record(room, user, id)
		}
		kept = append(kept, e)
	}
	jr.State.Events = kept
	for _, e := range jr.Timeline.Events {
		if user, id, ok := memberOf(e); ok {
			req.Members.Record(room, user, id)
		}
	}
}

// syncJoined builds a joined room's section. A room new to the sync (first sync, a new
// join, full_state) gets its whole state as of the timeline's start; otherwise the state
// that changed between the token and the timeline's start (a gap, when the timeline is
// limited).
func (q *Queries) syncJoined(ctx context.Context, v Viewer, room string, since, at int64, fresh bool, limit int, f SyncFilter, ignored map[string]bool) (*JoinedRoom, error) {
	after := since
	if fresh {
		after = 0
	}
	rows, limited, err := q.timelineRows(ctx, v, room, after, at, limit, f.Room.Timeline, ignored)
	if err != nil {
		return nil, err
	}
	jr := &JoinedRoom{Ephemeral: eventList{Events: []json.RawMessage{}}, AccountData: eventList{Events: []json.RawMessage{}}}
	start := at // the state before the timeline
	if len(rows) > 0 {
		start = rows[0].StreamOrdering - 1
	}
	if jr.Timeline, err = q.timeline(ctx, v, rows, limited, start); err != nil {
		return nil, err
	}
	keep, changedKeys, err := q.stateFilter(ctx, v.UserID, room, since, start, fresh, rows, f)
	if err != nil {
		return nil, err
	}
	jr.State.Events = []json.RawMessage{}
	if fresh || changedKeys > 0 {
		if jr.State.Events, err = q.stateAt(ctx, v, room, start, keep); err != nil {
			return nil, err
		}
	}
	// The summary only when membership may have changed (spec: servers may omit
	// unchanged fields).
	members := fresh
	for _, r := range rows {
		members = members || r.Type == "m.room.member"
	}
	if members || changedKeys > 0 {
		if jr.Summary, err = q.summary(ctx, v.UserID, room, at); err != nil {
			return nil, err
		}
	}
	return jr, nil
}

// timeline renders rows as a /sync timeline whose prev_batch is start.
func (q *Queries) timeline(ctx context.Context, v Viewer, rows []*eventRow, limited bool, start int64) (Timeline, error) {
	events, err := q.render(ctx, q.pool, v, rows)
	if err != nil {
		return Timeline{}, err
	}
	return Timeline{Events: events, Limited: limited, PrevBatch: Token(start).String()}, nil
}

// stateFilter decides which state events go in a room's state section.
func (q *Queries) stateFilter(ctx context.Context, user, room string, since, start int64, fresh bool, rows []*eventRow, f SyncFilter) (keep func(typ, key string) bool, changedKeys int, err error) {
	inTimeline := map[[2]string]bool{}
	senders := map[string]bool{}
	for _, r := range rows {
		senders[r.Sender] = true
		if r.StateKey != nil {
			inTimeline[[2]string{r.Type, *r.StateKey}] = true
		}
	}
	var changed map[[2]string]bool
	if !fresh {
		changed = map[[2]string]bool{}
		if start > since {
			keys, err := q.q.SyncStateChanged(ctx, q.pool, readdb.SyncStateChangedParams{RoomID: room, Since: since, Upto: start})
			if err != nil {
				return nil, 0, fmt.Errorf("sync state: %w", err)
			}
			for _, k := range keys {
				changed[[2]string{k.Type, k.StateKey}] = true
			}
		}
	}
	lazy := f.Room.State.LazyLoadMembers
	// With lazy loading, an incremental sync also gives the member events of the
	// timeline's senders whose membership did not change; those the device was already
	// given are taken out afterwards (dropRedundantMembers), unless the filter asks for
	// redundant members.
	extra := 0
	if lazy && changed != nil {
		for s := range senders {
			if !changed[[2]string{"m.room.member", s}] {
				extra++
			}
		}
	}
	return func(typ, key string) bool {
		lazySender := lazy && typ == "m.room.member" && senders[key]
		if changed != nil && !changed[[2]string{typ, key}] && !lazySender {
			return false
		}
		// Lazy-loading members: those of the timeline's senders, and the user's own.
		if lazy && typ == "m.room.member" && !senders[key] && key != user {
			return false
		}
		e := eventRow{Type: typ, StateKey: &key, RoomID: room}
		return f.Room.State.matches(&e)
	}, len(changed) + extra, nil
}

// summary is a joined room's summary: member counts and heroes (the first five other
// members by user ID, for rooms without a name).
func (q *Queries) summary(ctx context.Context, user, room string, at int64) (RoomSummary, error) {
	rs, err := q.q.RoomStateAt(ctx, q.pool, readdb.RoomStateAtParams{RoomID: room, At: at})
	if err != nil {
		return RoomSummary{}, fmt.Errorf("sync summary: %w", err)
	}
	joined, invited := 0, 0
	var heroes []string
	for _, r := range rs {
		if r.Type != "m.room.member" {
			continue
		}
		switch deref(r.Membership) {
		case "join":
			joined++
		case "invite":
			invited++
		default:
			continue
		}
		if r.StateKey != user && len(heroes) < 5 {
			heroes = append(heroes, r.StateKey)
		}
	}
	return RoomSummary{Heroes: heroes, Joined: &joined, Invited: &invited}, nil
}

// strippedState is what an invited (or knocking) user sees of a room: a few state
// events, stripped, and their own membership event.
func (q *Queries) strippedState(ctx context.Context, v Viewer, room string, at int64) (out []json.RawMessage, inviter string, err error) {
	rs, err := q.q.RoomStateAt(ctx, q.pool, readdb.RoomStateAtParams{RoomID: room, At: at})
	if err != nil {
		return nil, "", fmt.Errorf("sync stripped state: %w", err)
	}
	out = []json.RawMessage{}
	for _, r := range rs {
		if r.Type == "m.room.member" && r.StateKey == v.UserID {
			inviter = r.Sender
		}
		if !slices.Contains(strippedTypes, r.Type) && !(r.Type == "m.room.member" && r.StateKey == v.UserID) {
			continue
		}
		var ev struct {
			Content json.RawMessage `json:"content"`
		}
		if err := json.Unmarshal([]byte(r.Event), &ev); err != nil {
			return nil, "", err
		}
		b, err := json.Marshal(map[string]any{"type": r.Type, "state_key": r.StateKey, "sender": r.Sender, "content": ev.Content})
		if err != nil {
			return nil, "", err
		}
		out = append(out, b)
	}
	return out, inviter, nil
}

// syncLeft builds a left room's section: its timeline up to the user's leave (or ban),
// and the state before it.
func (q *Queries) syncLeft(ctx context.Context, v Viewer, room string, since, leftAt int64, initial bool, limit int, f SyncFilter, ignored map[string]bool) (*LeftRoom, error) {
	after := since
	if initial {
		after = 0
	}
	rows, limited, err := q.timelineRows(ctx, v, room, after, leftAt, limit, f.Room.Timeline, ignored)
	if err != nil {
		return nil, err
	}
	start := leftAt
	if len(rows) > 0 {
		start = rows[0].StreamOrdering - 1
	}
	lr := &LeftRoom{AccountData: eventList{Events: []json.RawMessage{}}}
	if lr.Timeline, err = q.timeline(ctx, v, rows, limited, start); err != nil {
		return nil, err
	}
	keep, changedKeys, err := q.stateFilter(ctx, v.UserID, room, since, start, initial, rows, f)
	if err != nil {
		return nil, err
	}
	lr.State.Events = []json.RawMessage{}
	if initial || changedKeys > 0 {
		if lr.State.Events, err = q.stateAt(ctx, v, room, start, keep); err != nil {
			return nil, err
		}
	}
	return lr, nil
}

// syncPresence returns the presence changes after since of the user and of the members
// of their joined rooms.
func (q *Queries) syncPresence(ctx context.Context, user string, joined []string, since, at int64) ([]json.RawMessage, error) {
	users := []string{user}
	if len(joined) > 0 {
		rs, err := q.q.CoMembersAt(ctx, q.pool, readdb.CoMembersAtParams{RoomIds: joined, At: at})
		if err != nil {
			return nil, fmt.Errorf("sync presence: %w", err)
		}
		for _, u := range rs {
			if u != user {
				users = append(users, u)
			}
		}
	}
	rows, err := q.q.SyncPresence(ctx, q.pool, readdb.SyncPresenceParams{Since: since, At: at, UserIds: users})
	if err != nil {
		return nil, fmt.Errorf("sync presence: %w", err)
	}
	out := []json.RawMessage{}
	now := q.now()
	for _, r := range rows {
		ago := max(now.Sub(q.lastActive(r.UserID, r.LastActive)).Milliseconds(), 0)
		content := map[string]any{"presence": r.Presence, "last_active_ago": ago,
			"currently_active": r.Presence == "online" && ago < currentlyActiveWithin}
		if r.StatusMsg != nil {
			content["status_msg"] = *r.StatusMsg
		}
		b, err := json.Marshal(map[string]any{"type": "m.presence", "sender": r.UserID, "content": content})
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// syncReceipts returns, by room, the m.receipt event of the receipts that changed after
// since: every member's public receipts, and the viewer's private ones.
func (q *Queries) syncReceipts(ctx context.Context, user string, rooms []string, since, at int64, initial bool) (map[string][]json.RawMessage, error) {
	if initial {
		since = 0
	}
	rows, err := q.q.SyncReceipts(ctx, q.pool, readdb.SyncReceiptsParams{Since: since, At: at, RoomIds: rooms})
	if err != nil {
		return nil, fmt.Errorf("sync receipts: %w", err)
	}
	// room → event → type → user → receipt
	content := map[string]map[string]map[string]map[string]map[string]any{}
	for _, r := range rows {
		if r.ReceiptType == "m.read.private" && r.UserID != user {
			continue
		}
		byEvent := content[r.RoomID]
		if byEvent == nil {
			byEvent = map[string]map[string]map[string]map[string]any{}
			content[r.RoomID] = byEvent
		}
		byType := byEvent[r.EventID]
		if byType == nil {
			byType = map[string]map[string]map[string]any{}
			byEvent[r.EventID] = byType
		}
		if byType[r.ReceiptType] == nil {
			byType[r.ReceiptType] = map[string]map[string]any{}
		}
		receipt := map[string]any{"ts": r.Ts}
		if r.ThreadID != "" {
			receipt["thread_id"] = r.ThreadID
		}
		byType[r.ReceiptType][r.UserID] = receipt
	}
	out := map[string][]json.RawMessage{}
	for room, c := range content {
		b, err := json.Marshal(map[string]any{"type": "m.receipt", "content": c})
		if err != nil {
			return nil, err
		}
		out[room] = []json.RawMessage{b}
	}
	return out, nil
}

// syncToDevice puts the device's messages after since (up to at) in out, at most 100,
// and returns the position of the last one given (at when all were). Messages at or
// before since were received: out.ToDeviceAck says they can go.
func (q *Queries) syncToDevice(ctx context.Context, v Viewer, since, at int64, out *Sync) (int64, error) {
	rows, err := q.q.SyncToDevice(ctx, q.pool, readdb.SyncToDeviceParams{UserID: v.UserID, DeviceID: v.DeviceID, At: at})
	if err != nil {
		return 0, fmt.Errorf("sync to-device: %w", err)
	}
	last := at
	for _, r := range rows {
		if r.StreamOrdering <= since {
			// Received but not deleted yet (its acknowledgement is on its way).
			continue
		}
		if len(out.ToDevice.Events) == 100 {
			last = r.StreamOrdering - 1
			break
		}
		b, err := json.Marshal(map[string]any{"type": r.Type, "sender": r.Sender, "content": json.RawMessage(r.Content)})
		if err != nil {
			return 0, err
		}
		out.ToDevice.Events = append(out.ToDevice.Events, b)
	}
	return last, nil
}
