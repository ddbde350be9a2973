package main

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// forTest is the server seen from test t (a subtest): its helpers fail t, not the test
// that started the server.
func (s *testServer) forTest(t *testing.T) *testServer {
	c := *s
	c.t = t
	return &c
}

// Event IDs of each room version's format (spec: rooms v1 "Event IDs", v3, v4).
var (
	eventIDv1 = regexp.MustCompile(`^\$[^:]+:` + regexp.QuoteMeta(testServerName) + `$`)
	eventIDv3 = regexp.MustCompile(`^\$[A-Za-z0-9+/]{43}$`)
	eventIDv4 = regexp.MustCompile(`^\$[A-Za-z0-9_-]{43}$`)
)

// TestRoomVersions drives a room of every room version 1 to 11 through the client API:
// creation, invite and join, messages, state, redactions, kick, ban and unban,
// knocking (v7+) and restricted joins (v8+), checking what each version allows.
func TestRoomVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := newTestEnv(t, nil).start()
	for v := 1; v <= 11; v++ {
		version := strconv.Itoa(v)
		t.Run("v"+version, func(t *testing.T) {
			t.Parallel()
			s := srv.forTest(t)
			alice, bob, carol := s.user(ctx, "alice"+version), s.user(ctx, "bob"+version), s.user(ctx, "carol"+version)
			eve, frank := s.user(ctx, "eve"+version), s.user(ctx, "frank"+version)

			created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{RoomVersion: id.RoomVersion(version), Preset: "private_chat", Name: "v" + version})
			if err != nil {
				t.Fatal(err)
			}
			room := created.RoomID
			var create map[string]any
			if err := alice.StateEvent(ctx, room, event.StateCreate, "", &create); err != nil {
				t.Fatal(err)
			}
			if create["room_version"] != version {
				t.Fatalf("m.room.create room_version = %v, want %s", create["room_version"], version)
			}
			// Room version 11 drops content.creator (spec: rooms v11, "Event format").
			if creator, has := create["creator"]; v <= 10 && creator != string(alice.ID) || v >= 11 && has {
				t.Fatalf("m.room.create creator = %v (present %v) in v%d", creator, has, v)
			}

			// Invite and join; messages.
			if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: bob.ID}); err != nil {
				t.Fatal(err)
			}
			if _, err := bob.JoinRoomByID(ctx, room); err != nil {
				t.Fatal(err)
			}
			hello, err := alice.SendText(ctx, room, "hello")
			if err != nil {
				t.Fatal(err)
			}
			reply, err := bob.SendText(ctx, room, "hi alice")
			if err != nil {
				t.Fatal(err)
			}
			format := map[bool]*regexp.Regexp{v <= 2: eventIDv1, v == 3: eventIDv3, v >= 4: eventIDv4}[true]
			for _, e := range []id.EventID{hello.EventID, reply.EventID} {
				if !format.MatchString(string(e)) {
					t.Fatalf("event ID %s is not of room version %d's format %s", e, v, format)
				}
			}
			msgs, err := bob.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 50)
			if err != nil {
				t.Fatal(err)
			}
			var bodies []string
			for _, e := range msgs.Chunk {
				if e.Type == event.EventMessage {
					bodies = append(bodies, e.Content.Raw["body"].(string))
				}
			}
			if !slices.Equal(bodies, []string{"hi alice", "hello"}) {
				t.Fatalf("messages = %v", bodies)
			}

			// Canonical JSON has no floats: room versions 6 and later refuse them
			// (spec: rooms v6, "Canonical JSON"), and Spelt signs no event holding one
			// in any version.
			_, err = bob.SendMessageEvent(ctx, room, event.EventMessage, map[string]any{"msgtype": "m.text", "body": "pi", "value": 3.14})
			wantErr(t, err, http.StatusBadRequest, "M_BAD_JSON")

			// State: the creator may change the topic, a member at power 0 may not.
			if _, err := alice.SendStateEvent(ctx, room, event.StateTopic, "", map[string]any{"topic": "versions"}); err != nil {
				t.Fatal(err)
			}
			_, err = bob.SendStateEvent(ctx, room, event.StateTopic, "", map[string]any{"topic": "mine"})
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			var topic map[string]any
			if err := bob.StateEvent(ctx, room, event.StateTopic, "", &topic); err != nil || topic["topic"] != "versions" {
				t.Fatalf("topic = %v, %v", topic, err)
			}

			// Redactions: one's own events, not others' at power 0.
			if _, err := bob.RedactEvent(ctx, room, reply.EventID); err != nil {
				t.Fatalf("redacting one's own event: %v", err)
			}
			_, err = bob.RedactEvent(ctx, room, hello.EventID)
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			redacted, err := alice.GetEvent(ctx, room, reply.EventID)
			if err != nil {
				t.Fatal(err)
			}
			if len(redacted.Content.Raw) != 0 || redacted.Unsigned.RedactedBecause == nil {
				t.Fatalf("redacted event: content %v, redacted_because %v", redacted.Content.Raw, redacted.Unsigned.RedactedBecause)
			}
			// An m.room.redaction sent as a message: from room version 11 it redacts
			// content.redacts (spec: rooms v11, "Event format") and needs the same
			// permission; before, content.redacts means nothing, and in v1-2 the auth
			// rules refuse a redaction naming no event of this server below the
			// redact level (rule 11).
			_, err = bob.SendMessageEvent(ctx, room, event.EventRedaction, map[string]any{"redacts": hello.EventID})
			if v <= 2 {
				wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			} else if v >= 11 {
				wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
				own, err := bob.SendText(ctx, room, "oops")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := bob.SendMessageEvent(ctx, room, event.EventRedaction, map[string]any{"redacts": own.EventID}); err != nil {
					t.Fatalf("redacting one's own event with /send: %v", err)
				}
				if e, err := alice.GetEvent(ctx, room, own.EventID); err != nil || len(e.Content.Raw) != 0 {
					t.Fatalf("own event after its redaction with /send: %v, %v", e, err)
				}
			} else if err != nil {
				t.Fatalf("m.room.redaction without a top-level redacts: %v", err)
			}
			kept, err := alice.GetEvent(ctx, room, hello.EventID)
			if err != nil || kept.Content.Raw["body"] != "hello" {
				t.Fatalf("alice's message after bob's refused redaction: %v, %v", kept, err)
			}
			// A state event of type m.room.redaction redacts nothing.
			if _, err := alice.SendStateEvent(ctx, room, event.EventRedaction, "x", map[string]any{"redacts": hello.EventID}); err != nil {
				t.Fatal(err)
			}
			if kept, err := alice.GetEvent(ctx, room, hello.EventID); err != nil || kept.Content.Raw["body"] != "hello" {
				t.Fatalf("message after a state event m.room.redaction naming it: %v, %v", kept, err)
			}

			// Kick, ban, unban in a public room: after a kick one may join again,
			// after a ban not, after an unban again.
			if _, err := alice.SendStateEvent(ctx, room, event.StateJoinRules, "", map[string]any{"join_rule": "public"}); err != nil {
				t.Fatal(err)
			}
			if _, err := carol.JoinRoomByID(ctx, room); err != nil {
				t.Fatal(err)
			}
			if _, err := alice.KickUser(ctx, room, &mautrix.ReqKickUser{UserID: carol.ID, Reason: "out"}); err != nil {
				t.Fatal(err)
			}
			wantMembership(t, alice, room, carol.ID, "leave")
			_, err = carol.SendText(ctx, room, "still here?")
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			_, err = bob.KickUser(ctx, room, &mautrix.ReqKickUser{UserID: alice.ID})
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			if _, err := carol.JoinRoomByID(ctx, room); err != nil {
				t.Fatalf("joining again after a kick: %v", err)
			}
			_, err = bob.BanUser(ctx, room, &mautrix.ReqBanUser{UserID: carol.ID})
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			if _, err := alice.BanUser(ctx, room, &mautrix.ReqBanUser{UserID: carol.ID, Reason: "spam"}); err != nil {
				t.Fatal(err)
			}
			wantMembership(t, alice, room, carol.ID, "ban")
			_, err = carol.JoinRoomByID(ctx, room)
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			_, err = bob.UnbanUser(ctx, room, &mautrix.ReqUnbanUser{UserID: carol.ID})
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			if _, err := alice.UnbanUser(ctx, room, &mautrix.ReqUnbanUser{UserID: carol.ID}); err != nil {
				t.Fatal(err)
			}
			wantMembership(t, alice, room, carol.ID, "leave")
			if _, err := carol.JoinRoomByID(ctx, room); err != nil {
				t.Fatalf("joining after an unban: %v", err)
			}

			// Knocking: room version 7 added it (spec: rooms v7); before, a knock is
			// refused even where the join rule says knock.
			if _, err := alice.SendStateEvent(ctx, room, event.StateJoinRules, "", map[string]any{"join_rule": "knock"}); err != nil {
				t.Fatal(err)
			}
			_, err = eve.JoinRoomByID(ctx, room)
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			knocked, err := eve.KnockRoom(ctx, string(room), &mautrix.ReqKnockRoom{Reason: "let me in"})
			if v < 7 {
				wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			} else {
				if err != nil || knocked.RoomID != room {
					t.Fatalf("knock = %v, %v", knocked, err)
				}
				wantMembership(t, alice, room, eve.ID, "knock")
				if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: eve.ID}); err != nil {
					t.Fatal(err)
				}
				if _, err := eve.JoinRoomByID(ctx, room); err != nil {
					t.Fatalf("joining after an accepted knock: %v", err)
				}
			}
			// Knocking on an invite-only room is refused in every version.
			if _, err := alice.SendStateEvent(ctx, room, event.StateJoinRules, "", map[string]any{"join_rule": "invite"}); err != nil {
				t.Fatal(err)
			}
			_, err = frank.KnockRoom(ctx, string(room), nil)
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")

			// Restricted joins: members of the main room may join a room whose join
			// rule allows them (v8+), and the join names who authorised it.
			inner, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{RoomVersion: id.RoomVersion(version), Preset: "private_chat", Name: "inner"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := alice.SendStateEvent(ctx, inner.RoomID, event.StateJoinRules, "", map[string]any{
				"join_rule": "restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": room}},
			}); err != nil {
				t.Fatal(err)
			}
			_, err = frank.JoinRoomByID(ctx, inner.RoomID)
			wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			_, err = bob.JoinRoomByID(ctx, inner.RoomID)
			if v < 8 {
				// An unknown join rule lets nobody in uninvited.
				wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
				return
			}
			if err != nil {
				t.Fatalf("restricted join of a member of the allowed room: %v", err)
			}
			var join map[string]any
			if err := bob.StateEvent(ctx, inner.RoomID, event.StateMember, string(bob.ID), &join); err != nil {
				t.Fatal(err)
			}
			if join["join_authorised_via_users_server"] != string(alice.ID) || join["membership"] != "join" {
				t.Fatalf("restricted join content = %v, want join_authorised_via_users_server %s", join, alice.ID)
			}

			// knock_restricted (v10+): members join as in restricted rooms; others
			// may knock.
			if _, err := alice.SendStateEvent(ctx, inner.RoomID, event.StateJoinRules, "", map[string]any{
				"join_rule": "knock_restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": room}},
			}); err != nil {
				t.Fatal(err)
			}
			_, err = carol.JoinRoomByID(ctx, inner.RoomID)
			_, kerr := frank.KnockRoom(ctx, string(inner.RoomID), nil)
			if v < 10 {
				wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
				wantErr(t, kerr, http.StatusForbidden, "M_FORBIDDEN")
				return
			}
			if err != nil || kerr != nil {
				t.Fatalf("knock_restricted: member's join %v, outsider's knock %v", err, kerr)
			}
			wantMembership(t, alice, inner.RoomID, carol.ID, "join")
			wantMembership(t, alice, inner.RoomID, frank.ID, "knock")
		})
	}
}

// wantMembership fails t unless user's membership of room, as viewer sees it, is want.
func wantMembership(t *testing.T, viewer user, room id.RoomID, u id.UserID, want string) {
	t.Helper()
	var m map[string]any
	if err := viewer.StateEvent(context.Background(), room, event.StateMember, string(u), &m); err != nil {
		t.Fatalf("membership of %s: %v", u, err)
	}
	if m["membership"] != want {
		t.Fatalf("membership of %s = %v, want %s", u, m["membership"], want)
	}
}

// TestRoomVersionsCapabilities: the server offers room versions 1 to 11, all stable,
// 10 by default, and refuses others.
func TestRoomVersionsCapabilities(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice := s.user(ctx, "alice")
	caps, err := alice.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rv := caps.RoomVersions
	if rv == nil || rv.Default != "10" || len(rv.Available) != 11 {
		t.Fatalf("m.room_versions = %+v", rv)
	}
	for v := 1; v <= 11; v++ {
		if rv.Available[strconv.Itoa(v)] != mautrix.CapRoomVersionStable {
			t.Errorf("room version %d is %q, want stable", v, rv.Available[strconv.Itoa(v)])
		}
	}

	for _, bad := range []string{"12", "0", "foo", "1.0"} {
		_, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{RoomVersion: id.RoomVersion(bad)})
		wantErr(t, err, http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION")
	}
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{})
	if err != nil {
		t.Fatal(err)
	}
	var create map[string]any
	if err := alice.StateEvent(ctx, created.RoomID, event.StateCreate, "", &create); err != nil {
		t.Fatal(err)
	}
	if create["room_version"] != "10" {
		t.Fatalf("default room version = %v, want 10", create["room_version"])
	}
}
