package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"spelt.dev/spelt/internal/config"
)

// call makes a request mautrix has no method for, through the client (and so the spec
// checks), decoding the answer into out when not nil.
func call(ctx context.Context, c *mautrix.Client, method string, path []any, body any, out any) error {
	_, err := c.MakeFullRequest(ctx, mautrix.FullRequest{Method: method, URL: c.BuildClientURL(path...), RequestJSON: body, ResponseJSON: out})
	return err
}

func TestCreateRoomOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob := s.user(ctx, "alice"), s.user(ctx, "bob")

	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "trusted_private_chat", Invite: []id.UserID{bob.ID}, IsDirect: true, RoomAliasName: "tea",
		CreationContent: map[string]any{"m.federate": false},
		InitialState: []*event.Event{{Type: event.StateTopic, StateKey: new(""), Content: event.Content{Raw: map[string]any{"topic": "from initial_state"}}},
			{Type: event.StateHistoryVisibility, StateKey: new(""), Content: event.Content{Raw: map[string]any{"history_visibility": "invited"}}}},
		PowerLevelOverride: &event.PowerLevelsEventContent{EventsDefault: 10, Users: map[id.UserID]int{alice.ID: 100}},
	})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	if _, err := bob.JoinRoom(ctx, "#tea:spelt.test", nil); err != nil {
		t.Fatal(err)
	}
	state, err := bob.StateAsArray(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	// The spec's order: create, creator's join, power levels, canonical alias, preset
	// events not given in initial_state, initial_state, then invites.
	var order []string
	for _, e := range state {
		order = append(order, e.Type.Type)
	}
	msgs, err := bob.Messages(ctx, room, "", "", mautrix.DirectionForward, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	var timeline []string
	for _, e := range msgs.Chunk {
		timeline = append(timeline, e.Type.Type)
	}
	want := []string{"m.room.create", "m.room.member", "m.room.power_levels", "m.room.canonical_alias", "m.room.join_rules",
		"m.room.guest_access", "m.room.topic", "m.room.history_visibility", "m.room.member", "m.room.member"}
	if strings.Join(timeline, ",") != strings.Join(want, ",") {
		t.Errorf("events in order %v, want %v", timeline, want)
	}
	var create, pl, invite, topic *event.Event
	for _, e := range msgs.Chunk {
		switch {
		case e.Type == event.StateCreate:
			create = e
		case e.Type == event.StatePowerLevels:
			pl = e
		case e.Type == event.StateMember && e.Content.Raw["membership"] == "invite":
			invite = e
		case e.Type == event.StateTopic:
			topic = e
		}
	}
	if create.Content.Raw["m.federate"] != false || create.Content.Raw["room_version"] != "10" || create.Content.Raw["creator"] != string(alice.ID) {
		t.Errorf("create content %v", create.Content.Raw)
	}
	if pl.Content.Raw["events_default"] != float64(10) {
		t.Errorf("power levels %v: override not applied", pl.Content.Raw)
	}
	if users := pl.Content.Raw["users"].(map[string]any); users[string(alice.ID)] != float64(100) || len(users) != 1 {
		t.Errorf("users %v: the override replaces users", users)
	}
	if invite == nil || invite.Content.Raw["is_direct"] != true {
		t.Errorf("invite %+v lacks is_direct", invite)
	}
	if topic.Content.Raw["topic"] != "from initial_state" {
		t.Errorf("topic %v", topic.Content.Raw)
	}
	_ = order

	// A taken alias, an unknown version, a bad preset, a bad invitee.
	_, err = alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{RoomAliasName: "tea"})
	wantErr(t, err, http.StatusBadRequest, "M_ROOM_IN_USE")
	_, err = alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{RoomVersion: "99"})
	wantErr(t, err, http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION")
	_, err = alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "party"})
	wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
	_, err = alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{"bob"}})
	wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
	// (mautrix's invite_3pid lacks id_access_token, which v1.13 requires.)
	status, _, body := s.raw("POST", "/_matrix/client/v3/createRoom", alice.AccessToken,
		[]byte(`{"invite_3pid":[{"id_server":"id.example","id_access_token":"t","medium":"email","address":"a@example.org"}]}`))
	wantError(t, "invite_3pid at an untrusted identity server", status, body, http.StatusBadRequest, "M_SERVER_NOT_TRUSTED")
	status, _, body = s.raw("POST", "/_matrix/client/v3/createRoom", alice.AccessToken,
		[]byte(`{"invite_3pid":[{"id_server":"id.example","medium":"email","address":"a@example.org"}]}`))
	wantError(t, "invite_3pid without id_access_token", status, body, http.StatusBadRequest, "M_MISSING_PARAM")
	status, _, _ = s.raw("POST", "/_matrix/client/v3/createRoom", alice.AccessToken, []byte(`{"name": 5}`))
	if status != http.StatusBadRequest {
		t.Errorf("name of the wrong type: %d", status)
	}
	// A space.
	space, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{CreationContent: map[string]any{"type": "m.space"}, Name: "Space"})
	if err != nil {
		t.Fatal(err)
	}
	var spaceCreate event.CreateEventContent
	if err := alice.StateEvent(ctx, space.RoomID, event.StateCreate, "", &spaceCreate); err != nil || spaceCreate.Type != "m.space" {
		t.Fatalf("space create %+v %v", spaceCreate, err)
	}
}

func TestRoomReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob, eve := s.user(ctx, "alice"), s.user(ctx, "bob"), s.user(ctx, "eve")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Reads"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	if _, err := bob.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	var ids []id.EventID
	for i := range 12 {
		sender := []user{alice, bob}[i%2]
		resp, err := sender.SendText(ctx, room, "m"+string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.EventID)
	}

	// Pagination both ways with tokens, and a filter.
	page, err := bob.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 5)
	if err != nil || len(page.Chunk) != 5 || page.Chunk[0].ID != ids[11] || page.End == "" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	next, err := bob.Messages(ctx, room, page.End, "", mautrix.DirectionBackward, nil, 5)
	if err != nil || next.Chunk[0].ID != ids[6] {
		t.Fatalf("second page starts at %v, want %s (%v)", next.Chunk, ids[6], err)
	}
	fwd, err := bob.Messages(ctx, room, next.End, "", mautrix.DirectionForward, nil, 3)
	if err != nil || len(fwd.Chunk) != 3 || fwd.Chunk[0].ID != ids[2] {
		t.Fatalf("forward from the second page's end: %+v %v", fwd, err)
	}
	onlyBob, err := alice.Messages(ctx, room, "", "", mautrix.DirectionBackward,
		&mautrix.FilterPart{Senders: []id.UserID{bob.ID}, Types: []event.Type{event.EventMessage}, LazyLoadMembers: true}, 100)
	if err != nil || len(onlyBob.Chunk) != 6 {
		t.Fatalf("filtered: %d events, %v", len(onlyBob.Chunk), err)
	}
	if len(onlyBob.State) != 1 || onlyBob.State[0].GetStateKey() != string(bob.ID) {
		t.Errorf("lazy-loaded members %v, want bob's", onlyBob.State)
	}
	_, err = bob.Messages(ctx, room, "nonsense", "", mautrix.DirectionBackward, nil, 5)
	wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
	status, _, _ := s.raw("GET", "/_matrix/client/v3/rooms/"+string(room)+"/messages?dir=sideways", bob.AccessToken, nil)
	if status != http.StatusBadRequest {
		t.Errorf("dir=sideways: %d", status)
	}

	// Context.
	cx, err := bob.Context(ctx, room, ids[5], nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	if cx.Event.ID != ids[5] || len(cx.EventsBefore) != 2 || cx.EventsBefore[0].ID != ids[4] || len(cx.EventsAfter) != 2 || cx.EventsAfter[0].ID != ids[6] {
		t.Fatalf("context: before %v after %v", cx.EventsBefore, cx.EventsAfter)
	}
	if len(cx.State) == 0 {
		t.Error("context without state")
	}

	// Timestamp to event.
	ev, err := bob.GetEvent(ctx, room, ids[3])
	if err != nil {
		t.Fatal(err)
	}
	tte, err := bob.TimestampToEvent(ctx, room, time.UnixMilli(ev.Timestamp), mautrix.DirectionForward)
	if err != nil || tte.Timestamp.UnixMilli() < ev.Timestamp {
		t.Fatalf("timestamp_to_event: %+v %v", tte, err)
	}
	_, err = bob.TimestampToEvent(ctx, room, time.Now().Add(time.Hour), mautrix.DirectionForward)
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")

	// Members with filters, and at a token from before bob joined.
	all, err := alice.Members(ctx, room)
	if err != nil || len(all.Chunk) != 2 {
		t.Fatalf("members: %+v %v", all, err)
	}
	early, err := alice.Messages(ctx, room, "", "", mautrix.DirectionForward, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	before, err := alice.Members(ctx, room, mautrix.ReqMembers{At: early.End})
	if err != nil || len(before.Chunk) != 0 && len(before.Chunk) != 1 {
		t.Fatalf("members at the start: %+v %v", before, err)
	}
	notJoined, err := alice.Members(ctx, room, mautrix.ReqMembers{NotMembership: event.MembershipJoin})
	if err != nil || len(notJoined.Chunk) != 0 {
		t.Fatalf("not_membership=join: %+v %v", notJoined, err)
	}
	status, _, _ = s.raw("GET", "/_matrix/client/v3/rooms/"+string(room)+"/members?membership=lurking", alice.AccessToken, nil)
	if status != http.StatusBadRequest {
		t.Errorf("membership=lurking: %d", status)
	}

	// The deprecated single event and room initial sync.
	var single map[string]any
	if err := call(ctx, bob.Client, "GET", []any{"v3", "events", ids[0]}, nil, &single); err != nil || single["event_id"] != string(ids[0]) {
		t.Fatalf("GET /events/{eventId}: %v %v", single, err)
	}
	var snap struct {
		RoomID     string `json:"room_id"`
		Membership string `json:"membership"`
		Messages   struct {
			Chunk []map[string]any `json:"chunk"`
		} `json:"messages"`
		State []map[string]any `json:"state"`
	}
	if err := call(ctx, bob.Client, "GET", []any{"v3", "rooms", room, "initialSync"}, nil, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Membership != "join" || len(snap.Messages.Chunk) != 10 || snap.Messages.Chunk[9]["event_id"] != string(ids[11]) || len(snap.State) == 0 {
		t.Fatalf("initialSync: membership %q, %d messages, %d state", snap.Membership, len(snap.Messages.Chunk), len(snap.State))
	}

	// A stranger may not read a shared room, until it becomes world readable.
	_, err = eve.GetEvent(ctx, room, ids[0])
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	if _, err := eve.State(ctx, room); err == nil {
		t.Fatal("stranger read the state")
	}
	if _, err := alice.SendStateEvent(ctx, room, event.StateHistoryVisibility, "", map[string]any{"history_visibility": "world_readable"}); err != nil {
		t.Fatal(err)
	}
	// History visibility applies as it was at each event: the room's past stays
	// hidden, what follows is readable.
	for range 2 {
		if _, err := alice.SendText(ctx, room, "for everyone"); err != nil {
			t.Fatal(err)
		}
	}
	peek, err := eve.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 10)
	if err != nil || len(peek.Chunk) != 3 || peek.Chunk[2].Type.Type != event.StateHistoryVisibility.Type {
		t.Fatalf("peeking a world-readable room: %+v %v %v", peek, err, peek.Chunk[len(peek.Chunk)-1].Type)
	}
	var name event.RoomNameEventContent
	if err := eve.StateEvent(ctx, room, event.StateRoomName, "", &name); err != nil || name.Name != "Reads" {
		t.Fatalf("peeked name %+v %v", name, err)
	}
	if _, err := eve.JoinedMembers(ctx, room); err == nil {
		t.Error("a peeking stranger listed joined members")
	}
}

func TestUpgradeRoom(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob := s.user(ctx, "alice"), s.user(ctx, "bob")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Old", Topic: "t", RoomAliasName: "up", RoomVersion: "9", Visibility: "public"})
	if err != nil {
		t.Fatal(err)
	}
	old := created.RoomID
	if _, err := bob.JoinRoomByID(ctx, old); err != nil {
		t.Fatal(err)
	}
	upgrade := func(u user, version string) (string, error) {
		var out struct {
			ReplacementRoom string `json:"replacement_room"`
		}
		err := call(ctx, u.Client, "POST", []any{"v3", "rooms", old, "upgrade"}, map[string]any{"new_version": version}, &out)
		return out.ReplacementRoom, err
	}
	_, err = upgrade(bob, "10")
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	_, err = upgrade(alice, "99")
	wantErr(t, err, http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION")
	newID, err := upgrade(alice, "11")
	if err != nil {
		t.Fatal(err)
	}
	newRoom := id.RoomID(newID)

	var tomb event.TombstoneEventContent
	if err := bob.StateEvent(ctx, old, event.StateTombstone, "", &tomb); err != nil || tomb.ReplacementRoom != newRoom {
		t.Fatalf("tombstone %+v %v", tomb, err)
	}
	var create event.CreateEventContent
	if err := alice.StateEvent(ctx, newRoom, event.StateCreate, "", &create); err != nil {
		t.Fatal(err)
	}
	if create.Predecessor == nil || create.Predecessor.RoomID != old || create.RoomVersion != "11" {
		t.Fatalf("new room's create %+v", create)
	}
	var name event.RoomNameEventContent
	if err := alice.StateEvent(ctx, newRoom, event.StateRoomName, "", &name); err != nil || name.Name != "Old" {
		t.Fatalf("name not carried over: %+v %v", name, err)
	}
	res, err := bob.ResolveAlias(ctx, "#up:spelt.test")
	if err != nil || res.RoomID != newRoom {
		t.Fatalf("alias points at %+v (%v), want the new room", res, err)
	}
	// The directory lists the new room instead; the old room's canonical alias is gone.
	dir, err := bob.PublicRooms(ctx, &mautrix.ReqPublicRooms{})
	if err != nil || len(dir.Chunk) != 1 || dir.Chunk[0].RoomID != newRoom {
		t.Fatalf("public rooms after the upgrade: %+v %v", dir, err)
	}
	var oldAlias event.CanonicalAliasEventContent
	if err := bob.StateEvent(ctx, old, event.StateCanonicalAlias, "", &oldAlias); err != nil || oldAlias.Alias != "" {
		t.Fatalf("old room's canonical alias %+v %v", oldAlias, err)
	}
	var newAlias event.CanonicalAliasEventContent
	if err := alice.StateEvent(ctx, newRoom, event.StateCanonicalAlias, "", &newAlias); err != nil || newAlias.Alias != "#up:spelt.test" {
		t.Fatalf("new room's canonical alias %+v %v", newAlias, err)
	}
	// Bob follows the tombstone; in the old room he can no longer talk.
	if _, err := bob.JoinRoomByID(ctx, newRoom); err != nil {
		t.Fatal(err)
	}
	_, err = bob.SendText(ctx, old, "still here?")
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	if _, err := bob.SendText(ctx, newRoom, "moved"); err != nil {
		t.Fatal(err)
	}
}

func TestReports(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTestEnv(t, nil)
	s := te.start()
	alice, eve := s.user(ctx, "alice"), s.user(ctx, "eve")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	msg, err := alice.SendText(ctx, room, "rude")
	if err != nil {
		t.Fatal(err)
	}
	if err := call(ctx, alice.Client, "POST", []any{"v3", "rooms", room, "report", msg.EventID}, map[string]any{"reason": "rude words", "score": -50}, nil); err != nil {
		t.Fatal(err)
	}
	// Not in the room, unknown event, bad score.
	err = eve.ReportEvent(ctx, room, msg.EventID, "x")
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	err = alice.ReportEvent(ctx, room, "$nope", "x")
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	err = call(ctx, alice.Client, "POST", []any{"v3", "rooms", room, "report", msg.EventID}, map[string]any{"score": -500}, nil)
	wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
	// Rooms can be reported by anyone; unknown rooms are 404.
	if err := eve.ReportRoom(ctx, room, "spam room"); err != nil {
		t.Fatal(err)
	}
	err = eve.ReportRoom(ctx, "!nope:spelt.test", "x")
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	err = call(ctx, eve.Client, "POST", []any{"v3", "rooms", room, "report"}, map[string]any{}, nil)
	wantErr(t, err, http.StatusBadRequest, "M_MISSING_PARAM")

	code, stdout, stderr := te.cli(ctx, "admin", "reports", "list")
	if code != 0 {
		t.Fatalf("admin reports list: %d %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "spam room") || !strings.Contains(lines[1], "(room)") ||
		!strings.Contains(lines[2], string(msg.EventID)) || !strings.Contains(lines[2], "-50") {
		t.Fatalf("reports list:\n%s", stdout)
	}
}

func TestHierarchy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob := s.user(ctx, "alice"), s.user(ctx, "bob")
	mk := func(req *mautrix.ReqCreateRoom) id.RoomID {
		r, err := alice.CreateRoom(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return r.RoomID
	}
	space := mk(&mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Space", CreationContent: map[string]any{"type": "m.space"}})
	sub := mk(&mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Sub", CreationContent: map[string]any{"type": "m.space"}})
	pub := mk(&mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Public", Topic: "hello"})
	secret := mk(&mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Secret"})
	deep := mk(&mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Deep"})
	child := func(parent, c id.RoomID, order string, suggested bool) {
		if _, err := alice.SendStateEvent(ctx, parent, event.StateSpaceChild, string(c), map[string]any{"via": []string{"spelt.test"}, "order": order, "suggested": suggested}); err != nil {
			t.Fatal(err)
		}
	}
	child(space, pub, "b", true)
	child(space, sub, "a", false)
	child(space, secret, "c", true)
	child(sub, deep, "", false)

	h, err := bob.Hierarchy(ctx, space, &mautrix.ReqHierarchy{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range h.Rooms {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "Space,Sub,Deep,Public" {
		t.Fatalf("hierarchy for bob: %v (depth first, by order; the private room hidden)", names)
	}
	if len(h.Rooms[0].ChildrenState) != 3 || h.Rooms[3].Topic != "hello" || h.Rooms[3].NumJoinedMembers != 1 {
		t.Errorf("rooms: %+v", h.Rooms)
	}
	alices, err := alice.Hierarchy(ctx, space, &mautrix.ReqHierarchy{SuggestedOnly: true})
	if err != nil || len(alices.Rooms) != 3 {
		t.Fatalf("suggested only, for alice: %+v %v", alices, err)
	}
	shallow, err := bob.Hierarchy(ctx, space, &mautrix.ReqHierarchy{MaxDepth: new(1)})
	if err != nil || len(shallow.Rooms) != 3 {
		t.Fatalf("max_depth 1: %+v %v", shallow, err)
	}
	p1, err := bob.Hierarchy(ctx, space, &mautrix.ReqHierarchy{Limit: 2})
	if err != nil || len(p1.Rooms) != 2 || p1.NextBatch == "" {
		t.Fatalf("page 1: %+v %v", p1, err)
	}
	p2, err := bob.Hierarchy(ctx, space, &mautrix.ReqHierarchy{Limit: 2, From: p1.NextBatch})
	if err != nil || len(p2.Rooms) != 2 || p2.Rooms[0].Name != "Deep" || p2.NextBatch != "" {
		t.Fatalf("page 2: %+v %v", p2, err)
	}
	_, err = bob.Hierarchy(ctx, secret, &mautrix.ReqHierarchy{})
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	_, err = bob.Hierarchy(ctx, space, &mautrix.ReqHierarchy{From: "bogus"})
	wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
}

func TestGuestsInRooms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, func(c *config.Config) { c.Registration.Guests = true }).start()
	alice := s.user(ctx, "alice")
	reg, _, err := s.client("", "").RegisterGuest(ctx, &mautrix.ReqRegister[any]{})
	if err != nil {
		t.Fatal(err)
	}
	guest := s.client(string(reg.UserID), reg.AccessToken)
	open, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", InitialState: []*event.Event{
		{Type: event.StateGuestAccess, StateKey: new(""), Content: event.Content{Raw: map[string]any{"guest_access": "can_join"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	closed, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := guest.JoinRoomByID(ctx, open.RoomID); err != nil {
		t.Fatal(err)
	}
	_, err = guest.JoinRoomByID(ctx, closed.RoomID)
	wantErr(t, err, http.StatusForbidden, "M_GUEST_ACCESS_FORBIDDEN")
	if _, err := guest.SendText(ctx, open.RoomID, "hi from a guest"); err != nil {
		t.Fatal(err)
	}
	// Guests may send any event and state (spec v1.2 on); the room's power levels still
	// apply.
	if _, err := guest.SendMessageEvent(ctx, open.RoomID, event.EventReaction, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	_, err = guest.SendStateEvent(ctx, open.RoomID, event.StateTopic, "", map[string]any{"topic": "guest topic"})
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	_, err = guest.CreateRoom(ctx, &mautrix.ReqCreateRoom{})
	wantErr(t, err, http.StatusForbidden, "M_GUEST_ACCESS_FORBIDDEN")
}

func TestRoomBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice := s.user(ctx, "alice")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{})
	if err != nil {
		t.Fatal(err)
	}
	room := string(created.RoomID)
	before := s.eventCount()
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"not JSON", "PUT", "/rooms/" + room + "/send/m.room.message/t1", `{"body":`, 400, "M_NOT_JSON"},
		{"not an object", "PUT", "/rooms/" + room + "/send/m.room.message/t2", `["a"]`, 400, "M_BAD_JSON"},
		{"unknown room", "PUT", "/rooms/!nope:spelt.test/send/m.room.message/t3", `{}`, 404, "M_NOT_FOUND"},
		{"state of unknown room", "PUT", "/rooms/!nope:spelt.test/state/m.room.topic/", `{"topic":"x"}`, 404, "M_NOT_FOUND"},
		{"bad canonical alias", "PUT", "/rooms/" + room + "/state/m.room.canonical_alias/", `{"alias":"#nope:spelt.test"}`, 400, "M_BAD_ALIAS"},
		{"bad server ACL", "PUT", "/rooms/" + room + "/state/m.room.server_acl/", `{"allow":"*"}`, 400, "M_INVALID_PARAM"},
		{"create again", "PUT", "/rooms/" + room + "/state/m.room.create/", `{}`, 403, "M_FORBIDDEN"},
		{"redact unknown", "PUT", "/rooms/" + room + "/redact/$nope/t4", `{}`, 404, "M_NOT_FOUND"},
		{"invite without user", "POST", "/rooms/" + room + "/invite", `{}`, 400, "M_MISSING_PARAM"},
		{"invite by e-mail without an identity server", "POST", "/rooms/" + room + "/invite",
			`{"id_server":"id.example","id_access_token":"t","medium":"email","address":"a@example.org"}`, 400, "M_SERVER_NOT_TRUSTED"},
		{"kick non-member", "POST", "/rooms/" + room + "/kick", `{"user_id":"@zed:spelt.test"}`, 403, "M_FORBIDDEN"},
		{"join garbage", "POST", "/join/garbage", `{}`, 400, "M_INVALID_PARAM"},
		{"join unknown alias", "POST", "/join/%23nope:spelt.test", `{}`, 404, "M_NOT_FOUND"},
		{"forget while joined", "POST", "/rooms/" + room + "/forget", `{}`, 400, "M_INVALID_PARAM"},
		{"too large", "PUT", "/rooms/" + room + "/send/m.room.message/t5", `{"body":"` + strings.Repeat("x", 65000) + `"}`, 413, "M_TOO_LARGE"},
	} {
		status, _, body := s.raw(tc.method, "/_matrix/client/v3"+tc.path, alice.AccessToken, []byte(tc.body))
		if status != tc.status || body["errcode"] != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, status, body, tc.status, tc.code)
		}
	}
	if after := s.eventCount(); after != before {
		t.Errorf("bad requests appended %d events", after-before)
	}
	// The state key may be empty with or without the trailing slash.
	if status, _, body := s.raw("PUT", "/_matrix/client/v3/rooms/"+room+"/state/m.room.topic", alice.AccessToken, []byte(`{"topic":"a"}`)); status != 200 {
		t.Fatalf("state without a trailing slash: %d %v", status, body)
	}
	status, _, body := s.raw("GET", "/_matrix/client/v3/rooms/"+room+"/state/m.room.topic/", alice.AccessToken, nil)
	if status != 200 || body["topic"] != "a" {
		t.Fatalf("state with the trailing slash: %d %v", status, body)
	}
	var raw json.RawMessage
	if err := call(ctx, alice.Client, "GET", []any{"v3", "rooms", room, "state", "m.room.name", ""}, nil, &raw); err == nil {
		t.Error("absent state found")
	} else {
		wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	}
}

// TestDeactivationLeavesRooms: a deactivated user leaves their rooms and declines their
// invites.
func TestDeactivationLeavesRooms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob := s.user(ctx, "alice"), s.user(ctx, "bob")
	joined, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoomByID(ctx, joined.RoomID); err != nil {
		t.Fatal(err)
	}
	invited, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{bob.ID}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, body := s.raw("POST", "/_matrix/client/v3/account/deactivate", bob.AccessToken, []byte(`{}`))
	session, _ := body["session"].(string)
	req := mustJSON(t, map[string]any{"auth": passwordAuth(session, "bob", "correct horse battery staple")})
	if status, _, body := s.raw("POST", "/_matrix/client/v3/account/deactivate", bob.AccessToken, req); status != 200 {
		t.Fatalf("deactivate: %d %v", status, body)
	}
	for _, room := range []id.RoomID{joined.RoomID, invited.RoomID} {
		var member event.MemberEventContent
		if err := alice.StateEvent(ctx, room, event.StateMember, string(bob.ID), &member); err != nil || member.Membership != event.MembershipLeave {
			t.Errorf("bob's membership of %s after deactivation: %+v %v", room, member, err)
		}
	}
}

// TestDeactivationErase: after a user deactivates with erase, users who join later get
// their messages redacted; users who were there keep seeing them.
func TestDeactivationErase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob, carol := s.user(ctx, "alice"), s.user(ctx, "bob"), s.user(ctx, "carol")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	if _, err := bob.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	msg, err := bob.SendText(ctx, room, "my secret")
	if err != nil {
		t.Fatal(err)
	}
	_, _, body := s.raw("POST", "/_matrix/client/v3/account/deactivate", bob.AccessToken, []byte(`{"erase":true}`))
	session, _ := body["session"].(string)
	req := mustJSON(t, map[string]any{"erase": true, "auth": passwordAuth(session, "bob", "correct horse battery staple")})
	if status, _, body := s.raw("POST", "/_matrix/client/v3/account/deactivate", bob.AccessToken, req); status != 200 {
		t.Fatalf("deactivate: %d %v", status, body)
	}
	if _, err := carol.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	seen, err := alice.GetEvent(ctx, room, msg.EventID)
	if err != nil || seen.Content.Raw["body"] != "my secret" {
		t.Fatalf("alice, there before the erasure: %+v %v", seen.Content.Raw, err)
	}
	late, err := carol.GetEvent(ctx, room, msg.EventID)
	if err != nil || len(late.Content.Raw) != 0 {
		t.Fatalf("carol, who joined after the erasure: %+v %v", late.Content.Raw, err)
	}
	page, err := carol.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Chunk {
		if e.ID == msg.EventID && len(e.Content.Raw) != 0 {
			t.Fatalf("carol's /messages has the erased content: %v", e.Content.Raw)
		}
	}
}
