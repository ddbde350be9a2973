package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/jackc/pgx/v5"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	spelthttp "spelt.dev/spelt/http"
	"spelt.dev/spelt/internal/config"
	"spelt.dev/spelt/internal/spectest"
	"spelt.dev/spelt/internal/testkit"
	"spelt.dev/spelt/sql/migrations"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the spelt binary for tests that run it as a process.
	if os.Getenv("SPELT_TEST_AS_MAIN") == "1" {
		main()
		return
	}
	testkit.Main(m)
}

// migrate is the test databases' migration.
var migrate = migrations.UpURL

const testServerName = "spelt.test"

// testEnv is one test's Spelt installation: a database, a data directory and a
// configuration file that the CLI sub-commands can be pointed at.
type testEnv struct {
	t       testing.TB
	dbURL   string
	cfg     config.Config
	cfgPath string
}

func newTestEnv(t testing.TB, mutate func(*config.Config)) *testEnv {
	t.Helper()
	te := &testEnv{t: t, dbURL: testkit.DB(t, migrate)}
	cfg := config.Defaults()
	cfg.ServerName = testServerName
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = te.dbURL
	cfg.Database.MaxConns = 10
	cfg.Listen.Client = "127.0.0.1:0"
	cfg.PublicBaseURL = "http://spelt.test:8008/"
	cfg.Registration.Enabled = true
	cfg.Registration.SharedSecret = "s3cret"
	cfg.RateLimits.Enabled = false
	cfg.EventLog.SealInterval = config.Duration{Duration: 200 * time.Millisecond}
	cfg.Log.Level = "warn"
	if mutate != nil {
		mutate(&cfg)
	}
	te.cfg = cfg
	te.cfgPath = filepath.Join(t.TempDir(), "spelt.toml")
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(te.cfgPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return te
}

// testServer is a running Spelt on a loopback port.
type testServer struct {
	t       testing.TB
	app     *app
	env     *env
	baseURL string
	cancel  context.CancelFunc
	done    chan error
}

// start runs the server in-process, as `spelt serve` would, until stop or the end of
// the test.
func (te *testEnv) start() *testServer { return te.startWith(nil) }

// startWith is start with an adjusted HTTP configuration.
func (te *testEnv) startWith(tweak func(*spelthttp.Config)) *testServer {
	t := te.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pool, err := connect(ctx, te.dbURL, te.cfg.Database.MaxConns, "")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	e := &env{cfg: te.cfg, logger: logger, pool: pool, dbURL: te.dbURL, tweakHTTP: tweak}
	a, err := newApp(ctx, e)
	if err != nil {
		cancel()
		pool.Close()
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, app: a, env: e, baseURL: "http://" + l.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.run(ctx, l) }()
	t.Cleanup(s.stop)
	return s
}

// stop shuts the server down and waits until it has. It may be called twice.
func (s *testServer) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("server: %v", err)
		}
	case <-time.After(30 * time.Second):
		s.t.Error("server did not stop within 30s")
	}
	s.env.pool.Close()
}

// client returns a mautrix client for the server, logged in with token if not empty.
func (s *testServer) client(userID, token string) *mautrix.Client {
	s.t.Helper()
	c, err := mautrix.NewClient(s.baseURL, "", token)
	if err != nil {
		s.t.Fatal(err)
	}
	// Every response is checked against the spec's OpenAPI definition of its endpoint.
	c.Client = &http.Client{Transport: spectest.Transport(s.t, nil)}
	if userID != "" {
		c.UserID = id.UserID(userID)
	}
	return c
}

// register creates a user with m.login.dummy through the client API.
func (s *testServer) register(ctx context.Context, username, password string) *mautrix.RespRegister {
	s.t.Helper()
	resp, err := s.client("", "").RegisterDummy(ctx, &mautrix.ReqRegister[any]{Username: username, Password: password})
	if err != nil {
		s.t.Fatalf("register %s: %v", username, err)
	}
	return resp
}

// cli runs a spelt sub-command against the test's configuration.
func (te *testEnv) cli(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	full := append([]string{args[0], "--config", te.cfgPath}, args[1:]...)
	code = run(ctx, full, &out, &errb)
	return code, out.String(), errb.String()
}

// dumpState returns every row of every read-model and write-model table, sorted, as
// text: two dumps are equal when the tables' contents are.
func dumpState(t *testing.T, ctx context.Context, dbURL string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_schema, table_name FROM information_schema.tables
		WHERE table_schema IN ('public', 'writemodel') AND table_type = 'BASE TABLE'
		  AND table_name <> 'goose_db_version' ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var s, n string
		err := r.Scan(&s, &n)
		return pgx.Identifier{s, n}.Sanitize(), err
	})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, tbl := range tables {
		rows, err := conn.Query(ctx, fmt.Sprintf("SELECT x::text FROM %s x", tbl))
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(lines)
		fmt.Fprintf(&b, "== %s (%d rows)\n%s\n", tbl, len(lines), strings.Join(lines, "\n"))
	}
	return b.String()
}

// httpError returns the Matrix error of err, or fails the test.
func httpError(t *testing.T, err error) mautrix.HTTPError {
	t.Helper()
	var he mautrix.HTTPError
	if !errors.As(err, &he) {
		t.Fatalf("want an HTTP error, got %v", err)
	}
	return he
}

// raw sends a request with a raw body and returns the status, headers and JSON body.
func (s *testServer) raw(method, path, token string, body []byte) (int, http.Header, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.baseURL+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := spectest.Check(method, path, resp.StatusCode, b); err != nil {
		s.t.Errorf("%v\n%s", err, b)
	}
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			s.t.Fatalf("%s %s: response is not a JSON object: %q", method, path, b)
		}
	}
	return resp.StatusCode, resp.Header, out
}

// wantError checks a raw response is the Matrix error (status, errcode).
func wantError(t *testing.T, what string, status int, body map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus || body["errcode"] != wantCode {
		t.Errorf("%s: got %d %v, want %d %s", what, status, body, wantStatus, wantCode)
	}
	if _, ok := body["error"].(string); !ok && wantCode != "" {
		t.Errorf("%s: error response without an error message: %v", what, body)
	}
}
