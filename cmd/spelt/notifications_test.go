package main

import (
	"context"
	"encoding/json"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// unread returns a joined room's unread counts in a sync response.
func unread(t *testing.T, r *mautrix.RespSync, room id.RoomID) (notifications, highlights int) {
	t.Helper()
	jr, ok := r.Rooms.Join[room]
	if !ok {
		t.Fatalf("room %s not in the sync", room)
	}
	if jr.UnreadNotifications == nil {
		return 0, 0
	}
	return jr.UnreadNotifications.NotificationCount, jr.UnreadNotifications.HighlightCount
}

func TestUnreadCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestEnv(t, nil).start()
	ann, bo, cy := s.user(ctx, "ann"), s.user(ctx, "bo"), s.user(ctx, "cy")
	created, err := ann.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	for _, u := range []user{bo, cy} {
		if _, err := u.JoinRoomByID(ctx, room); err != nil {
			t.Fatal(err)
		}
	}
	text := func(u user, body string) id.EventID {
		t.Helper()
		r, err := u.SendText(ctx, room, body)
		if err != nil {
			t.Fatal(err)
		}
		return r.EventID
	}
	sync := func() *mautrix.RespSync {
		t.Helper()
		r, err := ann.SyncRequest(ctx, 0, "", "", false, "")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	want := func(what string, n, h int) {
		t.Helper()
		if gn, gh := unread(t, sync(), room); gn != n || gh != h {
			t.Fatalf("%s: unread %d, highlights %d; want %d, %d", what, gn, gh, n, h)
		}
	}

	want("a new room", 0, 0)
	text(bo, "hello")
	want("a message", 1, 0)
	first := text(bo, "ann: have a look") // her user name: a highlight
	want("a mention by name", 2, 1)
	text(ann, "her own message") // not counted
	if _, err := bo.SendMessageEvent(ctx, room, event.EventMessage, map[string]any{"msgtype": "m.notice", "body": "a bot"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bo.SendReaction(ctx, room, first, "👍"); err != nil {
		t.Fatal(err)
	}
	want("a notice, a reaction and her own message", 2, 1)
	mention := text(cy, "Ann, this one is for you")
	want("a mention by display name", 3, 2)
	if _, err := cy.RedactEvent(ctx, room, mention); err != nil {
		t.Fatal(err)
	}
	want("the mention redacted", 2, 1)

	// A read receipt resets the counts up to its event.
	last := text(bo, "last")
	want("before the receipt", 3, 1)
	if err := ann.MarkRead(ctx, room, last); err != nil {
		t.Fatal(err)
	}
	want("after the receipt", 0, 0)

	// Threads: with unread_thread_notifications, a thread's counts come apart.
	reply, err := bo.SendMessageEvent(ctx, room, event.EventMessage, map[string]any{"msgtype": "m.text", "body": "in a thread",
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": last}})
	if err != nil {
		t.Fatal(err)
	}
	text(bo, "in the main timeline")
	want("a thread reply and a message, counted together", 2, 0)
	filter, _ := json.Marshal(map[string]any{"room": map[string]any{"timeline": map[string]any{"unread_thread_notifications": true}}})
	status, _, body := s.raw("GET", "/_matrix/client/v3/sync?filter="+string(filter), ann.AccessToken, nil)
	joined, _ := body["rooms"].(map[string]any)["join"].(map[string]any)[string(room)].(map[string]any)
	threads, _ := joined["unread_thread_notifications"].(map[string]any)
	main, _ := joined["unread_notifications"].(map[string]any)
	thread, _ := threads[string(last)].(map[string]any)
	if status != 200 || main["notification_count"] != 1.0 || thread["notification_count"] != 1.0 {
		t.Fatalf("counts by thread: %d main %v threads %v", status, main, threads)
	}
	// A threaded receipt clears its thread only.
	if err := ann.SendReceipt(ctx, room, reply.EventID, event.ReceiptTypeRead, &mautrix.ReqSendReceipt{ThreadID: string(last)}); err != nil {
		t.Fatal(err)
	}
	want("after the thread's receipt", 1, 0)
}
