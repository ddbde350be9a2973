package main

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

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
