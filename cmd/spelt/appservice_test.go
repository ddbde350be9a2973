package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"maunium.net/go/mautrix"

	"spelt.dev/spelt/internal/config"
)

const testASToken = "as-token-of-the-bridge"

// withAppservice registers an application service ("bridge", sender @bridgebot) that
// owns @irc_* exclusively, @shared_* not exclusively, and #irc_* aliases.
func withAppservice(t *testing.T) func(*config.Config) {
	p := filepath.Join(t.TempDir(), "bridge.yaml")
	reg := `id: bridge
url: null
as_token: ` + testASToken + `
hs_token: hs-token-of-the-bridge
sender_localpart: bridgebot
namespaces:
  users:
    - exclusive: true
      regex: "@irc_.*:spelt.test"
    - exclusive: false
      regex: "@shared_.*:spelt.test"
  aliases:
    - exclusive: true
      regex: "#irc_.*:spelt.test"
`
	if err := os.WriteFile(p, []byte(reg), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *config.Config) { c.Appservices.RegistrationFiles = []string{p} }
}

func TestAppservices(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTestEnv(t, withAppservice(t))
	s := te.start()
	as := s.client("", testASToken)

	// The service acts as its sender, which exists from the start.
	if who, err := as.Whoami(ctx); err != nil || who.UserID != "@bridgebot:spelt.test" {
		t.Fatalf("whoami as the service: %+v %v", who, err)
	}
	// It registers its users without user-interactive authentication, even with
	// registration closed (the test server's is open; the service needs none of it).
	for _, name := range []string{"irc_alice", "shared_bob"} {
		if _, _, err := as.Register(ctx, &mautrix.ReqRegister[any]{Username: name, Type: mautrix.AuthTypeAppservice, InhibitLogin: true}); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
	}
	_, _, err := as.Register(ctx, &mautrix.ReqRegister[any]{Username: "carol", Type: mautrix.AuthTypeAppservice, InhibitLogin: true})
	wantErr(t, err, 400, "M_EXCLUSIVE")
	status, _, body := s.raw("POST", "/_matrix/client/v3/register", "not-a-service-token", []byte(`{"type":"m.login.application_service","username":"irc_x"}`))
	wantError(t, "register with an unknown service token", status, body, 403, "M_FORBIDDEN")

	// Users may not take its exclusive namespace; the shared one is open.
	_, err = s.client("", "").RegisterDummy(ctx, &mautrix.ReqRegister[any]{Username: "irc_mallory", Password: "pw"})
	wantErr(t, err, 400, "M_EXCLUSIVE")
	_, err = s.client("", "").RegisterAvailable(ctx, "irc_mallory")
	wantErr(t, err, 400, "M_EXCLUSIVE")
	_, err = s.client("", "").RegisterAvailable(ctx, "bridgebot")
	wantErr(t, err, 400, "M_USER_IN_USE")
	dan := s.user(ctx, "shared_dan")

	// Identity assertion with user_id: only users it owns and registered.
	masq := s.client("", testASToken)
	masq.UserID, masq.SetAppServiceUserID = "@irc_alice:spelt.test", true
	if who, err := masq.Whoami(ctx); err != nil || who.UserID != "@irc_alice:spelt.test" {
		t.Fatalf("whoami as irc_alice: %+v %v", who, err)
	}
	status, _, body = s.raw("GET", "/_matrix/client/v3/account/whoami?user_id=@carol:spelt.test", testASToken, nil)
	wantError(t, "masquerade as a user it does not own", status, body, 403, "M_EXCLUSIVE")
	status, _, body = s.raw("GET", "/_matrix/client/v3/account/whoami?user_id=@irc_nobody:spelt.test", testASToken, nil)
	wantError(t, "masquerade as a user it did not register", status, body, 403, "M_FORBIDDEN")

	// Aliases in its exclusive namespace are its own.
	created, err := masq.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: "irc_lobby"})
	if err != nil {
		t.Fatalf("the service's room with an alias: %v", err)
	}
	_, err = dan.CreateRoom(ctx, &mautrix.ReqCreateRoom{RoomAliasName: "irc_fake"})
	wantErr(t, err, 400, "M_EXCLUSIVE")
	if _, err := dan.JoinRoomByID(ctx, created.RoomID); err != nil {
		t.Fatal(err)
	}
	_, err = dan.CreateAlias(ctx, "#irc_other:spelt.test", created.RoomID)
	wantErr(t, err, 400, "M_EXCLUSIVE")

	// Login for a user it owns: m.login.application_service.
	status, _, body = s.raw("GET", "/_matrix/client/v3/login", "", nil)
	if status != 200 || !strings.Contains(string(mustJSON(t, body)), `"m.login.application_service"`) {
		t.Fatalf("login flows: %d %v", status, body)
	}
	login, err := as.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypeAppservice,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "irc_alice"}})
	if err != nil || login.UserID != "@irc_alice:spelt.test" || login.AccessToken == "" {
		t.Fatalf("appservice login: %+v %v", login, err)
	}
	_, err = as.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypeAppservice,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "carol"}})
	wantErr(t, err, 400, "M_EXCLUSIVE")
	_, err = s.client("", "").Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypeAppservice,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "irc_alice"}})
	wantErr(t, err, 403, "M_FORBIDDEN")

	// The log says which service acted.
	conn, err := pgx.Connect(ctx, te.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM eventlog.events WHERE type = 'account.registered.v1'
		AND payload->>'appservice' = 'bridge'`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("accounts registered by the service: %d %v", n, err)
	}
}
