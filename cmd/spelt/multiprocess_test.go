package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"maunium.net/go/mautrix"
)

// TestTwoProcesses runs two servers on one database, as an operator scaling out would:
// each projector runs in one of them, and a request served by the other still reads
// its own write at once (the projecting process announces its progress).
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTestEnv(t, nil)
	a := te.start()
	b := te.start()
	var took []time.Duration
	for i := range 8 {
		s := []*testServer{a, b}[i%2]
		start := time.Now()
		reg := s.register(ctx, fmt.Sprintf("multi%d", i), "pw")
		// The other process accepts the new token at once too.
		other := []*testServer{b, a}[i%2]
		if who, err := other.client("", reg.AccessToken).Whoami(ctx); err != nil || who.UserID != reg.UserID {
			t.Fatalf("whoami through the other process: %+v %v", who, err)
		}
		took = append(took, time.Since(start))
		if _, err := s.client("", "").Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword, Password: "pw",
			Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: fmt.Sprintf("multi%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	// Without the announcements a waiting process would find out at its next checkpoint
	// poll, a second later.
	if med := took[len(took)/2]; med > 500*time.Millisecond {
		t.Errorf("median register+whoami across processes took %v", med)
	}
	t.Logf("register + whoami across two processes: median %v, max %v", took[len(took)/2], took[len(took)-1])
}

// TestLogoutAcrossProcesses: a token another process has cached stops working there
// once the logout is projected and announced (processes cache resolved tokens).
func TestLogoutAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTestEnv(t, nil)
	a := te.start()
	b := te.start()
	reg := a.register(ctx, "roamer", "pw")
	onB := b.client("", reg.AccessToken)
	if _, err := onB.Whoami(ctx); err != nil { // now cached in b
		t.Fatal(err)
	}
	if _, err := a.client("", reg.AccessToken).Logout(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	deadline := start.Add(2 * time.Second)
	defer func() { t.Logf("the other process refused the token %v after the logout answered", time.Since(start)) }()
	for {
		status, _, _ := b.raw("GET", "/_matrix/client/v3/account/whoami", reg.AccessToken, nil)
		var err error
		if status != 200 {
			err = fmt.Errorf("status %d", status)
		}
		if err == nil && time.Now().Before(deadline) {
			continue
		}
		if err == nil {
			t.Fatal("the other process still accepts a logged-out token after 2 s")
		}
		break
	}
}

// TestSendAfterChangeInOtherProcess: a process sends a room's messages from what it
// remembers of the room after its own last write (in one round trip), so a change
// made meanwhile through another process must still decide the next send there: a ban
// refuses it, and once unbanned and back, the sends of both processes form one chain.
func TestSendAfterChangeInOtherProcess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTestEnv(t, nil)
	a := te.start()
	b := te.start()
	regOwner := a.register(ctx, "owner", "pw")
	regGuest := a.register(ctx, "guest", "pw")
	ownerA, ownerB := a.client(string(regOwner.UserID), regOwner.AccessToken), b.client(string(regOwner.UserID), regOwner.AccessToken)
	guestA := a.client(string(regGuest.UserID), regGuest.AccessToken)
	created, err := ownerA.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	if _, err := guestA.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	// Process a now remembers the room with the guest joined.
	if _, err := guestA.SendText(ctx, room, "hi"); err != nil {
		t.Fatal(err)
	}
	if _, err := ownerB.BanUser(ctx, room, &mautrix.ReqBanUser{UserID: regGuest.UserID, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := guestA.SendText(ctx, room, "still here?"); err == nil {
		t.Fatal("a banned user's message was accepted by the process that remembered them joined")
	} else {
		wantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	}
	if _, err := ownerB.UnbanUser(ctx, room, &mautrix.ReqUnbanUser{UserID: regGuest.UserID}); err != nil {
		t.Fatal(err)
	}
	if _, err := guestA.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	var sent []string
	for i := range 6 {
		c := []*mautrix.Client{guestA, ownerB, ownerA}[i%3]
		resp, err := c.SendText(ctx, room, fmt.Sprintf("m%d", i))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, resp.EventID.String())
	}
	// Each message's only prev_event is the one sent before it.
	conn, err := pgx.Connect(ctx, te.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for i := 1; i < len(sent); i++ {
		var prev []string
		err := conn.QueryRow(ctx, `SELECT ARRAY(SELECT json_array_elements_text(payload->'pdu'->'prev_events'))
			FROM eventlog.events WHERE payload->>'event_id' = $1`, sent[i]).Scan(&prev)
		if err != nil {
			t.Fatal(err)
		}
		if len(prev) != 1 || prev[0] != sent[i-1] {
			t.Fatalf("message %d has prev_events %v, want [%s]: the room forked", i, prev, sent[i-1])
		}
	}
}
