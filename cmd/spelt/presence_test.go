package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"

	"spelt.dev/spelt/internal/config"
)

func TestPresence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob, eve := s.user(ctx, "alice"), s.user(ctx, "bob"), s.user(ctx, "eve")
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoomByID(ctx, room.RoomID); err != nil {
		t.Fatal(err)
	}

	// Never set: offline.
	p, err := bob.GetPresence(ctx, alice.ID)
	if err != nil || p.Presence != event.PresenceOffline {
		t.Fatalf("presence before any: %+v %v", p, err)
	}
	if err := alice.SetPresence(ctx, mautrix.ReqPresence{Presence: event.PresenceOnline, StatusMsg: "tea time"}); err != nil {
		t.Fatal(err)
	}
	p, err = bob.GetPresence(ctx, alice.ID)
	if err != nil || p.Presence != event.PresenceOnline || p.StatusMsg != "tea time" || !p.CurrentlyActive {
		t.Fatalf("presence seen by bob: %+v %v", p, err)
	}
	if err := alice.SetPresence(ctx, mautrix.ReqPresence{Presence: event.PresenceUnavailable}); err != nil {
		t.Fatal(err)
	}
	p, err = alice.GetOwnPresence(ctx)
	if err != nil || p.Presence != event.PresenceUnavailable || p.CurrentlyActive {
		t.Fatalf("own presence: %+v %v", p, err)
	}
	// Syncing marks a user online (set_presence defaults to online); offline leaves it.
	if _, err := bob.SyncRequest(ctx, 0, "", "", false, event.PresenceOffline); err != nil {
		t.Fatal(err)
	}
	if p, err := alice.GetPresence(ctx, bob.ID); err != nil || p.Presence != event.PresenceOffline {
		t.Fatalf("bob after a sync with set_presence=offline: %+v %v", p, err)
	}
	if _, err := bob.SyncRequest(ctx, 0, "", "", false, ""); err != nil {
		t.Fatal(err)
	}
	if p, err := alice.GetPresence(ctx, bob.ID); err != nil || p.Presence != event.PresenceOnline {
		t.Fatalf("bob after a sync: %+v %v", p, err)
	}
	// Users who share no room with alice may not see hers; unknown users are 404.
	_, err = eve.GetPresence(ctx, alice.ID)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	_, err = alice.GetPresence(ctx, "@nobody:spelt.test")
	if err == nil {
		t.Fatal("presence of nobody")
	}
	// Bad input, and someone else's presence.
	status, _, body := s.raw("PUT", "/_matrix/client/v3/presence/"+string(alice.ID)+"/status", alice.AccessToken, []byte(`{"presence":"asleep"}`))
	if status != http.StatusBadRequest {
		t.Errorf("presence asleep: %d %v", status, body)
	}
	status, _, body = s.raw("PUT", "/_matrix/client/v3/presence/"+string(alice.ID)+"/status", alice.AccessToken, []byte(`{}`))
	if status != http.StatusBadRequest || body["errcode"] != "M_MISSING_PARAM" {
		t.Errorf("no presence: %d %v", status, body)
	}
	status, _, body = s.raw("PUT", "/_matrix/client/v3/presence/"+string(alice.ID)+"/status", bob.AccessToken, []byte(`{"presence":"online"}`))
	if status != http.StatusForbidden {
		t.Errorf("bob setting alice's presence: %d %v", status, body)
	}
}

func TestPresenceOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, func(c *config.Config) { c.Presence.Enabled = false }).start()
	alice := s.user(ctx, "alice")
	if err := alice.SetPresence(ctx, mautrix.ReqPresence{Presence: event.PresenceOnline}); err != nil {
		t.Fatal(err)
	}
	p, err := alice.GetOwnPresence(ctx)
	if err != nil || p.Presence != event.PresenceOffline {
		t.Fatalf("presence with presence off: %+v %v", p, err)
	}
}

// TestPresenceLastActive: last_active_ago follows the user's requests, not only their
// presence changes, without a log write per request.
func TestPresenceLastActive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob := s.user(ctx, "alice"), s.user(ctx, "bob")
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoomByID(ctx, room.RoomID); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetPresence(ctx, mautrix.ReqPresence{Presence: event.PresenceOnline}); err != nil {
		t.Fatal(err)
	}
	const idle = 600 * time.Millisecond
	<-time.After(idle) // real time must pass for last_active_ago to grow
	p, err := bob.GetPresence(ctx, alice.ID)
	if err != nil || int64(p.LastActiveAgo) < idle.Milliseconds() || !p.CurrentlyActive {
		t.Fatalf("after %v idle: %+v %v", idle, p, err)
	}
	events := s.eventCount()
	if _, err := alice.Whoami(ctx); err != nil { // any request is activity
		t.Fatal(err)
	}
	p, err = bob.GetPresence(ctx, alice.ID)
	if err != nil || int64(p.LastActiveAgo) >= idle.Milliseconds() || p.Presence != event.PresenceOnline {
		t.Fatalf("after a request: %+v %v", p, err)
	}
	if n := s.eventCount(); n != events {
		t.Fatalf("a request wrote %d events", n-events)
	}
}
