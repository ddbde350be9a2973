package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

// TestConcurrentSendersOneRoom: many users send to one room at once through two server
// processes on one database. Every accepted event appears exactly once in /messages,
// the room's events form a DAG in which each event points at the one before it (local
// sends never fork the room), and the room keeps a single forward extremity.
func TestConcurrentSendersOneRoom(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTestEnv(t, nil)
	a, b := te.start(), te.start()
	owner := a.user(ctx, "owner")
	created, err := owner.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	const senders, each = 8, 20
	var users []user
	for i := range senders {
		s := []*testServer{a, b}[i%2]
		u := s.user(ctx, fmt.Sprintf("sender%d", i))
		if _, err := u.JoinRoomByID(ctx, room); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	var mu sync.Mutex
	accepted := map[id.EventID]string{}
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				body := fmt.Sprintf("%d-%d", i, j)
				resp, err := u.SendText(ctx, room, body)
				if err != nil {
					t.Errorf("send %s: %v", body, err)
					return
				}
				mu.Lock()
				accepted[resp.EventID] = body
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// Every accepted event exactly once, read through the other process's users too.
	seen := map[id.EventID]int{}
	from := ""
	for {
		page, err := owner.Messages(ctx, room, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Chunk {
			if _, ok := accepted[e.ID]; ok {
				seen[e.ID]++
				if body := e.Content.Raw["body"]; body != accepted[e.ID] {
					t.Errorf("event %s body %v, want %s", e.ID, body, accepted[e.ID])
				}
			}
		}
		if page.End == "" {
			break
		}
		from = page.End
	}
	if len(accepted) != senders*each {
		t.Fatalf("%d events accepted, want %d", len(accepted), senders*each)
	}
	for ev := range accepted {
		if seen[ev] != 1 {
			t.Errorf("event %s appears %d times in /messages", ev, seen[ev])
		}
	}

	// The DAG, from the log itself.
	conn, err := pgx.Connect(ctx, te.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT payload::text FROM eventlog.events WHERE stream = $1 AND type = 'room.event_accepted.v1'
		ORDER BY transaction_id, "offset"`, "room:"+string(room))
	if err != nil {
		t.Fatal(err)
	}
	payloads, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	depth := map[string]int64{}
	var prev string
	for i, p := range payloads {
		var d struct {
			EventID string `json:"event_id"`
			PDU     struct {
				PrevEvents []string `json:"prev_events"`
				Depth      int64    `json:"depth"`
			} `json:"pdu"`
		}
		if err := json.Unmarshal([]byte(p), &d); err != nil {
			t.Fatal(err)
		}
		if _, dup := depth[d.EventID]; dup {
			t.Fatalf("event %s is in the log twice", d.EventID)
		}
		if i == 0 {
			if len(d.PDU.PrevEvents) != 0 {
				t.Fatalf("create event has prev_events %v", d.PDU.PrevEvents)
			}
		} else if len(d.PDU.PrevEvents) != 1 || d.PDU.PrevEvents[0] != prev {
			t.Fatalf("event %d (%s) has prev_events %v, want [%s]: the room forked", i, d.EventID, d.PDU.PrevEvents, prev)
		} else if d.PDU.Depth != depth[prev]+1 {
			t.Fatalf("event %s depth %d after depth %d", d.EventID, d.PDU.Depth, depth[prev])
		}
		depth[d.EventID] = d.PDU.Depth
		prev = d.EventID
	}
	var extremities []string
	rows, err = conn.Query(ctx, `SELECT x->>'event_id' FROM writemodel.rooms, json_array_elements(extremities) x WHERE room_id = $1`, string(room))
	if err != nil {
		t.Fatal(err)
	}
	if extremities, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if len(extremities) != 1 || extremities[0] != prev {
		t.Fatalf("forward extremities %v, want [%s]", extremities, prev)
	}
}
