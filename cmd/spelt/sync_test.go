package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// bodies lists the bodies of the messages among events.
func bodies(events []*event.Event) []string {
	var out []string
	for _, e := range events {
		if e.Type.Type == "m.room.message" {
			b, _ := e.Content.Raw["body"].(string)
			out = append(out, b)
		}
	}
	return out
}

func TestSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob := s.user(ctx, "alice"), s.user(ctx, "bob")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Name: "Syncing", Invite: []id.UserID{bob.ID}})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	for _, m := range []string{"one", "two", "three"} {
		if _, err := alice.SendText(ctx, room, m); err != nil {
			t.Fatal(err)
		}
	}

	// Initial syncs: alice is joined, bob invited.
	a0, err := alice.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	jr, ok := a0.Rooms.Join[room]
	if !ok {
		t.Fatalf("alice's initial sync lacks the room: %+v", a0.Rooms)
	}
	if got := bodies(jr.Timeline.Events); len(got) != 3 || got[2] != "three" {
		t.Errorf("alice's timeline: %v", got)
	}
	if jr.Summary.JoinedMemberCount == nil || *jr.Summary.JoinedMemberCount != 1 || *jr.Summary.InvitedMemberCount != 1 {
		t.Errorf("summary: %+v", jr.Summary)
	}
	b0, err := bob.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	inv, ok := b0.Rooms.Invite[room]
	if !ok || len(inv.State.Events) == 0 {
		t.Fatalf("bob's invite: %+v", b0.Rooms)
	}
	sawName := false
	for _, e := range inv.State.Events {
		if e.Type == event.StateRoomName {
			sawName = true
		}
	}
	if !sawName {
		t.Error("invite_state lacks the room name")
	}

	// Bob joins: his next sync has the room with its state.
	if _, err := bob.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	b1, err := bob.SyncRequest(ctx, 0, b0.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	bj, ok := b1.Rooms.Join[room]
	if !ok {
		t.Fatalf("bob's sync after joining lacks the room: %+v", b1.Rooms)
	}
	if len(bj.State.Events)+len(bj.Timeline.Events) == 0 {
		t.Error("no state for a newly joined room")
	}

	// Nothing new: an incremental sync without timeout returns at once, empty.
	b2, err := bob.SyncRequest(ctx, 0, b1.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(b2.Rooms.Join) != 0 || b2.NextBatch != b1.NextBatch {
		t.Errorf("empty sync: %+v, next_batch %s vs %s", b2.Rooms, b2.NextBatch, b1.NextBatch)
	}

	// A long-poll returns when alice sends.
	type result struct {
		resp *mautrix.RespSync
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		r, err := bob.SyncRequest(ctx, 20000, b2.NextBatch, "", false, "")
		done <- result{r, err, time.Since(start)}
	}()
	sent, err := alice.SendText(ctx, room, "wake up")
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := bodies(r.resp.Rooms.Join[room].Timeline.Events); len(got) != 1 || got[0] != "wake up" || r.took > 10*time.Second {
		t.Fatalf("long-poll: %v after %v", got, r.took)
	}
	if r.resp.Rooms.Join[room].Timeline.Events[0].ID != sent.EventID {
		t.Error("wrong event")
	}

	// A gap: more messages than the filter's limit make the timeline limited, and its
	// prev_batch pages back through /messages.
	for i := range 8 {
		if _, err := alice.SendText(ctx, room, "burst "+string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	filter, err := bob.CreateFilter(ctx, &mautrix.Filter{Room: &mautrix.RoomFilter{Timeline: &mautrix.FilterPart{Limit: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	b3, err := bob.SyncRequest(ctx, 0, r.resp.NextBatch, filter.FilterID, false, "")
	if err != nil {
		t.Fatal(err)
	}
	tl := b3.Rooms.Join[room].Timeline
	if got := bodies(tl.Events); !tl.Limited || len(got) != 3 || got[2] != "burst h" || tl.PrevBatch == "" {
		t.Fatalf("limited timeline: limited %v, %v, prev_batch %q", tl.Limited, got, tl.PrevBatch)
	}
	back, err := bob.Messages(ctx, room, tl.PrevBatch, "", mautrix.DirectionBackward, nil, 5)
	if err != nil || len(back.Chunk) != 5 || back.Chunk[0].Content.Raw["body"] != "burst e" {
		t.Fatalf("paging back from prev_batch: %v %v", bodies(back.Chunk), err)
	}

	// Account data and tags.
	if err := bob.SetAccountData(ctx, "org.example.sync", map[string]any{"x": 1}); err != nil {
		t.Fatal(err)
	}
	if err := bob.AddTag(ctx, room, event.RoomTagFavourite, 0.2); err != nil {
		t.Fatal(err)
	}
	b4, err := bob.SyncRequest(ctx, 0, b3.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(b4.AccountData.Events) != 1 || b4.AccountData.Events[0].Type.Type != "org.example.sync" {
		t.Errorf("account data in sync: %+v", b4.AccountData.Events)
	}
	if ad := b4.Rooms.Join[room]; ad == nil || len(ad.AccountData.Events) != 1 || ad.AccountData.Events[0].Type.Type != "m.tag" {
		t.Errorf("m.tag in sync: %+v", b4.Rooms.Join[room])
	}

	// Kicked: the room moves to leave, with the kick in its timeline.
	if _, err := alice.KickUser(ctx, room, &mautrix.ReqKickUser{UserID: bob.ID, Reason: "bye"}); err != nil {
		t.Fatal(err)
	}
	b5, err := bob.SyncRequest(ctx, 0, b4.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	left, ok := b5.Rooms.Leave[room]
	if !ok || len(left.Timeline.Events) == 0 {
		t.Fatalf("bob's sync after the kick: %+v", b5.Rooms)
	}
	last := left.Timeline.Events[len(left.Timeline.Events)-1]
	if last.Type != event.StateMember || last.Content.Raw["membership"] != "leave" || last.Sender != alice.ID {
		t.Errorf("the kick is not the last event: %+v", last)
	}
	if _, stillJoined := b5.Rooms.Join[room]; stillJoined {
		t.Error("room still in join after the kick")
	}

	// Bad input.
	status, _, _ := s.raw("GET", "/_matrix/client/v3/sync?since=bogus", alice.AccessToken, nil)
	if status != http.StatusBadRequest {
		t.Errorf("bad since: %d", status)
	}
	status, _, _ = s.raw("GET", "/_matrix/client/v3/sync?timeout=soon", alice.AccessToken, nil)
	if status != http.StatusBadRequest {
		t.Errorf("bad timeout: %d", status)
	}
}

// TestSyncAcrossRestartAndReplay: a sync token stays valid across a restart and across
// spelt replay, and the client receives every event exactly once.
func TestSyncAcrossRestartAndReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTestEnv(t, nil)
	s := te.start()
	alice := s.user(ctx, "alice")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	seen := map[id.EventID]int{}
	syncOnce := func(c *mautrix.Client, since string) string {
		t.Helper()
		r, err := c.SyncRequest(ctx, 0, since, "", false, "")
		if err != nil {
			t.Fatal(err)
		}
		if jr, ok := r.Rooms.Join[room]; ok {
			if jr.Timeline.Limited {
				t.Fatal("unexpected gap")
			}
			for _, e := range jr.Timeline.Events {
				seen[e.ID]++
			}
		}
		return r.NextBatch
	}
	send := func(c *mautrix.Client, body string) {
		t.Helper()
		if _, err := c.SendText(ctx, room, body); err != nil {
			t.Fatal(err)
		}
	}
	send(alice.Client, "before")
	token := syncOnce(alice.Client, "")

	s.stop()
	s = te.start()
	c := s.client(string(alice.ID), alice.AccessToken)
	send(c, "after restart")
	token = syncOnce(c, token)

	s.stop()
	if code, _, stderr := te.cli(ctx, "replay"); code != 0 {
		t.Fatalf("replay: %d %s", code, stderr)
	}
	s = te.start()
	c = s.client(string(alice.ID), alice.AccessToken)
	send(c, "after replay")
	syncOnce(c, token)

	msgs, err := c.Messages(ctx, room, "", "", mautrix.DirectionForward, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range msgs.Chunk {
		if seen[e.ID] != 1 {
			t.Errorf("event %s (%s) seen %d times through sync", e.ID, e.Type.Type, seen[e.ID])
		}
	}
}

// TestSyncIgnoredUsers: a user's ignored users' messages and invites do not reach
// their syncs; their state events do.
func TestSyncIgnoredUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob, eve := s.user(ctx, "alice"), s.user(ctx, "bob"), s.user(ctx, "eve")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	for _, u := range []user{bob, eve} {
		if _, err := u.JoinRoomByID(ctx, room); err != nil {
			t.Fatal(err)
		}
	}
	if err := bob.SetAccountData(ctx, "m.ignored_user_list", map[string]any{"ignored_users": map[string]any{string(eve.ID): map[string]any{}}}); err != nil {
		t.Fatal(err)
	}
	b0, err := bob.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eve.SendText(ctx, room, "from eve"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendText(ctx, room, "from alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendStateEvent(ctx, room, event.StateTopic, "", map[string]any{"topic": "t"}); err != nil {
		t.Fatal(err)
	}
	evesRoom, err := eve.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{bob.ID}})
	if err != nil {
		t.Fatal(err)
	}
	b1, err := bob.SyncRequest(ctx, 0, b0.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := bodies(b1.Rooms.Join[room].Timeline.Events); len(got) != 1 || got[0] != "from alice" {
		t.Errorf("bob's timeline: %v", got)
	}
	if _, ok := b1.Rooms.Invite[evesRoom.RoomID]; ok {
		t.Error("bob got the ignored user's invite")
	}
	// Alice, who ignores nobody, sees both.
	page, err := alice.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 5)
	if err != nil || len(bodies(page.Chunk)) != 2 {
		t.Fatalf("alice's messages: %v %v", bodies(page.Chunk), err)
	}
}

// TestLegacySync: the deprecated GET /initialSync and GET /events.
func TestLegacySync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob := s.user(ctx, "alice"), s.user(ctx, "bob")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Name: "Old school", Invite: []id.UserID{bob.ID}})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	if _, err := alice.SendText(ctx, room, "hello"); err != nil {
		t.Fatal(err)
	}
	var snap struct {
		End   string `json:"end"`
		Rooms []struct {
			RoomID     string `json:"room_id"`
			Membership string `json:"membership"`
			Messages   struct {
				Chunk []map[string]any `json:"chunk"`
			} `json:"messages"`
			State  []map[string]any `json:"state"`
			Invite map[string]any   `json:"invite"`
		} `json:"rooms"`
	}
	if err := call(ctx, alice.Client, "GET", []any{"v3", "initialSync"}, nil, &snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Rooms) != 1 || snap.Rooms[0].Membership != "join" || len(snap.Rooms[0].State) == 0 || len(snap.Rooms[0].Messages.Chunk) == 0 {
		t.Fatalf("alice's initialSync: %+v", snap)
	}
	var bobs struct {
		Rooms []struct {
			Membership string         `json:"membership"`
			Invite     map[string]any `json:"invite"`
		} `json:"rooms"`
	}
	if err := call(ctx, bob.Client, "GET", []any{"v3", "initialSync"}, nil, &bobs); err != nil {
		t.Fatal(err)
	}
	if len(bobs.Rooms) != 1 || bobs.Rooms[0].Membership != "invite" || bobs.Rooms[0].Invite["sender"] != string(alice.ID) {
		t.Fatalf("bob's initialSync: %+v", bobs)
	}

	// /events from the end of the snapshot waits for the next event.
	type res struct {
		Start string           `json:"start"`
		End   string           `json:"end"`
		Chunk []map[string]any `json:"chunk"`
	}
	done := make(chan res, 1)
	go func() {
		var r res
		_, err := alice.MakeFullRequest(ctx, mautrix.FullRequest{Method: "GET", URL: alice.BuildURLWithQuery(mautrix.ClientURLPath{"v3", "events"},
			map[string]string{"from": snap.End, "timeout": "10000"}), ResponseJSON: &r})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	if _, err := alice.SendText(ctx, room, "next"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if len(r.Chunk) != 1 || r.Chunk[0]["content"].(map[string]any)["body"] != "next" || r.End == "" {
		t.Fatalf("/events: %+v", r)
	}
}

// TestPeekEvents: GET /events?room_id= follows a world-readable room without joining it.
func TestPeekEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, eve := s.user(ctx, "alice"), s.user(ctx, "eve")
	open, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", InitialState: []*event.Event{
		{Type: event.StateHistoryVisibility, StateKey: new(""), Content: event.Content{Raw: map[string]any{"history_visibility": "world_readable"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	closed, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{})
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		End   string           `json:"end"`
		Chunk []map[string]any `json:"chunk"`
	}
	peek := func(room id.RoomID, from, timeout string) (res, error) {
		var r res
		q := map[string]string{"room_id": string(room), "timeout": timeout}
		if from != "" {
			q["from"] = from
		}
		_, err := eve.MakeFullRequest(ctx, mautrix.FullRequest{Method: "GET", URL: eve.BuildURLWithQuery(mautrix.ClientURLPath{"v3", "events"}, q), ResponseJSON: &r})
		return r, err
	}
	first, err := peek(open.RoomID, "", "0")
	if err != nil || len(first.Chunk) != 0 || first.End == "" {
		t.Fatalf("first peek: %+v %v", first, err)
	}
	done := make(chan res, 1)
	go func() {
		r, err := peek(open.RoomID, first.End, "10000")
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	if _, err := alice.SendText(ctx, open.RoomID, "for all to see"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if len(r.Chunk) != 1 || r.Chunk[0]["content"].(map[string]any)["body"] != "for all to see" {
		t.Fatalf("peeked events: %+v", r)
	}
	_, err = peek(closed.RoomID, "", "0")
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
}

// TestSyncLazyLoadMembers: with lazy_load_members, a first sync's state has the member
// events of the timeline's senders and the user's own, not the rest.
func TestSyncLazyLoadMembers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob, carol := s.user(ctx, "alice"), s.user(ctx, "bob"), s.user(ctx, "carol")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	for _, u := range []user{bob, carol} {
		if _, err := u.JoinRoomByID(ctx, room); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := alice.SendText(ctx, room, "from alice"); err != nil {
			t.Fatal(err)
		}
	}
	filter, err := carol.CreateFilter(ctx, &mautrix.Filter{Room: &mautrix.RoomFilter{
		Timeline: &mautrix.FilterPart{Limit: 2}, State: &mautrix.FilterPart{LazyLoadMembers: true}}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := carol.SyncRequest(ctx, 0, "", filter.FilterID, false, "")
	if err != nil {
		t.Fatal(err)
	}
	members := map[string]bool{}
	for _, e := range r.Rooms.Join[room].State.Events {
		if e.Type == event.StateMember {
			members[e.GetStateKey()] = true
		}
	}
	if !members[string(alice.ID)] || !members[string(carol.ID)] || members[string(bob.ID)] {
		t.Fatalf("lazy-loaded members: %v (want alice, the sender, and carol herself; not bob)", members)
	}
	// Without lazy loading, every member, in the state or (being recent) the timeline.
	full, err := carol.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range append(full.Rooms.Join[room].State.Events, full.Rooms.Join[room].Timeline.Events...) {
		if e.Type == event.StateMember {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d member events without lazy loading, want 3", n)
	}
}

// TestSyncGapsAndMembership: a state change in a gap comes in the state section of a
// limited timeline; a rejected invite moves the room to leave; a user who leaves and
// comes back gets the room again with its state.
func TestSyncGapsAndMembership(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob := s.user(ctx, "alice"), s.user(ctx, "bob")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	if _, err := bob.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	b0, err := bob.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendStateEvent(ctx, room, event.StateTopic, "", map[string]any{"topic": "in the gap"}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := alice.SendText(ctx, room, fmt.Sprintf("after %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	filter, err := bob.CreateFilter(ctx, &mautrix.Filter{Room: &mautrix.RoomFilter{Timeline: &mautrix.FilterPart{Limit: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	b1, err := bob.SyncRequest(ctx, 0, b0.NextBatch, filter.FilterID, false, "")
	if err != nil {
		t.Fatal(err)
	}
	jr := b1.Rooms.Join[room]
	if jr == nil || !jr.Timeline.Limited {
		t.Fatalf("no gap: %+v", jr)
	}
	topicInState := false
	for _, e := range jr.State.Events {
		if e.Type == event.StateTopic && e.Content.Raw["topic"] == "in the gap" {
			topicInState = true
		}
		if e.Type == event.StateMember {
			t.Errorf("unchanged member event in the gap's state: %s", e.GetStateKey())
		}
	}
	if !topicInState {
		t.Fatalf("the topic changed in the gap is not in the state: %+v", jr.State.Events)
	}

	// An invite, then its rejection.
	other, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{bob.ID}})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := bob.SyncRequest(ctx, 0, b1.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b2.Rooms.Invite[other.RoomID]; !ok {
		t.Fatalf("no invite: %+v", b2.Rooms)
	}
	if _, err := bob.LeaveRoom(ctx, other.RoomID); err != nil {
		t.Fatal(err)
	}
	b3, err := bob.SyncRequest(ctx, 0, b2.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b3.Rooms.Leave[other.RoomID]; !ok {
		t.Fatalf("the rejected invite is not in leave: %+v", b3.Rooms)
	}
	if _, ok := b3.Rooms.Invite[other.RoomID]; ok {
		t.Fatal("the rejected invite is still an invite")
	}

	// Leave and come back.
	if _, err := bob.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	b4, err := bob.SyncRequest(ctx, 0, b3.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b4.Rooms.Leave[room]; !ok {
		t.Fatalf("not in leave after leaving: %+v", b4.Rooms)
	}
	if _, err := bob.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	b5, err := bob.SyncRequest(ctx, 0, b4.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	back := b5.Rooms.Join[room]
	if back == nil || len(back.State.Events)+len(back.Timeline.Events) == 0 {
		t.Fatalf("rejoined room: %+v", back)
	}
	sawCreate := false
	for _, e := range append(back.State.Events, back.Timeline.Events...) {
		if e.Type == event.StateCreate {
			sawCreate = true
		}
	}
	if !sawCreate {
		t.Error("a rejoined room comes with its full state (no create event seen)")
	}
}

// TestSyncLazyMembersIncremental: with lazy loading, an incremental sync gives the
// member event of a timeline's sender the client was not given before.
func TestSyncLazyMembersIncremental(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob, carol := s.user(ctx, "alice"), s.user(ctx, "bob"), s.user(ctx, "carol")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	for _, u := range []user{bob, carol} {
		if _, err := u.JoinRoomByID(ctx, room); err != nil {
			t.Fatal(err)
		}
	}
	for range 12 { // carol's join is no longer in a 3-event timeline
		if _, err := alice.SendText(ctx, room, "filler"); err != nil {
			t.Fatal(err)
		}
	}
	filter, err := bob.CreateFilter(ctx, &mautrix.Filter{Room: &mautrix.RoomFilter{
		Timeline: &mautrix.FilterPart{Limit: 3}, State: &mautrix.FilterPart{LazyLoadMembers: true}}})
	if err != nil {
		t.Fatal(err)
	}
	b0, err := bob.SyncRequest(ctx, 0, "", filter.FilterID, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.SendText(ctx, room, "hello from carol"); err != nil {
		t.Fatal(err)
	}
	b1, err := bob.SyncRequest(ctx, 0, b0.NextBatch, filter.FilterID, false, "")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range b1.Rooms.Join[room].State.Events {
		if e.Type == event.StateMember && e.GetStateKey() == string(carol.ID) {
			found = true
		}
	}
	if !found {
		t.Fatalf("carol's member event is missing from the incremental sync: %+v", b1.Rooms.Join[room].State.Events)
	}

	// Once given, carol's member event is not given again (include_redundant_members
	// is false by default)...
	carolMember := func(r *mautrix.RespSync) bool {
		for _, e := range r.Rooms.Join[room].State.Events {
			if e.Type == event.StateMember && e.GetStateKey() == string(carol.ID) {
				return true
			}
		}
		return false
	}
	if _, err := carol.SendText(ctx, room, "again"); err != nil {
		t.Fatal(err)
	}
	b2, err := bob.SyncRequest(ctx, 0, b1.NextBatch, filter.FilterID, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if carolMember(b2) {
		t.Fatal("carol's member event was given again")
	}
	// ... unless the filter asks for redundant members.
	redundant, err := bob.CreateFilter(ctx, &mautrix.Filter{Room: &mautrix.RoomFilter{
		Timeline: &mautrix.FilterPart{Limit: 3}, State: &mautrix.FilterPart{LazyLoadMembers: true, IncludeRedundantMembers: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.SendText(ctx, room, "and again"); err != nil {
		t.Fatal(err)
	}
	b3, err := bob.SyncRequest(ctx, 0, b2.NextBatch, redundant.FilterID, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if !carolMember(b3) {
		t.Fatal("include_redundant_members: carol's member event is missing")
	}
}

// TestSyncWakesOnlyForRelevantChanges: a long-poll wakes for a change in one of its
// user's rooms, and not for messages in rooms the user is not in.
func TestSyncWakesOnlyForRelevantChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	ann, bo := s.user(ctx, "ann"), s.user(ctx, "bo")
	mine, err := ann.CreateRoom(ctx, &mautrix.ReqCreateRoom{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := bo.CreateRoom(ctx, &mautrix.ReqCreateRoom{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := ann.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	// While ann long-polls, bo talks in his own room: ann's sync must not look again.
	type result struct {
		resp *mautrix.RespSync
		err  error
	}
	done := make(chan result, 1)
	looks := s.app.http.SyncLooks()
	go func() {
		r, err := ann.SyncRequest(ctx, 3000, first.NextBatch, "", false, "")
		done <- result{r, err}
	}()
	for i := range 20 {
		if _, err := bo.SendText(ctx, other.RoomID, fmt.Sprintf("not for ann %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := bo.SetPresence(ctx, mautrix.ReqPresence{Presence: "unavailable"}); err != nil {
		t.Fatal(err)
	}
	// Then something in her room: the long-poll answers with it.
	sent, err := ann.SendText(ctx, mine.RoomID, "for ann")
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if jr, ok := r.resp.Rooms.Join[mine.RoomID]; !ok || len(jr.Timeline.Events) != 1 || jr.Timeline.Events[0].ID != sent.EventID {
		t.Fatalf("long-poll answer: %+v", r.resp.Rooms.Join)
	}
	if _, ok := r.resp.Rooms.Join[other.RoomID]; ok {
		t.Fatal("ann got bo's room")
	}
	// Her long-poll read the read models at most a few times (the first look, one
	// for a move between a look and its watch, and the wake-up), not once per message.
	if n := s.app.http.SyncLooks() - looks; n > 4 {
		t.Fatalf("the long-poll looked %d times for 21 changes that were not hers", n)
	}
}

// TestSyncFilterSections: event_fields, and the account data, presence and ephemeral
// filters.
func TestSyncFilterSections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	ann, bo := s.user(ctx, "ann"), s.user(ctx, "bo")
	created, err := ann.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	if _, err := bo.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	msg, err := bo.SendText(ctx, room, "fields")
	if err != nil {
		t.Fatal(err)
	}
	if err := ann.MarkRead(ctx, room, msg.EventID); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"org.example.keep", "org.example.drop"} {
		if err := ann.SetAccountData(ctx, typ, map[string]string{"x": "y"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bo.SetPresence(ctx, mautrix.ReqPresence{Presence: "online"}); err != nil {
		t.Fatal(err)
	}
	other, err := ann.CreateRoom(ctx, &mautrix.ReqCreateRoom{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ann.SendText(ctx, other.RoomID, "not in the timeline filter"); err != nil {
		t.Fatal(err)
	}
	filter := mustJSON(t, map[string]any{
		"event_fields": []string{"type", "content.body", "event_id"},
		"account_data": map[string]any{"types": []string{"org.example.keep"}},
		"presence":     map[string]any{"not_types": []string{"m.presence"}},
		"room": map[string]any{
			"ephemeral": map[string]any{"not_types": []string{"m.receipt"}},
			"timeline":  map[string]any{"types": []string{"m.room.message"}, "not_rooms": []string{string(other.RoomID)}},
		},
	})
	status, _, body := s.raw("GET", "/_matrix/client/v3/sync?filter="+url.QueryEscape(string(filter)), ann.AccessToken, nil)
	if status != 200 {
		t.Fatalf("sync: %d %v", status, body)
	}
	var r struct {
		AccountData struct{ Events []map[string]any } `json:"account_data"`
		Presence    struct{ Events []map[string]any } `json:"presence"`
		Rooms       struct {
			Join map[string]struct {
				Timeline  struct{ Events []map[string]any } `json:"timeline"`
				Ephemeral struct{ Events []map[string]any } `json:"ephemeral"`
			} `json:"join"`
		} `json:"rooms"`
	}
	_ = json.Unmarshal(mustJSON(t, body), &r)
	if len(r.AccountData.Events) != 1 || r.AccountData.Events[0]["type"] != "org.example.keep" {
		t.Errorf("account data: %v", r.AccountData.Events)
	}
	if len(r.Presence.Events) != 0 {
		t.Errorf("presence: %v", r.Presence.Events)
	}
	if o := r.Rooms.Join[string(other.RoomID)]; len(o.Timeline.Events) != 0 {
		t.Errorf("timeline not_rooms: %v", o.Timeline.Events)
	}
	jr := r.Rooms.Join[string(room)]
	if len(jr.Ephemeral.Events) != 0 {
		t.Errorf("ephemeral: %v", jr.Ephemeral.Events)
	}
	if len(jr.Timeline.Events) != 1 {
		t.Fatalf("timeline: %v", jr.Timeline.Events)
	}
	ev := jr.Timeline.Events[0]
	content, _ := ev["content"].(map[string]any)
	// What was asked, and the fields every event must have.
	if len(ev) != 5 || ev["type"] != "m.room.message" || ev["event_id"] != string(msg.EventID) || len(content) != 1 || content["body"] != "fields" {
		t.Errorf("event_fields: %v", ev)
	}
}

// TestSyncFederationFormat: event_format "federation" gives room events as their PDUs,
// redacted ones redacted.
func TestSyncFederationFormat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	ann := s.user(ctx, "ann")
	created, err := ann.CreateRoom(ctx, &mautrix.ReqCreateRoom{})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := ann.SendText(ctx, created.RoomID, "stays")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := ann.SendText(ctx, created.RoomID, "goes")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ann.RedactEvent(ctx, created.RoomID, gone.EventID); err != nil {
		t.Fatal(err)
	}
	filter := url.QueryEscape(`{"event_format":"federation","room":{"timeline":{"limit":20}}}`)
	status, _, body := s.raw("GET", "/_matrix/client/v3/sync?filter="+filter, ann.AccessToken, nil)
	if status != 200 {
		t.Fatalf("sync: %d %v", status, body)
	}
	var r struct {
		Rooms struct {
			Join map[string]struct {
				Timeline struct{ Events []map[string]any } `json:"timeline"`
			} `json:"join"`
		} `json:"rooms"`
	}
	_ = json.Unmarshal(mustJSON(t, body), &r)
	found := 0
	for _, e := range r.Rooms.Join[string(created.RoomID)].Timeline.Events {
		if e["hashes"] == nil || e["signatures"] == nil || e["depth"] == nil || e["prev_events"] == nil || e["auth_events"] == nil {
			t.Fatalf("not a PDU: %v", e)
		}
		content, _ := e["content"].(map[string]any)
		switch e["event_id"] {
		case string(kept.EventID):
			found++
			if content["body"] != "stays" {
				t.Errorf("kept event: %v", e)
			}
		case string(gone.EventID):
			found++
			if len(content) != 0 {
				t.Errorf("redacted event's PDU keeps content: %v", e)
			}
		}
	}
	if found != 2 {
		t.Fatalf("events found: %d", found)
	}
}
