package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"maunium.net/go/mautrix/event"
)

func TestAccountDataAndTags(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob := s.user(ctx, "alice"), s.user(ctx, "bob")

	// Global account data: set, read back, replace.
	if err := alice.SetAccountData(ctx, "org.example.settings", map[string]any{"theme": "dark"}); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetAccountData(ctx, "org.example.settings", map[string]any{"theme": "light"}); err != nil {
		t.Fatal(err)
	}
	var settings map[string]any
	if err := alice.GetAccountData(ctx, "org.example.settings", &settings); err != nil || settings["theme"] != "light" {
		t.Fatalf("settings %v %v", settings, err)
	}
	// Ignored users are account data too.
	if err := alice.SetAccountData(ctx, "m.ignored_user_list", map[string]any{"ignored_users": map[string]any{string(bob.ID): map[string]any{}}}); err != nil {
		t.Fatal(err)
	}
	// Unknown types are 404; other users' data is 403; server-controlled types 405.
	err := alice.GetAccountData(ctx, "org.example.none", &settings)
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	err = call(ctx, bob.Client, "GET", []any{"v3", "user", alice.ID, "account_data", "org.example.settings"}, nil, &settings)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	err = call(ctx, bob.Client, "PUT", []any{"v3", "user", alice.ID, "account_data", "org.example.settings"}, map[string]any{}, nil)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	err = alice.SetAccountData(ctx, "m.push_rules", map[string]any{})
	wantErr(t, err, http.StatusMethodNotAllowed, "M_BAD_JSON")
	status, _, body := s.raw("PUT", "/_matrix/client/v3/user/"+string(alice.ID)+"/account_data/org.example.x", alice.AccessToken, []byte(`[1]`))
	if status != http.StatusBadRequest || body["errcode"] != "M_BAD_JSON" {
		t.Errorf("array as account data: %d %v", status, body)
	}

	// Room account data.
	room := "!somewhere:spelt.test"
	if err := alice.SetRoomAccountData(ctx, "!somewhere:spelt.test", "org.example.room", map[string]any{"pinned": true}); err != nil {
		t.Fatal(err)
	}
	var roomData map[string]any
	if err := alice.GetRoomAccountData(ctx, "!somewhere:spelt.test", "org.example.room", &roomData); err != nil || roomData["pinned"] != true {
		t.Fatalf("room account data %v %v", roomData, err)
	}
	if err := alice.GetAccountData(ctx, "org.example.room", &roomData); err == nil {
		t.Error("room account data leaked into global account data")
	}
	err = alice.SetRoomAccountData(ctx, "!somewhere:spelt.test", "m.fully_read", map[string]any{"event_id": "$x"})
	wantErr(t, err, http.StatusMethodNotAllowed, "M_BAD_JSON")
	status, _, body = s.raw("PUT", "/_matrix/client/v3/user/"+string(alice.ID)+"/rooms/not-a-room/account_data/org.example.room", alice.AccessToken, []byte(`{}`))
	if status != http.StatusBadRequest || body["errcode"] != "M_INVALID_PARAM" {
		t.Errorf("bad room ID: %d %v", status, body)
	}

	// Tags.
	if err := alice.AddTag(ctx, "!somewhere:spelt.test", event.RoomTagFavourite, 0.5); err != nil {
		t.Fatal(err)
	}
	if err := alice.AddTag(ctx, "!somewhere:spelt.test", "u.work", 0.1); err != nil {
		t.Fatal(err)
	}
	tags, err := alice.GetTags(ctx, "!somewhere:spelt.test")
	if err != nil || len(tags.Tags) != 2 || !orderIs(tags.Tags[event.RoomTagFavourite].Order, 0.5) {
		t.Fatalf("tags %+v %v", tags, err)
	}
	if err := alice.RemoveTag(ctx, "!somewhere:spelt.test", "u.work"); err != nil {
		t.Fatal(err)
	}
	if err := alice.RemoveTag(ctx, "!somewhere:spelt.test", "u.never"); err != nil {
		t.Fatalf("removing an absent tag: %v", err)
	}
	tags, err = alice.GetTags(ctx, "!somewhere:spelt.test")
	if err != nil || len(tags.Tags) != 1 {
		t.Fatalf("tags after removal %+v %v", tags, err)
	}
	status, _, body = s.raw("PUT", "/_matrix/client/v3/user/"+string(alice.ID)+"/rooms/"+room+"/tags/u.bad", alice.AccessToken, []byte(`{"order":"first"}`))
	if status != http.StatusBadRequest || body["errcode"] != "M_BAD_JSON" {
		t.Errorf("order as a string: %d %v", status, body)
	}
	err = call(ctx, bob.Client, "GET", []any{"v3", "user", alice.ID, "rooms", room, "tags"}, nil, nil)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
}

func orderIs(n json.Number, want float64) bool {
	f, err := n.Float64()
	return err == nil && f == want
}
