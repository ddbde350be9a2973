package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// receiptsIn returns the m.receipt content of a room's ephemeral events in a sync.
func receiptsIn(r *mautrix.RespSync, room id.RoomID) map[string]map[string]map[string]any {
	out := map[string]map[string]map[string]any{}
	jr, ok := r.Rooms.Join[room]
	if !ok {
		return out
	}
	for _, e := range jr.Ephemeral.Events {
		if e.Type.Type != "m.receipt" {
			continue
		}
		raw, _ := json.Marshal(e.Content.Raw)
		_ = json.Unmarshal(raw, &out)
	}
	return out
}

func TestReceiptsAndReadMarkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob, eve := s.user(ctx, "alice"), s.user(ctx, "bob"), s.user(ctx, "eve")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	if _, err := bob.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	msg, err := alice.SendText(ctx, room, "read me")
	if err != nil {
		t.Fatal(err)
	}
	a0, err := alice.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	b0, err := bob.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}

	if err := bob.MarkRead(ctx, room, msg.EventID); err != nil {
		t.Fatal(err)
	}
	if err := bob.SendReceipt(ctx, room, msg.EventID, event.ReceiptTypeReadPrivate, nil); err != nil {
		t.Fatal(err)
	}
	a1, err := alice.SyncRequest(ctx, 0, a0.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	got := receiptsIn(a1, room)[string(msg.EventID)]
	if got["m.read"][string(bob.ID)] == nil {
		t.Fatalf("alice does not see bob's receipt: %v", got)
	}
	if got["m.read.private"] != nil {
		t.Fatalf("alice sees bob's private receipt: %v", got)
	}
	b1, err := bob.SyncRequest(ctx, 0, b0.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if receiptsIn(b1, room)[string(msg.EventID)]["m.read.private"][string(bob.ID)] == nil {
		t.Fatalf("bob does not see his private receipt: %v", receiptsIn(b1, room))
	}

	// Read markers: m.fully_read becomes room account data.
	if err := bob.SetReadMarkers(ctx, room, map[string]any{"m.fully_read": msg.EventID, "m.read": msg.EventID}); err != nil {
		t.Fatal(err)
	}
	var marker struct {
		EventID string `json:"event_id"`
	}
	if err := bob.GetRoomAccountData(ctx, room, "m.fully_read", &marker); err != nil || marker.EventID != string(msg.EventID) {
		t.Fatalf("read marker %+v %v", marker, err)
	}

	// Bad input changes nothing.
	err = eve.MarkRead(ctx, room, msg.EventID)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	err = bob.MarkRead(ctx, room, "$nope")
	wantErr(t, err, http.StatusNotFound, "M_NOT_FOUND")
	err = bob.SendReceipt(ctx, room, msg.EventID, "m.glanced", nil)
	wantErr(t, err, http.StatusBadRequest, "M_INVALID_PARAM")
	status, _, body := s.raw("POST", "/_matrix/client/v3/rooms/"+string(room)+"/receipt/m.read/"+string(msg.EventID), bob.AccessToken, []byte(`{"thread_id":""}`))
	if status != http.StatusBadRequest {
		t.Errorf("empty thread_id: %d %v", status, body)
	}
}
