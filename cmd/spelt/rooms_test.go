package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// user is a registered, logged-in test user.
type user struct {
	ID id.UserID
	*mautrix.Client
}

func (s *testServer) user(ctx context.Context, name string) user {
	s.t.Helper()
	r := s.register(ctx, name, "correct horse battery staple")
	c := s.client(string(r.UserID), r.AccessToken)
	c.DeviceID = r.DeviceID
	return user{ID: r.UserID, Client: c}
}

// wantErr fails the test unless err is a Matrix error with errcode code and status.
func wantErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	var he mautrix.HTTPError
	if !errors.As(err, &he) || he.RespError == nil {
		t.Fatalf("err = %v, want %d %s", err, status, code)
	}
	if he.Response.StatusCode != status || he.RespError.ErrCode != code {
		t.Fatalf("err = %d %s (%s), want %d %s", he.Response.StatusCode, he.RespError.ErrCode, he.RespError.Err, status, code)
	}
}

func TestRoomBasics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob := s.user(ctx, "alice"), s.user(ctx, "bob")

	name := "Tea"
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Name: name, Topic: "oolong", Preset: "private_chat", Invite: []id.UserID{bob.ID}})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID

	// Bob is invited, not joined: he cannot send.
	if _, err := bob.SendText(ctx, room, "early"); err == nil {
		t.Fatal("invited user could send")
	} else {
		wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	}
	if _, err := bob.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	joined, err := bob.JoinedRooms(ctx)
	if err != nil || len(joined.JoinedRooms) != 1 || joined.JoinedRooms[0] != room {
		t.Fatalf("joined rooms = %v, %v", joined, err)
	}

	// Sending with the same transaction ID twice gives one event.
	txn := alice.TxnID()
	first, err := alice.SendMessageEvent(ctx, room, event.EventMessage, map[string]any{"msgtype": "m.text", "body": "hello"}, mautrix.ReqSendEvent{TransactionID: txn})
	if err != nil {
		t.Fatal(err)
	}
	again, err := alice.SendMessageEvent(ctx, room, event.EventMessage, map[string]any{"msgtype": "m.text", "body": "hello"}, mautrix.ReqSendEvent{TransactionID: txn})
	if err != nil || again.EventID != first.EventID {
		t.Fatalf("retry = %v, %v; want %s", again, err, first.EventID)
	}

	msgs, err := bob.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	hellos := 0
	for _, e := range msgs.Chunk {
		if e.Type == event.EventMessage {
			hellos++
			if e.ID != first.EventID || e.Content.Raw["body"] != "hello" {
				t.Errorf("message = %+v", e)
			}
			if e.Unsigned.TransactionID != "" {
				t.Errorf("bob sees alice's transaction ID")
			}
		}
	}
	if hellos != 1 {
		t.Fatalf("%d hello messages, want 1: %+v", hellos, msgs.Chunk)
	}
	ev, err := alice.GetEvent(ctx, room, first.EventID)
	if err != nil || ev.Unsigned.TransactionID != txn {
		t.Fatalf("alice's event = %+v, %v; want transaction ID %s", ev, err, txn)
	}

	// State.
	var nameContent event.RoomNameEventContent
	if err := bob.StateEvent(ctx, room, event.StateRoomName, "", &nameContent); err != nil || nameContent.Name != name {
		t.Fatalf("name = %+v, %v", nameContent, err)
	}
	if _, err := bob.SendStateEvent(ctx, room, event.StateRoomName, "", map[string]any{"name": "Coffee"}); err == nil {
		t.Fatal("bob (power 0) could rename the room")
	} else {
		wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	}
	if _, err := alice.SendStateEvent(ctx, room, event.StateRoomName, "", map[string]any{"name": "Coffee"}); err != nil {
		t.Fatal(err)
	}
	state, err := bob.State(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if got := state[event.StateRoomName][""].Content.AsRoomName().Name; got != "Coffee" {
		t.Fatalf("name in state = %q", got)
	}
	if state[event.StateRoomName][""].Unsigned.PrevContent == nil {
		t.Error("no prev_content on the replaced name")
	}

	// Redaction: bob may not redact alice's message; alice may.
	if _, err := bob.RedactEvent(ctx, room, first.EventID); err == nil {
		t.Fatal("bob redacted alice's message")
	} else {
		wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	}
	red, err := alice.RedactEvent(ctx, room, first.EventID, mautrix.ReqRedact{Reason: "typo"})
	if err != nil {
		t.Fatal(err)
	}
	ev, err = bob.GetEvent(ctx, room, first.EventID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Content.Raw) != 0 || ev.Unsigned.RedactedBecause == nil || ev.Unsigned.RedactedBecause.ID != red.EventID {
		t.Fatalf("redacted event = content %v, unsigned %+v", ev.Content.Raw, ev.Unsigned)
	}

	// Members.
	members, err := alice.JoinedMembers(ctx, room)
	if err != nil || len(members.Joined) != 2 {
		t.Fatalf("joined members = %+v, %v", members, err)
	}
	if _, err := bob.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	// After leaving, bob still sees the room as it was, but not what follows.
	after, err := alice.SendText(ctx, room, "after bob left")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.GetEvent(ctx, room, after.EventID); err == nil {
		t.Fatal("bob sees an event sent after he left")
	} else {
		wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	}
	msgs, err = bob.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range msgs.Chunk {
		if e.ID == after.EventID {
			t.Fatal("bob's /messages has an event sent after he left")
		}
	}
	if _, err := bob.ForgetRoom(ctx, room); err != nil {
		t.Fatal(err)
	}

	// A stranger sees nothing of a shared-history room.
	eve := s.user(ctx, "eve")
	if _, err := eve.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 10); err == nil {
		t.Fatal("stranger read messages")
	} else {
		wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	}
	if _, err := eve.JoinRoomByID(ctx, room); err == nil {
		t.Fatal("stranger joined an invite-only room")
	} else {
		wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	}
}

// roomActivity puts every kind of room event in the log: rooms of an old and the
// default version, messages, state changes, a redaction, every membership change.
func roomActivity(t *testing.T, ctx context.Context, a, b *mautrix.Client) {
	t.Helper()
	if _, err := a.CreateFilter(ctx, &mautrix.Filter{Room: &mautrix.RoomFilter{Timeline: &mautrix.FilterPart{Limit: 20}}}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetAccountData(ctx, "org.example.busy", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetPresence(ctx, mautrix.ReqPresence{Presence: "unavailable", StatusMsg: "busy"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SendToDevice(ctx, event.Type{Type: "org.example.busy", Class: event.ToDeviceEventType}, &mautrix.ReqSendToDevice{
		Messages: map[id.UserID]map[id.DeviceID]*event.Content{b.UserID: {"*": {Raw: map[string]any{"n": 1}}}}}); err != nil {
		t.Fatal(err)
	}
	if first, err := b.SyncRequest(ctx, 0, "", "", false, ""); err != nil {
		t.Fatal(err)
	} else if _, err := b.SyncRequest(ctx, 0, first.NextBatch, "", false, ""); err != nil { // acknowledges
		t.Fatal(err)
	}
	if err := a.AddTag(ctx, "!busy:spelt.test", "u.busy", 0.5); err != nil {
		t.Fatal(err)
	}
	if err := a.AddTag(ctx, "!busy:spelt.test", "u.gone", 0.5); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveTag(ctx, "!busy:spelt.test", "u.gone"); err != nil {
		t.Fatal(err)
	}
	for _, version := range []id.RoomVersion{"1", "10"} {
		created, err := a.CreateRoom(ctx, &mautrix.ReqCreateRoom{Name: "busy " + string(version), RoomVersion: version,
			Preset: "public_chat", Visibility: "public", RoomAliasName: "busy" + string(version)})
		if err != nil {
			t.Fatal(err)
		}
		room := created.RoomID
		if _, err := b.JoinRoomByID(ctx, room); err != nil {
			t.Fatal(err)
		}
		var last id.EventID
		for i := range 5 {
			resp, err := b.SendText(ctx, room, fmt.Sprintf("message %d", i))
			if err != nil {
				t.Fatal(err)
			}
			last = resp.EventID
		}
		if _, err := a.SendStateEvent(ctx, room, event.StateTopic, "", map[string]any{"topic": "changed"}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.SendStateEvent(ctx, room, event.StateHistoryVisibility, "", map[string]any{"history_visibility": "joined"}); err != nil {
			t.Fatal(err)
		}
		if err := a.MarkRead(ctx, room, last); err != nil {
			t.Fatal(err)
		}
		if _, err := a.RedactEvent(ctx, room, last, mautrix.ReqRedact{Reason: "spam"}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.KickUser(ctx, room, &mautrix.ReqKickUser{UserID: b.UserID, Reason: "out"}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.BanUser(ctx, room, &mautrix.ReqBanUser{UserID: b.UserID}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.UnbanUser(ctx, room, &mautrix.ReqUnbanUser{UserID: b.UserID}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ForgetRoom(ctx, room); err != nil {
			t.Fatal(err)
		}
		if _, err := a.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: b.UserID}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.LeaveRoom(ctx, room); err != nil {
			t.Fatal(err)
		}
	}
}
