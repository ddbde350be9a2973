package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/synapseadmin"
)

// adminUser registers a server administrator through the shared-secret API.
func (s *testServer) adminUser(ctx context.Context, name string) user {
	s.t.Helper()
	sa := &synapseadmin.Client{Client: s.client("", "")}
	r, err := sa.SharedSecretRegister(ctx, "s3cret", synapseadmin.ReqSharedSecretRegister{Username: name, Password: "pw", Admin: true})
	if err != nil {
		s.t.Fatal(err)
	}
	c := s.client(string(r.UserID), r.AccessToken)
	c.DeviceID = r.DeviceID
	return user{ID: r.UserID, Client: c}
}

// resolves checks that alias points at room, with this server as the one to ask.
func resolves(t *testing.T, ctx context.Context, c *mautrix.Client, alias id.RoomAlias, room id.RoomID) {
	t.Helper()
	res, err := c.ResolveAlias(ctx, alias)
	if err != nil {
		t.Fatalf("resolve %s: %v", alias, err)
	}
	if res.RoomID != room || !slices.Equal(res.Servers, []string{testServerName}) {
		t.Fatalf("resolve %s = %+v, want %s on [%s]", alias, res, room, testServerName)
	}
}

func unresolved(t *testing.T, ctx context.Context, c *mautrix.Client, alias id.RoomAlias) {
	t.Helper()
	_, err := c.ResolveAlias(ctx, alias)
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
}

func aliasesOf(t *testing.T, ctx context.Context, u user, room id.RoomID) []id.RoomAlias {
	t.Helper()
	res, err := u.GetAliases(ctx, room)
	if err != nil {
		t.Fatalf("%s: aliases of %s: %v", u.ID, room, err)
	}
	return res.Aliases
}

func TestRoomAliases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob, carol := s.user(ctx, "alice"), s.user(ctx, "bob"), s.user(ctx, "carol")
	anon := s.client("", "")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Tea"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	other, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	if err != nil {
		t.Fatal(err)
	}

	// Alice, in the room, creates an alias; anyone resolves it, without a token.
	const tea = id.RoomAlias("#tea:" + testServerName)
	if _, err := alice.CreateAlias(ctx, tea, room); err != nil {
		t.Fatal(err)
	}
	resolves(t, ctx, anon, tea, room)
	if got := aliasesOf(t, ctx, alice, room); !slices.Equal(got, []id.RoomAlias{tea}) {
		t.Fatalf("aliases = %v, want [%s]", got, tea)
	}

	// The alias is taken: for this room and for another one alike.
	for _, target := range []id.RoomID{room, other.RoomID} {
		_, err := alice.CreateAlias(ctx, tea, target)
		wantErr(t, err, http.StatusConflict, "M_UNKNOWN")
	}
	resolves(t, ctx, anon, tea, room)

	// Bad aliases: 400 M_INVALID_PARAM on every method, and nothing changes.
	for _, bad := range []id.RoomAlias{
		"tea:" + testServerName,   // no sigil
		"#:" + testServerName,     // empty local part
		"#tea",                    // no server
		"#te a:" + testServerName, // whitespace
		"#tea:spelt_test",         // bad server name
		"#tea:spelt.test:port",    // bad port
		"#tea:[::1",               // unclosed IPv6 literal
		id.RoomAlias("#" + strings.Repeat("a", 250) + ":" + testServerName), // over 255 bytes
	} {
		_, err := alice.CreateAlias(ctx, bad, room)
		wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
		_, err = anon.ResolveAlias(ctx, bad)
		wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
		_, err = alice.DeleteAlias(ctx, bad)
		wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
	}
	// Valid server names of every form.
	for _, good := range []id.RoomAlias{"#a:1.2.3.4:8448", "#b:[1234:5678::abcd]:5678", "#c:example.org"} {
		_, err := anon.ResolveAlias(ctx, good)
		wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND") // another server's: no federation yet
	}

	// Another server's alias cannot be made here; resolving and deleting one find nothing.
	const remote = id.RoomAlias("#tea:elsewhere.test")
	_, err = alice.CreateAlias(ctx, remote, room)
	wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
	unresolved(t, ctx, anon, remote)
	_, err = alice.DeleteAlias(ctx, remote)
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")

	// An unknown room, and no room at all.
	const ghost = id.RoomAlias("#ghost:" + testServerName)
	_, err = alice.CreateAlias(ctx, ghost, "!nosuchroom:"+testServerName)
	wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
	_, err = alice.MakeRequest(ctx, http.MethodPut, alice.BuildClientURL("v3", "directory", "room", ghost), map[string]any{}, nil)
	wantErr(t, err, http.StatusBadRequest, "M_MISSING_PARAM")
	_, err = alice.MakeRequest(ctx, http.MethodPut, alice.BuildClientURL("v3", "directory", "room", ghost), map[string]any{"room_id": 7}, nil)
	wantErr(t, err, http.StatusBadRequest, "M_BAD_JSON")
	unresolved(t, ctx, anon, ghost)
	_, err = alice.DeleteAlias(ctx, ghost)
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")

	// Creating and deleting need a token.
	_, err = anon.CreateAlias(ctx, ghost, room)
	wantErr(t, err, http.StatusUnauthorized, "M_MISSING_TOKEN")
	_, err = anon.DeleteAlias(ctx, tea)
	wantErr(t, err, http.StatusUnauthorized, "M_MISSING_TOKEN")

	// Bob, not in the room, may neither create an alias for it nor list its aliases.
	const bobs = id.RoomAlias("#bobs:" + testServerName)
	_, err = bob.CreateAlias(ctx, bobs, room)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	unresolved(t, ctx, anon, bobs)
	_, err = bob.GetAliases(ctx, room)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	_, err = alice.GetAliases(ctx, "!nosuchroom:"+testServerName)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")

	// Once joined he may; his power level (0) does not let him delete Alice's alias.
	for _, u := range []user{bob, carol} {
		if _, err := u.JoinRoomByID(ctx, room); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bob.CreateAlias(ctx, bobs, room); err != nil {
		t.Fatal(err)
	}
	const bobs2 = id.RoomAlias("#bobs2:" + testServerName)
	if _, err := bob.CreateAlias(ctx, bobs2, room); err != nil {
		t.Fatal(err)
	}
	// In byte order: '2' sorts before ':'.
	if got := aliasesOf(t, ctx, bob, room); !slices.Equal(got, []id.RoomAlias{bobs2, bobs, tea}) {
		t.Fatalf("aliases = %v", got)
	}
	_, err = bob.DeleteAlias(ctx, tea)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	resolves(t, ctx, anon, tea, room)
	// Carol (power 0) may not delete Bob's either.
	_, err = carol.DeleteAlias(ctx, bobs)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	resolves(t, ctx, anon, bobs, room)

	// Bob deletes his own; Alice (a moderator) deletes his other one.
	if _, err := bob.DeleteAlias(ctx, bobs); err != nil {
		t.Fatal(err)
	}
	unresolved(t, ctx, anon, bobs)
	_, err = bob.DeleteAlias(ctx, bobs)
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	if _, err := alice.DeleteAlias(ctx, bobs2); err != nil {
		t.Fatal(err)
	}
	unresolved(t, ctx, anon, bobs2)
	if got := aliasesOf(t, ctx, carol, room); !slices.Equal(got, []id.RoomAlias{tea}) {
		t.Fatalf("aliases after deletes = %v", got)
	}

	// A deleted alias can be taken again, by the API and by createRoom.
	if _, err := carol.CreateAlias(ctx, bobs, room); err != nil {
		t.Fatal(err)
	}
	resolves(t, ctx, anon, bobs, room)
	_, err = alice.DeleteAlias(ctx, bobs2)
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	again, err := bob.CreateRoom(ctx, &mautrix.ReqCreateRoom{RoomAliasName: "bobs2"})
	if err != nil {
		t.Fatal(err)
	}
	resolves(t, ctx, anon, bobs2, again.RoomID)

	// A server administrator deletes any alias without being in the room, and may
	// create one for a room they are not in.
	root := s.adminUser(ctx, "root")
	if _, err := root.DeleteAlias(ctx, bobs); err != nil {
		t.Fatal(err)
	}
	unresolved(t, ctx, anon, bobs)
	if _, err := root.CreateAlias(ctx, "#rooted:"+testServerName, room); err != nil {
		t.Fatal(err)
	}
	if got := aliasesOf(t, ctx, root, other.RoomID); len(got) != 0 {
		t.Fatalf("admin: aliases of a room without any = %v", got)
	}

	// Aliases of a world-readable room are anyone's to list.
	_, err = bob.GetAliases(ctx, other.RoomID)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	if _, err := alice.SendStateEvent(ctx, other.RoomID, event.StateHistoryVisibility, "", map[string]any{"history_visibility": "world_readable"}); err != nil {
		t.Fatal(err)
	}
	if got := aliasesOf(t, ctx, bob, other.RoomID); len(got) != 0 {
		t.Fatalf("aliases of world-readable room = %v", got)
	}
}

// canonicalAlias reads the room's m.room.canonical_alias content.
func canonicalAlias(t *testing.T, ctx context.Context, u user, room id.RoomID) map[string]any {
	t.Helper()
	var c map[string]any
	if err := u.StateEvent(ctx, room, event.StateCanonicalAlias, "", &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDeleteAliasUpdatesCanonicalAlias(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob := s.user(ctx, "alice"), s.user(ctx, "bob")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: "main"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	if _, err := bob.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	const main, alt, spare, bobs = id.RoomAlias("#main:" + testServerName), id.RoomAlias("#alt:" + testServerName),
		id.RoomAlias("#spare:" + testServerName), id.RoomAlias("#bobs:" + testServerName)
	if _, err := alice.CreateAlias(ctx, alt, room); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CreateAlias(ctx, spare, room); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.CreateAlias(ctx, bobs, room); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendStateEvent(ctx, room, event.StateCanonicalAlias, "", map[string]any{
		"alias": main, "alt_aliases": []id.RoomAlias{alt, bobs}, "custom": "kept",
	}); err != nil {
		t.Fatal(err)
	}

	// Deleting an alias the canonical alias event does not name sends no new one.
	canonicalID := func() id.EventID {
		t.Helper()
		state, err := bob.State(ctx, room)
		if err != nil {
			t.Fatal(err)
		}
		return state[event.StateCanonicalAlias][""].ID
	}
	was := canonicalID()
	if _, err := alice.DeleteAlias(ctx, spare); err != nil {
		t.Fatal(err)
	}
	if now := canonicalID(); now != was {
		t.Fatalf("deleting %s sent a canonical alias event", spare)
	}
	before := canonicalAlias(t, ctx, bob, room)

	// Bob deletes his alias: he may (he created it), but he may not send
	// m.room.canonical_alias, so it still lists the alias.
	if _, err := bob.DeleteAlias(ctx, bobs); err != nil {
		t.Fatal(err)
	}
	unresolved(t, ctx, bob.Client, bobs)
	if got := canonicalAlias(t, ctx, bob, room); !jsonSame(got, before) || canonicalID() != was {
		t.Fatalf("canonical alias changed by a user without the power: %v, was %v", got, before)
	}

	// Alice deletes alt: it leaves alt_aliases, the rest stays.
	if _, err := alice.DeleteAlias(ctx, alt); err != nil {
		t.Fatal(err)
	}
	got := canonicalAlias(t, ctx, bob, room)
	if got["alias"] != string(main) || got["custom"] != "kept" || !jsonSame(got["alt_aliases"], []any{string(bobs)}) {
		t.Fatalf("canonical alias after deleting %s = %v", alt, got)
	}
	// Then the main alias: no alias left in the event.
	if _, err := alice.DeleteAlias(ctx, main); err != nil {
		t.Fatal(err)
	}
	got = canonicalAlias(t, ctx, bob, room)
	if _, ok := got["alias"]; ok || got["custom"] != "kept" {
		t.Fatalf("canonical alias after deleting %s = %v", main, got)
	}
	// The update is an ordinary room event, sent by Alice.
	state, err := bob.State(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if ev := state[event.StateCanonicalAlias][""]; ev.Sender != alice.ID || ev.Unsigned.PrevContent == nil {
		t.Fatalf("canonical alias event = %+v", ev)
	}
}

func jsonSame(a, b any) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(x) == string(y)
}

// getVisibility reads the room's visibility in the room directory, without a token.
func getVisibility(ctx context.Context, c *mautrix.Client, room id.RoomID) (string, error) {
	var res struct {
		Visibility string `json:"visibility"`
	}
	_, err := c.MakeRequest(ctx, http.MethodGet, c.BuildClientURL("v3", "directory", "list", "room", room), nil, &res)
	return res.Visibility, err
}

func setVisibility(ctx context.Context, c *mautrix.Client, room id.RoomID, body any) error {
	_, err := c.MakeRequest(ctx, http.MethodPut, c.BuildClientURL("v3", "directory", "list", "room", room), body, nil)
	return err
}

func wantVisibility(t *testing.T, ctx context.Context, c *mautrix.Client, room id.RoomID, want string) {
	t.Helper()
	got, err := getVisibility(ctx, c, room)
	if err != nil || got != want {
		t.Fatalf("visibility of %s = %q, %v; want %q", room, got, err, want)
	}
}

func TestRoomDirectoryVisibility(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob, carol := s.user(ctx, "alice"), s.user(ctx, "bob"), s.user(ctx, "carol")
	anon := s.client("", "")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Lobby"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	wantVisibility(t, ctx, anon, room, "private")
	pub, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Visibility: "public"})
	if err != nil {
		t.Fatal(err)
	}
	wantVisibility(t, ctx, anon, pub.RoomID, "public")

	// Unknown rooms.
	_, err = getVisibility(ctx, anon, "!nosuchroom:"+testServerName)
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	err = setVisibility(ctx, alice.Client, "!nosuchroom:"+testServerName, map[string]any{"visibility": "public"})
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")

	// Publishing takes a token and a room moderator.
	err = setVisibility(ctx, anon, room, map[string]any{"visibility": "public"})
	wantErr(t, err, http.StatusUnauthorized, "M_MISSING_TOKEN")
	err = setVisibility(ctx, bob.Client, room, map[string]any{"visibility": "public"})
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	if _, err := bob.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	err = setVisibility(ctx, bob.Client, room, map[string]any{"visibility": "public"})
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	// Bad values.
	for _, body := range []any{map[string]any{"visibility": "hidden"}, map[string]any{"visibility": ""}} {
		err = setVisibility(ctx, alice.Client, room, body)
		wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
	}
	err = setVisibility(ctx, alice.Client, room, map[string]any{"visibility": true})
	wantErr(t, err, http.StatusBadRequest, "M_BAD_JSON")
	wantVisibility(t, ctx, anon, room, "private")
	if res, err := anon.PublicRooms(ctx, &mautrix.ReqPublicRooms{}); err != nil || len(res.Chunk) != 1 || res.Chunk[0].RoomID != pub.RoomID {
		t.Fatalf("public rooms before publishing = %+v, %v", res, err)
	}

	// Alice publishes it (no visibility: public, the spec's default), then again.
	if err := setVisibility(ctx, alice.Client, room, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	wantVisibility(t, ctx, anon, room, "public")
	if err := setVisibility(ctx, alice.Client, room, map[string]any{"visibility": "public"}); err != nil {
		t.Fatal(err)
	}
	wantVisibility(t, ctx, anon, room, "public")
	res, err := anon.PublicRooms(ctx, &mautrix.ReqPublicRooms{})
	if err != nil || len(res.Chunk) != 2 || res.Chunk[0].RoomID != room || res.Chunk[0].Name != "Lobby" {
		t.Fatalf("public rooms after publishing = %+v, %v", res, err)
	}

	// Bob, given the power to send m.room.canonical_alias, may unpublish it.
	var pl map[string]any
	if err := alice.StateEvent(ctx, room, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}
	pl["users"].(map[string]any)[string(bob.ID)] = 50
	if _, err := alice.SendStateEvent(ctx, room, event.StatePowerLevels, "", pl); err != nil {
		t.Fatal(err)
	}
	if err := setVisibility(ctx, bob.Client, room, map[string]any{"visibility": "private"}); err != nil {
		t.Fatal(err)
	}
	wantVisibility(t, ctx, anon, room, "private")

	// A server administrator may, outside the room; Carol may not.
	err = setVisibility(ctx, carol.Client, room, map[string]any{"visibility": "public"})
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	root := s.adminUser(ctx, "root")
	if err := setVisibility(ctx, root.Client, room, map[string]any{"visibility": "public"}); err != nil {
		t.Fatal(err)
	}
	wantVisibility(t, ctx, anon, room, "public")
}

// publicRoomsFiltered is POST /publicRooms.
func publicRoomsFiltered(ctx context.Context, c *mautrix.Client, server string, body any) (*mautrix.RespPublicRooms, error) {
	q := map[string]string{}
	if server != "" {
		q["server"] = server
	}
	var res mautrix.RespPublicRooms
	_, err := c.MakeRequest(ctx, http.MethodPost, c.BuildURLWithQuery(mautrix.ClientURLPath{"v3", "publicRooms"}, q), body, &res)
	return &res, err
}

func roomIDs(chunk []*mautrix.PublicRoomInfo) []id.RoomID {
	out := make([]id.RoomID, len(chunk))
	for i, r := range chunk {
		out[i] = r.RoomID
	}
	return out
}

func TestPublicRooms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob, carol := s.user(ctx, "alice"), s.user(ctx, "bob"), s.user(ctx, "carol")
	anon := s.client("", "")
	mk := func(req mautrix.ReqCreateRoom, joiners ...user) id.RoomID {
		t.Helper()
		created, err := alice.CreateRoom(ctx, &req)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range joiners {
			if _, err := u.JoinRoomByID(ctx, created.RoomID); err != nil {
				t.Fatal(err)
			}
		}
		return created.RoomID
	}
	// Three members.
	big := mk(mautrix.ReqCreateRoom{Visibility: "public", Name: "Big Tea Room", Topic: "Oolong and more", RoomAliasName: "big"}, bob, carol)
	if _, err := alice.SendStateEvent(ctx, big, event.StateRoomAvatar, "", map[string]any{"url": "mxc://" + testServerName + "/teapot"}); err != nil {
		t.Fatal(err)
	}
	// Two members each: ordered by room ID.
	coffee := mk(mautrix.ReqCreateRoom{Visibility: "public", Name: "Coffee"}, bob)
	teapots := mk(mautrix.ReqCreateRoom{Visibility: "public", Topic: "all about TEAPOTS"}, carol)
	twos := sortedIDs(coffee, teapots)
	// One member: a space, guests welcome, knocking.
	space := mk(mautrix.ReqCreateRoom{Visibility: "public", Name: "Space", CreationContent: map[string]any{"type": "m.space"}})
	if _, err := alice.SendStateEvent(ctx, space, event.StateGuestAccess, "", map[string]any{"guest_access": "can_join"}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendStateEvent(ctx, space, event.StateJoinRules, "", map[string]any{"join_rule": "knock"}); err != nil {
		t.Fatal(err)
	}
	// Published but invite-only: not listed, unless world readable.
	hidden := mk(mautrix.ReqCreateRoom{Visibility: "public", Preset: "private_chat", Name: "Secret tea"})
	readable := mk(mautrix.ReqCreateRoom{Visibility: "public", Preset: "private_chat", Name: "Reading room"})
	if _, err := alice.SendStateEvent(ctx, readable, event.StateHistoryVisibility, "", map[string]any{"history_visibility": "world_readable"}); err != nil {
		t.Fatal(err)
	}
	// Public but not published, and published but empty.
	mk(mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Unlisted tea"})
	empty := mk(mautrix.ReqCreateRoom{Visibility: "public", Name: "Empty tea"})
	if _, err := alice.LeaveRoom(ctx, empty); err != nil {
		t.Fatal(err)
	}

	all := slices.Concat([]id.RoomID{big}, twos, sortedIDs(space, readable))

	// Everyone may list them, most members first, then by room ID.
	res, err := anon.PublicRooms(ctx, &mautrix.ReqPublicRooms{})
	if err != nil {
		t.Fatal(err)
	}
	if got := roomIDs(res.Chunk); !slices.Equal(got, all) {
		t.Fatalf("public rooms = %v, want %v", got, all)
	}
	if res.TotalRoomCountEstimate != len(all) || res.NextBatch != "" || res.PrevBatch != "" {
		t.Fatalf("total %d, next %q, prev %q", res.TotalRoomCountEstimate, res.NextBatch, res.PrevBatch)
	}
	byID := map[id.RoomID]*mautrix.PublicRoomInfo{}
	for _, r := range res.Chunk {
		byID[r.RoomID] = r
	}
	if r := byID[big]; r.Name != "Big Tea Room" || r.Topic != "Oolong and more" || r.NumJoinedMembers != 3 ||
		r.CanonicalAlias != "#big:"+testServerName || r.AvatarURL != "mxc://"+testServerName+"/teapot" ||
		r.JoinRule != "public" || r.WorldReadable || r.GuestCanJoin || r.RoomType != "" {
		t.Errorf("big room = %+v", r)
	}
	if r := byID[space]; r.RoomType != event.RoomTypeSpace || !r.GuestCanJoin || r.JoinRule != "knock" || r.NumJoinedMembers != 1 {
		t.Errorf("space = %+v", r)
	}
	if r := byID[readable]; !r.WorldReadable || r.JoinRule != "invite" {
		t.Errorf("world-readable room = %+v", r)
	}
	if byID[hidden] != nil {
		t.Errorf("invite-only room listed")
	}

	// Pages of two, forwards to the end, then backwards to the start.
	var pages [][]id.RoomID
	var tokens []string
	since := ""
	for i := 0; ; i++ {
		page, err := anon.PublicRooms(ctx, &mautrix.ReqPublicRooms{Limit: 2, Since: since})
		if err != nil {
			t.Fatal(err)
		}
		if (i == 0) != (page.PrevBatch == "") {
			t.Fatalf("page %d: prev_batch %q", i, page.PrevBatch)
		}
		if page.TotalRoomCountEstimate != len(all) {
			t.Fatalf("page %d: total %d", i, page.TotalRoomCountEstimate)
		}
		pages = append(pages, roomIDs(page.Chunk))
		tokens = append(tokens, page.PrevBatch)
		if page.NextBatch == "" {
			break
		}
		since = page.NextBatch
		if i > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if got := slices.Concat(pages...); !slices.Equal(got, all) || len(pages) != 3 {
		t.Fatalf("pages = %v, want %v in pages of 2", pages, all)
	}
	back, err := anon.PublicRooms(ctx, &mautrix.ReqPublicRooms{Limit: 2, Since: tokens[2]})
	if err != nil {
		t.Fatal(err)
	}
	if got := roomIDs(back.Chunk); !slices.Equal(got, pages[1]) || back.NextBatch == "" || back.PrevBatch == "" {
		t.Fatalf("back from the last page = %v (next %q, prev %q), want %v", got, back.NextBatch, back.PrevBatch, pages[1])
	}
	first, err := anon.PublicRooms(ctx, &mautrix.ReqPublicRooms{Limit: 2, Since: back.PrevBatch})
	if err != nil {
		t.Fatal(err)
	}
	if got := roomIDs(first.Chunk); !slices.Equal(got, pages[0]) || first.PrevBatch != "" || first.NextBatch == "" {
		t.Fatalf("first page again = %v (next %q, prev %q), want %v", got, first.NextBatch, first.PrevBatch, pages[0])
	}
	// Forward from the first page's next_batch again: the second page.
	second, err := anon.PublicRooms(ctx, &mautrix.ReqPublicRooms{Limit: 2, Since: first.NextBatch})
	if err != nil || !slices.Equal(roomIDs(second.Chunk), pages[1]) {
		t.Fatalf("second page again = %v, %v", second, err)
	}

	// Bad tokens and limits.
	for _, bad := range []string{"nonsense", "Zm9v", "s12"} {
		_, err := anon.PublicRooms(ctx, &mautrix.ReqPublicRooms{Since: bad})
		wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
		_, err = publicRoomsFiltered(ctx, alice.Client, "", map[string]any{"since": bad})
		wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
	}
	_, err = anon.MakeRequest(ctx, http.MethodGet, anon.BuildURLWithQuery(mautrix.ClientURLPath{"v3", "publicRooms"}, map[string]string{"limit": "-1"}), nil, nil)
	wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
	_, err = publicRoomsFiltered(ctx, alice.Client, "", map[string]any{"limit": -1})
	wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
	_, err = publicRoomsFiltered(ctx, alice.Client, "", map[string]any{"limit": "ten"})
	wantErr(t, err, http.StatusBadRequest, "M_BAD_JSON")

	// The server parameter: this server, or nothing federation would be needed for.
	if res, err := anon.PublicRooms(ctx, &mautrix.ReqPublicRooms{Server: testServerName}); err != nil || len(res.Chunk) != len(all) {
		t.Fatalf("server=%s: %+v, %v", testServerName, res, err)
	}
	for _, server := range []string{"elsewhere.test", "not a server"} {
		_, err := anon.PublicRooms(ctx, &mautrix.ReqPublicRooms{Server: server})
		wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
		_, err = publicRoomsFiltered(ctx, alice.Client, server, map[string]any{})
		wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
	}

	// POST needs a token.
	_, err = publicRoomsFiltered(ctx, anon, "", map[string]any{})
	wantErr(t, err, http.StatusUnauthorized, "M_MISSING_TOKEN")

	// Filters: a search term in the name, topic or canonical alias, any case.
	for _, c := range []struct {
		name string
		body map[string]any
		want []id.RoomID
	}{
		{"no filter", map[string]any{}, all},
		{"search name and topic", map[string]any{"filter": map[string]any{"generic_search_term": "TEA"}}, []id.RoomID{big, teapots}},
		{"search alias", map[string]any{"filter": map[string]any{"generic_search_term": "#big:"}}, []id.RoomID{big}},
		{"search nothing", map[string]any{"filter": map[string]any{"generic_search_term": "%"}}, []id.RoomID{}},
		{"spaces", map[string]any{"filter": map[string]any{"room_types": []any{"m.space"}}}, []id.RoomID{space}},
		{"untyped", map[string]any{"filter": map[string]any{"room_types": []any{nil}}}, slices.Concat([]id.RoomID{big}, twos, []id.RoomID{readable})},
		{"both", map[string]any{"filter": map[string]any{"room_types": []any{nil, "m.space"}}}, all},
		{"any type", map[string]any{"filter": map[string]any{"room_types": []any{}}}, all},
		{"search and type", map[string]any{"filter": map[string]any{"generic_search_term": "space", "room_types": []any{nil}}}, []id.RoomID{}},
		{"all networks", map[string]any{"include_all_networks": true}, all},
		{"unknown network", map[string]any{"third_party_instance_id": "irc"}, []id.RoomID{}},
		{"limit", map[string]any{"limit": 1, "filter": map[string]any{"generic_search_term": "tea"}}, []id.RoomID{big}},
	} {
		res, err := publicRoomsFiltered(ctx, alice.Client, "", c.body)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := roomIDs(res.Chunk); !slices.Equal(got, c.want) {
			t.Errorf("%s: rooms = %v, want %v", c.name, got, c.want)
		}
	}
	filtered, err := publicRoomsFiltered(ctx, alice.Client, "", map[string]any{"limit": 1, "filter": map[string]any{"generic_search_term": "tea"}})
	if err != nil || filtered.TotalRoomCountEstimate != 2 || filtered.NextBatch == "" {
		t.Fatalf("filtered page: %+v, %v", filtered, err)
	}
	rest, err := publicRoomsFiltered(ctx, alice.Client, "", map[string]any{"since": filtered.NextBatch, "filter": map[string]any{"generic_search_term": "tea"}})
	if err != nil || !slices.Equal(roomIDs(rest.Chunk), []id.RoomID{teapots}) || rest.NextBatch != "" || rest.PrevBatch == "" {
		t.Fatalf("filtered second page: %+v, %v", rest, err)
	}
	_, err = publicRoomsFiltered(ctx, alice.Client, "", map[string]any{"include_all_networks": true, "third_party_instance_id": "irc"})
	wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
	if res, err := anon.PublicRooms(ctx, &mautrix.ReqPublicRooms{ThirdPartyInstanceID: "irc"}); err != nil || len(res.Chunk) != 0 {
		t.Fatalf("GET third_party_instance_id: %+v, %v", res, err)
	}

	// A room of the next page leaves the directory: that page is empty, and the count
	// follows.
	head, err := anon.PublicRooms(ctx, &mautrix.ReqPublicRooms{Limit: len(all) - 1})
	if err != nil || head.NextBatch == "" {
		t.Fatalf("all but the last room: %+v, %v", head, err)
	}
	if err := setVisibility(ctx, alice.Client, all[len(all)-1], map[string]any{"visibility": "private"}); err != nil {
		t.Fatal(err)
	}
	past, err := anon.PublicRooms(ctx, &mautrix.ReqPublicRooms{Since: head.NextBatch})
	if err != nil || len(past.Chunk) != 0 || past.TotalRoomCountEstimate != len(all)-1 || past.NextBatch != "" {
		t.Fatalf("past the end: %+v, %v", past, err)
	}

	// Membership changes reorder rooms: Bob joins the teapot room, which then has
	// three members, as many as the big one.
	if _, err := bob.JoinRoomByID(ctx, teapots); err != nil {
		t.Fatal(err)
	}
	want := append(sortedIDs(big, teapots), coffee)
	res, err = anon.PublicRooms(ctx, &mautrix.ReqPublicRooms{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := roomIDs(res.Chunk); !slices.Equal(got, want) {
		t.Fatalf("after a join: %v, want %v", got, want)
	}
}

// sortedIDs returns the room IDs in byte order, the directory's order among rooms of
// as many members.
func sortedIDs(ids ...id.RoomID) []id.RoomID {
	slices.Sort(ids)
	return ids
}
