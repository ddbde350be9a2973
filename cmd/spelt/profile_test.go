package main

import (
	"context"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// memberContent returns a user's current member event content in a room.
func memberContent(ctx context.Context, t *testing.T, c *mautrix.Client, room id.RoomID, user id.UserID) *event.MemberEventContent {
	t.Helper()
	var m event.MemberEventContent
	if err := c.StateEvent(ctx, room, event.StateMember, string(user), &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

func TestProfiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	fay, gus := s.user(ctx, "fay"), s.user(ctx, "gus")

	// A new account's display name is its localpart; it has no avatar.
	if name, err := gus.GetDisplayName(ctx, fay.ID); err != nil || name.DisplayName != "fay" {
		t.Fatalf("fay's display name: %+v %v", name, err)
	}
	status, _, body := s.raw("GET", "/_matrix/client/v3/profile/"+string(fay.ID)+"/avatar_url", "", nil)
	wantError(t, "no avatar yet", status, body, 404, "M_NOT_FOUND")
	status, _, body = s.raw("GET", "/_matrix/client/v3/profile/@nobody:spelt.test", "", nil)
	wantError(t, "unknown user", status, body, 404, "M_NOT_FOUND")

	created, err := fay.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	if _, err := gus.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	// Member events carry the profile.
	if m := memberContent(ctx, t, gus.Client, room, fay.ID); m.Displayname != "fay" {
		t.Fatalf("fay's member event on creation: %+v", m)
	}
	if m := memberContent(ctx, t, fay.Client, room, gus.ID); m.Displayname != "gus" {
		t.Fatalf("gus's member event on join: %+v", m)
	}

	if err := fay.SetDisplayName(ctx, "Fay Morgan"); err != nil {
		t.Fatal(err)
	}
	if err := fay.SetAvatarURL(ctx, id.MustParseContentURI("mxc://spelt.test/fay")); err != nil {
		t.Fatal(err)
	}
	p, err := gus.GetProfile(ctx, fay.ID)
	if err != nil || p.DisplayName != "Fay Morgan" || p.AvatarURL.String() != "mxc://spelt.test/fay" {
		t.Fatalf("fay's profile: %+v %v", p, err)
	}
	if u, err := gus.GetAvatarURL(ctx, fay.ID); err != nil || u.String() != "mxc://spelt.test/fay" {
		t.Fatalf("fay's avatar: %v %v", u, err)
	}
	// The change reached her rooms: a new member event with the new profile.
	if m := memberContent(ctx, t, gus.Client, room, fay.ID); m.Displayname != "Fay Morgan" || m.AvatarURL != "mxc://spelt.test/fay" || m.Membership != event.MembershipJoin {
		t.Fatalf("fay's member event after the change: %+v", m)
	}
	// Setting the same name again sends nothing.
	before, err := gus.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	if err := fay.SetDisplayName(ctx, "Fay Morgan"); err != nil {
		t.Fatal(err)
	}
	after, err := gus.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Chunk) != len(before.Chunk) {
		t.Fatalf("an unchanged display name sent %d events", len(after.Chunk)-len(before.Chunk))
	}
	caps, err := fay.Capabilities(ctx)
	if err != nil || caps.SetDisplayname == nil || !caps.SetDisplayname.Enabled || caps.SetAvatarURL == nil || !caps.SetAvatarURL.Enabled {
		t.Fatalf("capabilities: %+v %v", caps, err)
	}

	// Bad input changes nothing.
	path := "/_matrix/client/v3/profile/" + string(fay.ID) + "/displayname"
	status, _, body = s.raw("PUT", path, gus.AccessToken, []byte(`{"displayname":"Not Fay"}`))
	wantError(t, "someone else's name", status, body, 403, "M_FORBIDDEN")
	status, _, body = s.raw("PUT", path, fay.AccessToken, []byte(`{"displayname":5}`))
	wantError(t, "a number", status, body, 400, "M_BAD_JSON")
	status, _, body = s.raw("PUT", path, fay.AccessToken, []byte(`{}`))
	wantError(t, "no displayname", status, body, 400, "M_MISSING_PARAM")
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'a'
	}
	status, _, body = s.raw("PUT", path, fay.AccessToken, []byte(`{"displayname":"`+string(long)+`"}`))
	wantError(t, "a long name", status, body, 400, "M_INVALID_PARAM")
	status, _, body = s.raw("PUT", path, "", []byte(`{"displayname":"x"}`))
	wantError(t, "no token", status, body, 401, "M_MISSING_TOKEN")
	if name, err := gus.GetDisplayName(ctx, fay.ID); err != nil || name.DisplayName != "Fay Morgan" {
		t.Fatalf("fay's name after bad input: %+v %v", name, err)
	}

	// Removing the avatar: an empty string.
	status, _, body = s.raw("PUT", "/_matrix/client/v3/profile/"+string(fay.ID)+"/avatar_url", fay.AccessToken, []byte(`{"avatar_url":""}`))
	if status != 200 {
		t.Fatalf("remove avatar: %d %v", status, body)
	}
	if m := memberContent(ctx, t, gus.Client, room, fay.ID); m.AvatarURL != "" || m.Displayname != "Fay Morgan" {
		t.Fatalf("fay's member event after removing the avatar: %+v", m)
	}

	// Deactivation erases the profile.
	status, _, body = s.raw("POST", "/_matrix/client/v3/account/deactivate", fay.AccessToken, []byte(`{}`))
	session, _ := body["session"].(string)
	if status, _, body = s.raw("POST", "/_matrix/client/v3/account/deactivate", fay.AccessToken,
		mustJSON(t, map[string]any{"auth": passwordAuth(session, "fay", "correct horse battery staple"), "erase": true})); status != 200 {
		t.Fatalf("deactivate: %d %v", status, body)
	}
	if p, err := gus.GetProfile(ctx, fay.ID); err != nil || p.DisplayName != "" || !p.AvatarURL.IsEmpty() {
		t.Fatalf("fay's profile after deactivation: %+v %v", p, err)
	}
}
