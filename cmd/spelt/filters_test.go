package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
)

func TestFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob := s.user(ctx, "alice"), s.user(ctx, "bob")

	f := &mautrix.Filter{
		EventFields: []string{"type", "content"},
		Room: &mautrix.RoomFilter{
			Timeline: &mautrix.FilterPart{Limit: 10, Types: []event.Type{event.EventMessage}, LazyLoadMembers: true},
			State:    &mautrix.FilterPart{LazyLoadMembers: true},
		},
		Presence: &mautrix.FilterPart{NotTypes: []event.Type{event.EphemeralEventPresence}},
	}
	first, err := alice.CreateFilter(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	second, err := alice.CreateFilter(ctx, &mautrix.Filter{})
	if err != nil || second.FilterID == first.FilterID {
		t.Fatalf("second filter %v %v, first %s", second, err, first.FilterID)
	}
	var got mautrix.Filter
	if err := call(ctx, alice.Client, "GET", []any{"v3", "user", alice.ID, "filter", first.FilterID}, nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.Room == nil || got.Room.Timeline == nil || got.Room.Timeline.Limit != 10 || !got.Room.State.LazyLoadMembers || len(got.EventFields) != 2 {
		t.Fatalf("filter read back: %+v", got)
	}
	// Another user's filters are not yours to read or make; unknown filters are 404.
	err = call(ctx, bob.Client, "GET", []any{"v3", "user", alice.ID, "filter", first.FilterID}, nil, &got)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	err = call(ctx, bob.Client, "POST", []any{"v3", "user", alice.ID, "filter"}, map[string]any{}, nil)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	err = call(ctx, bob.Client, "GET", []any{"v3", "user", bob.ID, "filter", first.FilterID}, nil, &got)
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	// Bad filters change nothing.
	for _, bad := range []string{`{"room":{"timeline":{"limit":"ten"}}}`, `{"event_format":"xml"}`, `{"room":{"rooms":"!a:b"}}`,
		`{"presence":{"limit":0}}`, `{"event_fields":[1]}`} {
		status, _, body := s.raw("POST", "/_matrix/client/v3/user/"+string(alice.ID)+"/filter", alice.AccessToken, []byte(bad))
		if status != http.StatusBadRequest || body["errcode"] != "M_BAD_JSON" {
			t.Errorf("filter %s: %d %v", bad, status, body)
		}
	}
	third, err := alice.CreateFilter(ctx, &mautrix.Filter{})
	if err != nil || third.FilterID != "2" {
		t.Fatalf("third filter %+v %v: bad filters took an ID", third, err)
	}
	// The stored filter is the uploaded JSON, unknown keys included.
	raw := json.RawMessage(`{"room":{"timeline":{"limit":5}},"org.example.custom":true}`)
	var res struct {
		FilterID string `json:"filter_id"`
	}
	if err := call(ctx, alice.Client, "POST", []any{"v3", "user", alice.ID, "filter"}, raw, &res); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := call(ctx, alice.Client, "GET", []any{"v3", "user", alice.ID, "filter", res.FilterID}, nil, &back); err != nil || back["org.example.custom"] != true {
		t.Fatalf("custom key lost: %v %v", back, err)
	}
}
