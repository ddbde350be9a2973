package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// relSend sends an event of type typ with content, relating it to target with relType
// (no relation when relType is empty).
func relSend(t *testing.T, u user, room id.RoomID, typ, relType string, target id.EventID, content map[string]any) id.EventID {
	t.Helper()
	c := map[string]any{"msgtype": "m.text", "body": "text"}
	for k, v := range content {
		c[k] = v
	}
	if relType != "" {
		c["m.relates_to"] = map[string]any{"rel_type": relType, "event_id": target}
	}
	res, err := u.SendMessageEvent(context.Background(), room, event.Type{Type: typ, Class: event.MessageEventType}, c)
	if err != nil {
		t.Fatalf("send %s %s: %v", typ, relType, err)
	}
	return res.EventID
}

// relIDs lists the IDs of events.
func relIDs(events []*event.Event) []id.EventID {
	out := make([]id.EventID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// relThreads is GET /rooms/{roomId}/threads (mautrix has no helper for it).
type relThreadsPage struct {
	Chunk     []*event.Event `json:"chunk"`
	NextBatch string         `json:"next_batch"`
}

func relThreads(ctx context.Context, u user, room id.RoomID, query map[string]string) (*relThreadsPage, error) {
	var page relThreadsPage
	_, err := u.MakeFullRequest(ctx, mautrix.FullRequest{Method: http.MethodGet,
		URL: u.BuildURLWithQuery(mautrix.ClientURLPath{"v1", "rooms", room, "threads"}, query), ResponseJSON: &page})
	if err != nil {
		return nil, err
	}
	return &page, nil
}

// relThread is the m.thread aggregation of an event as u gets it from GET /event.
func relThread(t *testing.T, u user, room id.RoomID, root id.EventID) *event.ThreadAggregation {
	t.Helper()
	ev, err := u.GetEvent(context.Background(), room, root)
	if err != nil {
		t.Fatal(err)
	}
	return ev.Unsigned.Relations.GetThread()
}

func TestRelationsThreads(t *testing.T) {
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

	root1 := relSend(t, alice, room, "m.room.message", "", "", map[string]any{"body": "first topic"})
	root2 := relSend(t, bob, room, "m.room.message", "", "", map[string]any{"body": "second topic"})
	relSend(t, bob, room, "m.room.message", "m.thread", root1, map[string]any{"body": "b1"})
	relSend(t, carol, room, "m.room.message", "m.thread", root2, map[string]any{"body": "c1"})
	relSend(t, bob, room, "m.room.message", "m.thread", root1, map[string]any{"body": "b2"})
	a1 := relSend(t, alice, room, "m.room.message", "m.thread", root1, map[string]any{"body": "a1"})
	// An edit of the latest reply is no reply: the count stays, the latest event
	// carries the edit.
	edit := relSend(t, alice, room, "m.room.message", "m.replace", a1, map[string]any{"body": "* a1!", "m.new_content": map[string]any{"msgtype": "m.text", "body": "a1!"}})

	for _, tc := range []struct {
		who          user
		participated bool
	}{{alice, true}, {bob, true}, {carol, false}} {
		th := relThread(t, tc.who, room, root1)
		if th == nil {
			t.Fatalf("%s: root has no m.thread aggregation", tc.who.ID)
		}
		if th.Count != 3 || th.CurrentUserParticipated != tc.participated {
			t.Errorf("%s: thread = count %d, participated %v; want 3, %v", tc.who.ID, th.Count, th.CurrentUserParticipated, tc.participated)
		}
		latest := th.LatestEvent
		if latest == nil || latest.ID != a1 || latest.Content.Raw["body"] != "a1" || latest.Sender != alice.ID {
			t.Fatalf("%s: latest_event = %+v, want %s", tc.who.ID, latest, a1)
		}
		if e := latest.Unsigned.Relations.GetLatestEdit(); e == nil || e.ID != edit {
			t.Errorf("%s: latest_event's m.replace = %+v, want %s", tc.who.ID, e, edit)
		}
	}
	// The reply is no thread root, and /messages bundles the same aggregation.
	if th := relThread(t, alice, room, a1); th != nil {
		t.Errorf("a thread reply has an m.thread aggregation: %+v", th)
	}
	msgs, err := carol.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range msgs.Chunk {
		if e.ID == root2 {
			found = true
			th := e.Unsigned.Relations.GetThread()
			if th.GetCount() != 1 || !th.GetCurrentUserParticipated() || th.GetLatestEvent() == nil {
				t.Errorf("/messages: root2's thread for carol = %+v", th)
			}
		}
	}
	if !found {
		t.Fatal("/messages lacks root2")
	}

	// The thread list, most recently active first.
	all, err := relThreads(ctx, alice, room, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := relIDs(all.Chunk); !slices.Equal(got, []id.EventID{root1, root2}) {
		t.Fatalf("threads = %v, want %v", got, []id.EventID{root1, root2})
	}
	if th := all.Chunk[0].Unsigned.Relations.GetThread(); th.GetCount() != 3 || th.GetLatestEvent().ID != a1 {
		t.Errorf("threads: root1's aggregation = %+v", th)
	}
	if all.NextBatch != "" {
		t.Errorf("threads: next_batch %q on the last page", all.NextBatch)
	}
	page1, err := relThreads(ctx, alice, room, map[string]string{"limit": "1"})
	if err != nil || len(page1.Chunk) != 1 || page1.Chunk[0].ID != root1 || page1.NextBatch == "" {
		t.Fatalf("threads page 1 = %+v, %v", page1, err)
	}
	page2, err := relThreads(ctx, alice, room, map[string]string{"limit": "1", "from": page1.NextBatch})
	if err != nil || len(page2.Chunk) != 1 || page2.Chunk[0].ID != root2 {
		t.Fatalf("threads page 2 = %+v, %v", page2, err)
	}
	if page2.NextBatch != "" {
		if page3, err := relThreads(ctx, alice, room, map[string]string{"limit": "1", "from": page2.NextBatch}); err != nil || len(page3.Chunk) != 0 {
			t.Fatalf("threads page 3 = %+v, %v", page3, err)
		}
	}
	// include=participated: alice took part in root1 only, bob in both (he started
	// root2), carol in root2 (she replied).
	for _, tc := range []struct {
		who  user
		want []id.EventID
	}{{alice, []id.EventID{root1}}, {bob, []id.EventID{root1, root2}}, {carol, []id.EventID{root2}}} {
		p, err := relThreads(ctx, tc.who, room, map[string]string{"include": "participated"})
		if err != nil {
			t.Fatal(err)
		}
		if got := relIDs(p.Chunk); !slices.Equal(got, tc.want) {
			t.Errorf("%s: participated threads = %v, want %v", tc.who.ID, got, tc.want)
		}
	}

	// A new reply moves root2 to the top.
	relSend(t, alice, room, "m.room.message", "m.thread", root2, map[string]any{"body": "a2"})
	all, err = relThreads(ctx, carol, room, map[string]string{"include": "all"})
	if err != nil {
		t.Fatal(err)
	}
	if got := relIDs(all.Chunk); !slices.Equal(got, []id.EventID{root2, root1}) {
		t.Fatalf("threads after a reply = %v, want %v", got, []id.EventID{root2, root1})
	}

	// The thread's events through /relations.
	rel, err := bob.GetRelations(ctx, room, root1, &mautrix.ReqGetRelations{RelationType: event.RelThread})
	if err != nil {
		t.Fatal(err)
	}
	if len(rel.Chunk) != 3 || rel.Chunk[0].ID != a1 {
		t.Errorf("thread relations = %v", relIDs(rel.Chunk))
	}
}

func TestRelationsEditsAndReferences(t *testing.T) {
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
	orig := relSend(t, alice, room, "m.room.message", "", "", map[string]any{"body": "I like cake"})
	newContent := func(body string) map[string]any {
		return map[string]any{"body": "* " + body, "m.new_content": map[string]any{"msgtype": "m.text", "body": body}}
	}
	edit1 := relSend(t, alice, room, "m.room.message", "m.replace", orig, newContent("I like chocolate cake"))
	edit2 := relSend(t, alice, room, "m.room.message", "m.replace", orig, newContent("I like carrot cake"))
	// Invalid replacements, which must be ignored: by another sender, of another type,
	// without m.new_content.
	relSend(t, bob, room, "m.room.message", "m.replace", orig, newContent("bob was here"))
	relSend(t, alice, room, "org.example.other", "m.replace", orig, newContent("wrong type"))
	relSend(t, alice, room, "m.room.message", "m.replace", orig, map[string]any{"body": "* no new content"})

	// The most recent valid edit: by origin_server_ts, then event ID.
	e1, err := alice.GetEvent(ctx, room, edit1)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := alice.GetEvent(ctx, room, edit2)
	if err != nil {
		t.Fatal(err)
	}
	want, other := e2, e1
	if e1.Timestamp > e2.Timestamp || e1.Timestamp == e2.Timestamp && e1.ID > e2.ID {
		want, other = e1, e2
	}
	ev, err := bob.GetEvent(ctx, room, orig)
	if err != nil {
		t.Fatal(err)
	}
	got := ev.Unsigned.Relations.GetLatestEdit()
	if got == nil || got.ID != want.ID || got.Sender != alice.ID {
		t.Fatalf("m.replace = %+v, want %s", got, want.ID)
	}
	if nc, _ := got.Content.Raw["m.new_content"].(map[string]any); nc == nil || nc["body"] != want.Content.Raw["m.new_content"].(map[string]any)["body"] {
		t.Errorf("m.replace content = %v", got.Content.Raw)
	}
	if ev.Content.Raw["body"] != "I like cake" {
		t.Errorf("the original's content changed: %v", ev.Content.Raw)
	}
	// An edit has no aggregation of its own.
	if e, err := alice.GetEvent(ctx, room, edit1); err != nil || e.Unsigned.Relations != nil {
		t.Errorf("edit's m.relations = %+v, %v", e.Unsigned.Relations, err)
	}

	// References.
	ref1 := relSend(t, bob, room, "m.room.message", "m.reference", orig, nil)
	ref2 := relSend(t, alice, room, "org.example.ref", "m.reference", orig, nil)
	ev, err = alice.GetEvent(ctx, room, orig)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Unsigned.Relations.GetReferences().GetEventIDs(); !slices.Equal(got, []id.EventID{ref1, ref2}) {
		t.Errorf("m.reference = %v, want %v", got, []id.EventID{ref1, ref2})
	}

	// Redacting the edit in force reverts to the other one; the redacted edit leaves
	// the relations.
	if _, err := alice.RedactEvent(ctx, room, want.ID); err != nil {
		t.Fatal(err)
	}
	ev, err = bob.GetEvent(ctx, room, orig)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Unsigned.Relations.GetLatestEdit(); got == nil || got.ID != other.ID {
		t.Fatalf("m.replace after redacting %s = %+v, want %s", want.ID, got, other.ID)
	}
	rel, err := bob.GetRelations(ctx, room, orig, &mautrix.ReqGetRelations{RelationType: event.RelReplace})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(relIDs(rel.Chunk), want.ID) || len(rel.Chunk) != 4 {
		t.Errorf("replace relations after the redaction = %v", relIDs(rel.Chunk))
	}
	// A redacted reference leaves the aggregation.
	if _, err := bob.RedactEvent(ctx, room, ref1); err != nil {
		t.Fatal(err)
	}
	// Redacting the original drops m.replace (spec: "Redactions of edited events"),
	// not the references.
	if _, err := alice.RedactEvent(ctx, room, orig); err != nil {
		t.Fatal(err)
	}
	ev, err = bob.GetEvent(ctx, room, orig)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Unsigned.Relations.GetLatestEdit() != nil {
		t.Error("a redacted event still has m.replace")
	}
	if got := ev.Unsigned.Relations.GetReferences().GetEventIDs(); !slices.Equal(got, []id.EventID{ref2}) {
		t.Errorf("m.reference after redacting %s = %v, want %v", ref1, got, []id.EventID{ref2})
	}
}

func TestRelationsPagination(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice := s.user(ctx, "alice")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	parent := relSend(t, alice, room, "m.room.message", "", "", nil)
	c1 := relSend(t, alice, room, "m.room.message", "m.thread", parent, nil)
	c2 := relSend(t, alice, room, "m.room.message", "m.reference", parent, nil)
	c3 := relSend(t, alice, room, "m.room.message", "m.thread", parent, nil)
	c4 := relSend(t, alice, room, "org.example.note", "m.thread", parent, nil)
	c5 := relSend(t, alice, room, "m.room.message", "m.thread", parent, nil)
	// An event of another room naming the parent is no relation of it.
	other, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	if err != nil {
		t.Fatal(err)
	}
	relSend(t, alice, other.RoomID, "m.room.message", "m.reference", parent, nil)

	get := func(req *mautrix.ReqGetRelations) *mautrix.RespGetRelations {
		t.Helper()
		res, err := alice.GetRelations(ctx, room, parent, req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// Backwards (the default), two at a time.
	var got []id.EventID
	var pages int
	req := &mautrix.ReqGetRelations{Limit: 2}
	var tokens []string
	for {
		res := get(req)
		pages++
		if req.From != "" && res.PrevBatch != req.From {
			t.Errorf("prev_batch = %q, want %q", res.PrevBatch, req.From)
		}
		if req.From == "" && res.PrevBatch != "" {
			t.Errorf("first page has prev_batch %q", res.PrevBatch)
		}
		if res.RecursionDepth != 0 {
			t.Errorf("recursion_depth %d without recurse", res.RecursionDepth)
		}
		got = append(got, relIDs(res.Chunk)...)
		if res.NextBatch == "" || pages > 5 {
			break
		}
		tokens = append(tokens, res.NextBatch)
		req = &mautrix.ReqGetRelations{Limit: 2, From: res.NextBatch}
	}
	if want := []id.EventID{c5, c4, c3, c2, c1}; !slices.Equal(got, want) || pages != 3 {
		t.Fatalf("backwards: %v in %d pages, want %v in 3", got, pages, want)
	}
	// Forwards.
	got, pages = nil, 0
	req = &mautrix.ReqGetRelations{Limit: 2, Dir: mautrix.DirectionForward}
	for {
		res := get(req)
		pages++
		got = append(got, relIDs(res.Chunk)...)
		if res.NextBatch == "" || pages > 5 {
			break
		}
		req = &mautrix.ReqGetRelations{Limit: 2, Dir: mautrix.DirectionForward, From: res.NextBatch}
	}
	if want := []id.EventID{c1, c2, c3, c4, c5}; !slices.Equal(got, want) || pages != 3 {
		t.Fatalf("forwards: %v in %d pages, want %v in 3", got, pages, want)
	}
	// from ... to: the first two pages in one, and none from page 2 to page 1.
	if res := get(&mautrix.ReqGetRelations{Limit: 10, To: tokens[1]}); !slices.Equal(relIDs(res.Chunk), []id.EventID{c5, c4, c3, c2}) || res.NextBatch != "" {
		t.Errorf("to page 2's end: %v next %q", relIDs(res.Chunk), res.NextBatch)
	}
	if res := get(&mautrix.ReqGetRelations{Limit: 10, From: tokens[1], To: tokens[0]}); len(res.Chunk) != 0 {
		t.Errorf("from page 2 to page 1: %v", relIDs(res.Chunk))
	}
	// A /messages token works too.
	msgs, err := alice.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res := get(&mautrix.ReqGetRelations{From: msgs.Start, Limit: 1}); !slices.Equal(relIDs(res.Chunk), []id.EventID{c5}) {
		t.Errorf("from /messages' start: %v", relIDs(res.Chunk))
	}

	// Filters.
	for _, tc := range []struct {
		rel  event.RelationType
		typ  string
		want []id.EventID
	}{
		{event.RelThread, "", []id.EventID{c5, c4, c3, c1}},
		{event.RelThread, "m.room.message", []id.EventID{c5, c3, c1}},
		{event.RelThread, "org.example.note", []id.EventID{c4}},
		{event.RelReference, "", []id.EventID{c2}},
		{event.RelReplace, "", []id.EventID{}},
	} {
		res := get(&mautrix.ReqGetRelations{RelationType: tc.rel, EventType: event.Type{Type: tc.typ}})
		if got := relIDs(res.Chunk); !slices.Equal(got, tc.want) {
			t.Errorf("%s/%s: %v, want %v", tc.rel, tc.typ, got, tc.want)
		}
	}

	// Recursion: c3 <- edit (depth 2) <- reference (3) <- reference (4).
	d2 := relSend(t, alice, room, "m.room.message", "m.replace", c3, map[string]any{"m.new_content": map[string]any{"msgtype": "m.text", "body": "x"}})
	d3 := relSend(t, alice, room, "m.room.message", "m.reference", d2, nil)
	d4 := relSend(t, alice, room, "m.room.message", "m.reference", d3, nil)
	if res := get(&mautrix.ReqGetRelations{Limit: 20}); !slices.Equal(relIDs(res.Chunk), []id.EventID{c5, c4, c3, c2, c1}) {
		t.Errorf("direct relations = %v", relIDs(res.Chunk))
	}
	res := get(&mautrix.ReqGetRelations{Recurse: true, Limit: 20})
	if want := []id.EventID{d3, d2, c5, c4, c3, c2, c1}; !slices.Equal(relIDs(res.Chunk), want) || slices.Contains(relIDs(res.Chunk), d4) {
		t.Errorf("recursive relations = %v, want %v", relIDs(res.Chunk), want)
	}
	if res.RecursionDepth != 3 {
		t.Errorf("recursion_depth = %d, want 3", res.RecursionDepth)
	}
	res = get(&mautrix.ReqGetRelations{Recurse: true, RelationType: event.RelReference, Dir: mautrix.DirectionForward, Limit: 1})
	if !slices.Equal(relIDs(res.Chunk), []id.EventID{c2}) || res.NextBatch == "" {
		t.Fatalf("recursive references, page 1 = %v next %q", relIDs(res.Chunk), res.NextBatch)
	}
	res = get(&mautrix.ReqGetRelations{Recurse: true, RelationType: event.RelReference, Dir: mautrix.DirectionForward, Limit: 5, From: res.NextBatch})
	if !slices.Equal(relIDs(res.Chunk), []id.EventID{d3}) {
		t.Errorf("recursive references, page 2 = %v, want %v", relIDs(res.Chunk), []id.EventID{d3})
	}
	// recurse=false answers with the depth it went to: the direct relations.
	var raw map[string]any
	_, err = alice.MakeFullRequest(ctx, mautrix.FullRequest{Method: http.MethodGet, ResponseJSON: &raw, URL: alice.BuildURLWithQuery(
		mautrix.ClientURLPath{"v1", "rooms", room, "relations", parent}, map[string]string{"recurse": "false"})})
	if err != nil || raw["recursion_depth"] != float64(1) || len(raw["chunk"].([]any)) != 5 {
		t.Errorf("recurse=false: %v, %v", raw, err)
	}

	// Children carry their own aggregations.
	res = get(&mautrix.ReqGetRelations{RelationType: event.RelThread, EventType: event.Type{Type: "m.room.message"}, Dir: mautrix.DirectionForward, Limit: 2})
	if !slices.Equal(relIDs(res.Chunk), []id.EventID{c1, c3}) {
		t.Fatalf("thread messages, forwards = %v", relIDs(res.Chunk))
	}
	if e := res.Chunk[1].Unsigned.Relations.GetLatestEdit(); e == nil || e.ID != d2 {
		t.Errorf("c3 in /relations: m.replace = %+v, want %s", e, d2)
	}
}

func TestRelationsAccess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob, eve := s.user(ctx, "alice"), s.user(ctx, "bob"), s.user(ctx, "eve")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.ID}})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	if _, err := bob.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	root := relSend(t, alice, room, "m.room.message", "", "", nil)
	before := relSend(t, bob, room, "m.room.message", "m.thread", root, nil)
	if _, err := bob.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	after := relSend(t, alice, room, "m.room.message", "m.thread", root, nil)

	// Alice sees both replies; bob, who left, only the one before he left.
	if th := relThread(t, alice, room, root); th.GetCount() != 2 || th.GetLatestEvent().ID != after || !th.CurrentUserParticipated {
		t.Errorf("alice's thread = %+v", th)
	}
	th := relThread(t, bob, room, root)
	if th.GetCount() != 1 || th.GetLatestEvent() == nil || th.GetLatestEvent().ID != before || !th.CurrentUserParticipated {
		t.Errorf("bob's thread = %+v", th)
	}
	rel, err := bob.GetRelations(ctx, room, root, &mautrix.ReqGetRelations{})
	if err != nil {
		t.Fatal(err)
	}
	if got := relIDs(rel.Chunk); !slices.Equal(got, []id.EventID{before}) {
		t.Errorf("bob's relations = %v, want %v", got, []id.EventID{before})
	}
	// An event bob cannot see is not found, even for its relations.
	if _, err := bob.GetRelations(ctx, room, after, &mautrix.ReqGetRelations{}); err == nil {
		t.Error("bob got the relations of an event sent after he left")
	} else {
		wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	}
	threads, err := relThreads(ctx, bob, room, nil)
	if err != nil || len(threads.Chunk) != 1 || threads.Chunk[0].Unsigned.Relations.GetThread().GetCount() != 1 {
		t.Errorf("bob's threads = %+v, %v", threads, err)
	}

	// A stranger sees nothing.
	if _, err := eve.GetRelations(ctx, room, root, &mautrix.ReqGetRelations{}); err == nil {
		t.Error("a stranger got relations")
	} else {
		wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	}
	if _, err := relThreads(ctx, eve, room, nil); err == nil {
		t.Error("a stranger listed threads")
	} else {
		wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	}
	if _, err := alice.GetRelations(ctx, room, "$nope", &mautrix.ReqGetRelations{}); err == nil {
		t.Error("relations of an unknown event")
	} else {
		wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	}
	if _, err := relThreads(ctx, alice, "!nowhere:localhost", nil); err == nil {
		t.Error("threads of an unknown room")
	} else {
		wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	}

	// Bad parameters.
	relPath := "/_matrix/client/v1/rooms/" + url.PathEscape(string(room)) + "/relations/" + url.PathEscape(string(root))
	threadsPath := "/_matrix/client/v1/rooms/" + url.PathEscape(string(room)) + "/threads"
	for _, q := range []string{
		relPath + "?dir=x", relPath + "?limit=-1", relPath + "?limit=ten", relPath + "?from=garbage", relPath + "?to=s-1",
		relPath + "?recurse=maybe", relPath + "/m.thread?dir=up",
		threadsPath + "?include=mine", threadsPath + "?limit=0", threadsPath + "?from=nope",
	} {
		status, _, body := s.raw(http.MethodGet, q, alice.AccessToken, nil)
		wantError(t, q, status, body, http.StatusBadRequest, "M_INVALID_PARAM")
	}
	if status, _, body := s.raw(http.MethodGet, relPath, "", nil); status != http.StatusUnauthorized {
		t.Errorf("no token: %d %v", status, body)
	}
}
