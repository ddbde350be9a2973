package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/synapseadmin"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/config"
	"spelt.dev/spelt/internal/signingkey"
)

// busyEnv is a test environment with all that busyServer uses: a mailbox, an
// application service and an identity server.
func busyEnv(t *testing.T) *testEnv {
	t.Helper()
	is := startIS(t)
	mail, as := withMailbox(t), withAppservice(t)
	te := newTestEnv(t, func(c *config.Config) {
		mail(c)
		as(c)
		c.Identity = config.Identity{TrustedServers: []string{is.name}, AllowPrivateAddresses: true, AllowHTTP: true}
	})
	is.hsKey = func() ed25519.PublicKey { // the server creates its key when it starts
		key, err := signingkey.Load(te.cfg.SigningKeyPath())
		if err != nil {
			t.Error(err)
		}
		return key.Public()
	}
	return te
}

// busyServer does a mix of account operations, the kind replay must reproduce.
func busyServer(t *testing.T, ctx context.Context, s *testServer) {
	t.Helper()
	var tokens []string
	for i := range 6 {
		reg := s.register(ctx, fmt.Sprintf("user%d", i), "pw")
		tokens = append(tokens, reg.AccessToken)
		for range 2 {
			if _, err := s.client("", "").Login(ctx, &mautrix.ReqLogin{
				Type: mautrix.AuthTypePassword, Password: "pw",
				Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: fmt.Sprintf("user%d", i)},
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.client("", tokens[0]).Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client("", tokens[1]).LogoutAll(ctx); err != nil {
		t.Fatal(err)
	}
	admin := synapseadmin.Client{Client: s.client("", "")}
	if _, err := admin.SharedSecretRegister(ctx, "s3cret", synapseadmin.ReqSharedSecretRegister{Username: "admin", Password: "pw", Admin: true}); err != nil {
		t.Fatal(err)
	}
	n := int32(3)
	if _, _, err := s.app.commands.CreateRegistrationToken(ctx, eventlog.Metadata{Origin: eventlog.OriginAdmin}, "tok-1", &n, nil); err != nil {
		t.Fatal(err)
	}
	// An abandoned user-interactive session is in the log too.
	s.raw("POST", "/_matrix/client/v3/register", "", []byte(`{"username":"abandoned","password":"x"}`))

	// Account management: a renamed device, a refreshed token, a password change, a
	// deactivation.
	c2 := s.client("", tokens[2])
	if err := c2.SetDeviceInfo(ctx, mustWhoami(t, ctx, c2), &mautrix.ReqDeviceInfo{DisplayName: "renamed"}); err != nil {
		t.Fatal(err)
	}
	_, _, body := s.raw("POST", "/_matrix/client/v3/login", "", []byte(
		`{"type":"m.login.password","identifier":{"type":"m.id.user","user":"user3"},"password":"pw","refresh_token":true}`))
	rt, _ := body["refresh_token"].(string)
	if status, _, body := s.raw("POST", "/_matrix/client/v3/refresh", "", mustJSON(t, map[string]string{"refresh_token": rt})); status != 200 {
		t.Fatalf("refresh: %d %v", status, body)
	}
	// E-mail addresses (the server needs busyEnv's mailbox): user4's goes
	// with its deactivation below.
	s.addEmail(tokens[2], "user2", "pw", "user2@example.org")
	s.addEmail(tokens[4], "user4", "pw", "user4@example.org")
	for _, op := range []struct{ path, token, body string }{
		{"/_matrix/client/v3/account/password", tokens[5], `"new_password":"pw2",`},
		{"/_matrix/client/v3/account/deactivate", tokens[4], ``},
	} {
		_, _, body := s.raw("POST", op.path, op.token, []byte(`{`+strings.TrimSuffix(op.body, ",")+`}`))
		session, _ := body["session"].(string)
		user := map[string]string{tokens[5]: "user5", tokens[4]: "user4"}[op.token]
		req := `{` + op.body + `"auth":` + string(mustJSON(t, passwordAuth(session, user, "pw"))) + `}`
		if status, _, body := s.raw("POST", op.path, op.token, []byte(req)); status != 200 {
			t.Fatalf("%s: %d %v", op.path, status, body)
		}
	}
	roomActivity(t, ctx, s.client("@user2:spelt.test", tokens[2]), s.client("@user3:spelt.test", tokens[3]))
	e2eActivity(ctx, t, s)
	// An application service's user and room (busyEnv registers the service), and a
	// 3PID bound at the identity server, then unbound.
	as := s.client("", testASToken)
	if _, _, err := as.Register(ctx, &mautrix.ReqRegister[any]{Username: "irc_replay", Type: mautrix.AuthTypeAppservice, InhibitLogin: true}); err != nil {
		t.Fatal(err)
	}
	as.UserID, as.SetAppServiceUserID = "@irc_replay:spelt.test", true
	if _, err := as.CreateRoom(ctx, &mautrix.ReqCreateRoom{RoomAliasName: "irc_replay"}); err != nil {
		t.Fatal(err)
	}
	server := s.env.cfg.Identity.TrustedServers[0]
	if status, _, body := s.raw("POST", "/_matrix/client/v3/account/3pid/bind", tokens[2], mustJSON(t, map[string]string{
		"id_server": server, "id_access_token": isToken, "sid": isSID, "client_secret": isSecret})); status != 200 {
		t.Fatalf("bind: %d %v", status, body)
	}
	if status, _, body := s.raw("POST", "/_matrix/client/v3/account/3pid/unbind", tokens[2],
		[]byte(`{"medium":"email","address":"`+isAddress+`"}`)); status != 200 || body["id_server_unbind_result"] != "success" {
		t.Fatalf("unbind: %d %v", status, body)
	}
	s.waitProjected(ctx)
}

// waitProjected waits until every projector has applied the whole log.
func (s *testServer) waitProjected(ctx context.Context) {
	s.t.Helper()
	head, err := eventlog.Head(ctx, s.env.pool)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.app.runner.WaitFor(ctx, head); err != nil {
		s.t.Fatal(err)
	}
}

func TestReplayEqualityAndRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := busyEnv(t)
	s := te.start()
	busyServer(t, ctx, s)
	s.stop()

	before := dumpState(t, ctx, te.dbURL)
	if !strings.Contains(before, `(@user2:spelt.test,user2,f,f,f,`) {
		t.Fatalf("dump lacks user2's account:\n%s", before)
	}
	code, stdout, stderr := te.cli(ctx, "replay")
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "write model") || !strings.Contains(stderr, "accounts: done") {
		t.Errorf("replay progress output:\n%s", stderr)
	}
	after := dumpState(t, ctx, te.dbURL)
	if before != after {
		t.Fatalf("read and write models differ after replay\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// One projector alone.
	if code, _, stderr := te.cli(ctx, "replay", "--projection", "accounts"); code != 0 {
		t.Fatalf("replay --projection: %d %s", code, stderr)
	}
	if again := dumpState(t, ctx, te.dbURL); again != before {
		t.Fatal("models differ after replaying one projector")
	}
	if code, _, stderr := te.cli(ctx, "replay", "--projection", "nosuch"); code == 0 || !strings.Contains(stderr, "nosuch") {
		t.Errorf("unknown projector: %d %s", code, stderr)
	}

	// Restart: the same password logs in, and old tokens still work.
	s2 := te.start()
	if _, err := s2.client("", "").Login(ctx, &mautrix.ReqLogin{
		Type: mautrix.AuthTypePassword, Password: "pw",
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "user3"},
	}); err != nil {
		t.Fatalf("login after restart: %v", err)
	}
}

// TestReplayOnline: with a server running, replay rebuilds the read models beside it
// and swaps them in; the server keeps serving throughout and goes on projecting after.
func TestReplayOnline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := busyEnv(t)
	s := te.start()
	busyServer(t, ctx, s)
	before := dumpReadModels(t, ctx, te.dbURL)
	code, stdout, stderr := te.cli(ctx, "replay")
	if code != 0 || !strings.Contains(stdout, "online") || !strings.Contains(stderr, "write model") {
		t.Fatalf("online replay: %d\n%s\n%s", code, stdout, stderr)
	}
	if after := dumpReadModels(t, ctx, te.dbURL); after != before {
		t.Fatalf("read models differ after an online replay\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The server took its projectors back: a new account works at once.
	reg := s.register(ctx, "afterswap", "pw")
	if who, err := s.client("", reg.AccessToken).Whoami(ctx); err != nil || who.UserID != reg.UserID {
		t.Fatalf("whoami after the swap: %+v %v", who, err)
	}
	if code, _, stderr := te.cli(ctx, "replay", "--projection", "accounts"); code != 0 {
		t.Fatalf("online replay of one projector: %d %s", code, stderr)
	}
	if _, err := s.client("", reg.AccessToken).Whoami(ctx); err != nil {
		t.Fatalf("whoami after the second swap: %v", err)
	}
}

// dumpReadModels is dumpState without the write model.
func dumpReadModels(t *testing.T, ctx context.Context, dbURL string) string {
	t.Helper()
	all := dumpState(t, ctx, dbURL)
	if i := strings.Index(all, "== \"writemodel\"."); i >= 0 {
		return all[:i]
	}
	return all
}

func TestReplayUntilInto(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := newTestEnv(t, nil)
	s := te.start()
	s.register(ctx, "early", "pw")
	s.waitProjected(ctx)
	mid, err := eventlog.Head(ctx, s.env.pool)
	if err != nil {
		t.Fatal(err)
	}
	var midTime time.Time
	if err := s.env.pool.QueryRow(ctx, "SELECT max(recorded_at) FROM eventlog.events").Scan(&midTime); err != nil {
		t.Fatal(err)
	}
	s.register(ctx, "late", "pw")
	s.waitProjected(ctx)

	// With the server running: --into never touches the live read models.
	code, stdout, stderr := te.cli(ctx, "replay", "--until", mid.String(), "--into", "audit_pos")
	if code != 0 {
		t.Fatalf("replay --into: %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = te.cli(ctx, "replay", "--until", midTime.Format(time.RFC3339Nano), "--into", "audit_time", "--projection", "accounts")
	if code != 0 {
		t.Fatalf("replay --into by time: %d\n%s\n%s", code, stdout, stderr)
	}
	users := func(schema string) string {
		var s string
		if err := te.pool(t).QueryRow(ctx, fmt.Sprintf("SELECT string_agg(localpart, ',' ORDER BY localpart) FROM %s.accounts",
			pgx.Identifier{schema}.Sanitize())).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := users("audit_pos"); got != "early" {
		t.Errorf("audit_pos accounts = %q, want early", got)
	}
	if got := users("audit_time"); got != "early" {
		t.Errorf("audit_time accounts = %q, want early", got)
	}
	if got := users("public"); got != "early,late" {
		t.Errorf("live accounts = %q, want early,late", got)
	}
	// The live server still serves.
	s.register(ctx, "later", "pw")

	for _, args := range [][]string{
		{"replay", "--until", mid.String()},                        // --until without --into
		{"replay", "--until", "yesterday", "--into", "x"},          // bad bound
		{"replay", "--until", mid.String(), "--into", "Bad-Name"},  // bad schema
		{"replay", "--until", mid.String(), "--into", "audit_pos"}, // exists
	} {
		if code, _, _ := te.cli(ctx, args...); code == 0 {
			t.Errorf("%v succeeded", args)
		}
	}
}

func (te *testEnv) pool(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), te.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	te := busyEnv(t)
	s := te.start()
	busyServer(t, ctx, s)
	s.stop() // the last seal covers everything

	code, stdout, stderr := te.cli(ctx, "verify")
	if code != 0 || !strings.Contains(stdout, "OK") || !strings.Contains(stdout, "0 events after the last seal") {
		t.Fatalf("verify of an intact log: %d\n%s\n%s", code, stdout, stderr)
	}

	// The log refuses edits...
	conn := te.pool(t)
	if _, err := conn.Exec(ctx, "UPDATE eventlog.events SET type = type"); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("UPDATE on the log: %v", err)
	}
	// ...so a superuser disables the trigger to edit a registration.
	var pos eventlog.Position
	if err := conn.QueryRow(ctx, `SELECT transaction_id, "offset" FROM eventlog.events
		WHERE type = 'account.registered.v1' ORDER BY transaction_id, "offset" LIMIT 1 OFFSET 2`).Scan(&pos.XID, &pos.Offset); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"ALTER TABLE eventlog.events DISABLE TRIGGER events_append_only",
		fmt.Sprintf(`UPDATE eventlog.events SET payload = '{"user_id":"@mallory:spelt.test","localpart":"mallory"}'
			WHERE transaction_id = '%d' AND "offset" = %d`, pos.XID, pos.Offset),
		"ALTER TABLE eventlog.events ENABLE TRIGGER events_append_only",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	code, stdout, _ = te.cli(ctx, "verify")
	if code != 1 || !strings.Contains(stdout, "FAILED") || !strings.Contains(stdout, "edited at "+pos.String()) {
		t.Fatalf("verify after tampering: %d\n%s", code, stdout)
	}
}

// TestServeEmbedded runs the real binary the way the README does: no database URL, so
// it starts its own PostgreSQL; it answers clients, stops cleanly on SIGTERM, and a
// second start finds the same accounts.
func TestServeEmbedded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	serve := func() (*exec.Cmd, *strings.Builder) {
		cmd := exec.Command(os.Args[0], "serve", "--migrate")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SPELT_TEST_AS_MAIN=1", "SPELT_CONFIG=", "SPELT_DATABASE_URL=",
			"SPELT_DATA_DIR="+filepath.Join(dir, "data"), "SPELT_LISTEN_CLIENT="+addr,
			"SPELT_REGISTRATION_ENABLED=true", "SPELT_SERVER_NAME=embedded.test", "SPELT_RATE_LIMITS_ENABLED=false")
		var logs strings.Builder
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = pw
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		ready := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(pr)
			once := false
			for sc.Scan() {
				logs.WriteString(sc.Text() + "\n")
				if !once && strings.Contains(sc.Text(), "serving the client API") {
					once = true
					close(ready)
				}
			}
		}()
		select {
		case <-ready:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("server did not start:\n%s", logs.String())
		}
		return cmd, &logs
	}
	stop := func(cmd *exec.Cmd, logs *strings.Builder) {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("no exit within 30s of SIGTERM\n%s", logs.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "data", "postgres", "postmaster.pid")); !os.IsNotExist(err) {
			t.Errorf("embedded PostgreSQL still running after exit (postmaster.pid: %v)", err)
		}
	}

	cmd, logs := serve()
	c, _ := mautrix.NewClient("http://"+addr, "", "")
	reg, err := c.RegisterDummy(ctx, &mautrix.ReqRegister[any]{Username: "persist", Password: "pw"})
	if err != nil || reg.UserID != "@persist:embedded.test" {
		t.Fatalf("register: %v %v\n%s", reg, err, logs.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "signing.key")); err != nil {
		t.Errorf("no signing key created: %v", err)
	}
	stop(cmd, logs)

	cmd, logs = serve()
	defer stop(cmd, logs)
	if _, err := c.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword, Password: "pw",
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "persist"}}); err != nil {
		t.Fatalf("login after restart: %v\n%s", err, logs.String())
	}
}

func mustWhoami(t *testing.T, ctx context.Context, c *mautrix.Client) id.DeviceID {
	t.Helper()
	who, err := c.Whoami(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return who.DeviceID
}
