package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

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

func TestTyping(t *testing.T) {
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
	b0, err := bob.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	typingOf := func(r *mautrix.RespSync) ([]any, bool) {
		jr, ok := r.Rooms.Join[room]
		if !ok {
			return nil, false
		}
		for _, e := range jr.Ephemeral.Events {
			if e.Type.Type == "m.typing" {
				ids, _ := e.Content.Raw["user_ids"].([]any)
				return ids, true
			}
		}
		return nil, false
	}
	// Alice types for 300 ms: bob's long-poll sees her, then sees her stop.
	if _, err := alice.UserTyping(ctx, room, true, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	b1, err := bob.SyncRequest(ctx, 5000, b0.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if ids, ok := typingOf(b1); !ok || len(ids) != 1 || ids[0] != string(alice.ID) {
		t.Fatalf("typing in bob's sync: %v %v", ids, ok)
	}
	b2, err := bob.SyncRequest(ctx, 5000, b1.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if ids, ok := typingOf(b2); !ok || len(ids) != 0 {
		t.Fatalf("typing after the timeout: %v %v", ids, ok)
	}
	// Not in the room, or for someone else: refused.
	_, err = eve.UserTyping(ctx, room, true, time.Second)
	wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	status, _, _ := s.raw("PUT", "/_matrix/client/v3/rooms/"+string(room)+"/typing/"+string(alice.ID), bob.AccessToken, []byte(`{"typing":true}`))
	if status != http.StatusForbidden {
		t.Errorf("bob typing as alice: %d", status)
	}
}

func TestToDevice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	alice, bob := s.user(ctx, "alice"), s.user(ctx, "bob")
	b0, err := bob.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	req := &mautrix.ReqSendToDevice{Messages: map[id.UserID]map[id.DeviceID]*event.Content{
		bob.ID:                  {"*": {Raw: map[string]any{"n": 1}}},
		"@someone:other.server": {"DEV": {Raw: map[string]any{"n": 2}}},
	}}
	txn := alice.TxnID()
	for range 2 { // the retry of one transaction sends nothing more
		if _, err := alice.MakeFullRequest(ctx, mautrix.FullRequest{Method: "PUT", URL: alice.BuildClientURL("v3", "sendToDevice", "org.example.ping", txn), RequestJSON: req}); err != nil {
			t.Fatal(err)
		}
	}
	b1, err := bob.SyncRequest(ctx, 5000, b0.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(b1.ToDevice.Events) != 1 || b1.ToDevice.Events[0].Sender != alice.ID || b1.ToDevice.Events[0].Type.Type != "org.example.ping" {
		t.Fatalf("to-device: %+v", b1.ToDevice.Events)
	}
	// Acknowledged by the next sync, they are not given again, not even to a first sync.
	b2, err := bob.SyncRequest(ctx, 0, b1.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(b2.ToDevice.Events) != 0 {
		t.Fatalf("messages again: %+v", b2.ToDevice.Events)
	}
	if _, err := alice.SendToDevice(ctx, event.Type{Type: "org.example.ping", Class: event.ToDeviceEventType}, &mautrix.ReqSendToDevice{Messages: map[id.UserID]map[id.DeviceID]*event.Content{
		bob.ID: {bob.DeviceID: {Raw: map[string]any{"n": 3}}}}}); err != nil {
		t.Fatal(err)
	}
	b3, err := bob.SyncRequest(ctx, 0, b2.NextBatch, "", false, "")
	if err != nil || len(b3.ToDevice.Events) != 1 || b3.ToDevice.Events[0].Content.Raw["n"] != float64(3) {
		t.Fatalf("second message: %+v %v", b3.ToDevice.Events, err)
	}
	if _, err := bob.SyncRequest(ctx, 0, b3.NextBatch, "", false, ""); err != nil {
		t.Fatal(err)
	}
	fresh, err := bob.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil || len(fresh.ToDevice.Events) != 0 {
		t.Fatalf("a first sync after the acknowledgement: %+v %v", fresh.ToDevice.Events, err)
	}
	status, _, _ := s.raw("PUT", "/_matrix/client/v3/sendToDevice/x/t9", alice.AccessToken, []byte(`{}`))
	if status != http.StatusBadRequest {
		t.Errorf("no messages: %d", status)
	}
}
