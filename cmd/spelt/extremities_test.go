package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

// TestExtremitiesFromBeforeReferences: a room of version 1 whose forward extremity is
// stored as migration 0032 moved it (with its PDU, not its reference hash) still takes
// messages after a restart, which quote the extremity's reference hash, as those sent
// before the move did.
func TestExtremitiesFromBeforeReferences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTestEnv(t, nil)
	s := te.start()
	reg := s.register(ctx, "elder", "pw")
	c := s.client(string(reg.UserID), reg.AccessToken)
	created, err := c.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", RoomVersion: id.RoomVersion("1")})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.SendText(ctx, created.RoomID, "before")
	if err != nil {
		t.Fatal(err)
	}
	s.stop()

	conn, err := pgx.Connect(ctx, te.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var wantHash string
	if err := conn.QueryRow(ctx, `SELECT x->>'hash' FROM writemodel.rooms, json_array_elements(extremities) x
		WHERE room_id = $1`, string(created.RoomID)).Scan(&wantHash); err != nil || wantHash == "" {
		t.Fatalf("extremity reference hash %q, %v", wantHash, err)
	}
	// The form migration 0032 gives extremities it moves: the PDU, no hash.
	tag, err := conn.Exec(ctx, `UPDATE writemodel.rooms r SET extremities = json_build_array(json_build_object(
			'event_id', e.payload->>'event_id', 'depth', (e.payload->'pdu'->>'depth')::bigint, 'pdu', e.payload->'pdu'))
		FROM eventlog.events e WHERE r.room_id = $1 AND e.stream = 'room:' || r.room_id AND e.payload->>'event_id' = $2`,
		string(created.RoomID), string(first.EventID))
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("rewrite extremities: %v, %v", tag, err)
	}

	s = te.start()
	c = s.client(string(reg.UserID), reg.AccessToken)
	next, err := c.SendText(ctx, created.RoomID, "after")
	if err != nil {
		t.Fatal(err)
	}
	var prevID, prevHash string
	err = conn.QueryRow(ctx, `SELECT e.payload->'pdu'->'prev_events'->0->>0, e.payload->'pdu'->'prev_events'->0->1->>'sha256'
		FROM eventlog.events e WHERE e.payload->>'event_id' = $1`, string(next.EventID)).Scan(&prevID, &prevHash)
	if err != nil {
		t.Fatal(err)
	}
	// The write model keeps the hash in standard base64 with padding; PDUs carry it
	// unpadded.
	if prevID != string(first.EventID) || prevHash != strings.TrimRight(wantHash, "=") {
		t.Fatalf("prev_events [%s, %s], want [%s, %s]", prevID, prevHash, first.EventID, wantHash)
	}
}
