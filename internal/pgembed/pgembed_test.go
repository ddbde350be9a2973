package pgembed

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func startCluster(t *testing.T, opts Options) *Cluster {
	t.Helper()
	begin := time.Now()
	c, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %v", time.Since(begin))
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// TestClusterPersistsAcrossRestart runs the full life cycle with the default
// (durable) settings: create, use, stop, start again on the same directory.
func TestClusterPersistsAcrossRestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "postgres")
	opts := Options{DataDir: dir, Logger: testLogger(t)}

	c := startCluster(t, opts)
	for range 2 { // the second call finds the database
		if err := c.EnsureDatabase(ctx, "spelt"); err != nil {
			t.Fatalf("EnsureDatabase: %v", err)
		}
	}
	conn := connect(t, c.URL("spelt"))
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	_ = conn.Close(ctx)

	// The cluster is ours until Stop: a second owner is refused.
	if c2, err := Start(ctx, opts); !errors.Is(err, ErrInUse) {
		if c2 != nil {
			_ = c2.Stop(ctx)
		}
		t.Fatalf("second Start while running: err = %v, want ErrInUse", err)
	}

	for range 2 { // Stop is idempotent
		if err := c.Stop(ctx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(c.socketDir, ".s.PGSQL.54329")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Stop: %v", err)
	}

	c = startCluster(t, opts)
	conn = connect(t, c.URL("spelt"))
	var x int
	if err := conn.QueryRow(ctx, "SELECT x FROM kept").Scan(&x); err != nil || x != 42 {
		t.Fatalf("after restart: x = %d, %v; want 42", x, err)
	}
	if _, err := os.Stat(dir + ".log"); err != nil {
		t.Errorf("server log: %v", err)
	}
}

// TestLongDataDirUsesPrivateSocketDir checks the fallback for data
// directories too deep for a Unix socket path.
func TestLongDataDirUsesPrivateSocketDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60), "postgres")
	c := startCluster(t, Options{DataDir: dir, Logger: testLogger(t), Fast: true, Port: 5999})
	if !c.privateSocketDir || strings.HasPrefix(c.socketDir, dir) {
		t.Fatalf("socket dir = %s, want a private directory outside %s", c.socketDir, dir)
	}
	conn := connect(t, c.URL("postgres"))
	if err := conn.Ping(t.Context()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	_ = conn.Close(t.Context())
	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(c.socketDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("private socket dir left behind: %v", err)
	}
}

// TestLeftoverServerIsRestarted simulates an owner killed without stopping
// its server: the lock is gone but the server runs on.
func TestLeftoverServerIsRestarted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	opts := Options{DataDir: filepath.Join(t.TempDir(), "postgres"), Logger: testLogger(t), Fast: true}
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	c.release() // what the kernel does when the owner dies
	t.Cleanup(func() { _ = c.pgCtl(context.Background(), "stop", "-m", "immediate") })
	// A process another parallel test is starting may hold a copy of the lock's file
	// descriptor between its fork and its exec (the lock lives as long as any copy):
	// wait until the lock is really free, as it is once the owner is dead.
	lockPath := opts.DataDir + ".lock"
	for deadline := time.Now().Add(5 * time.Second); ; {
		f, err := lockCluster(lockPath)
		if err == nil {
			_ = f.Close()
			break
		}
		if !errors.Is(err, ErrInUse) || time.Now().After(deadline) {
			t.Fatalf("lock after release: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	c2 := startCluster(t, opts)
	conn := connect(t, c2.URL("postgres"))
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

// TestStalePidFileIsIgnored simulates a restart after a crash, where the
// pid in postmaster.pid now belongs to an unrelated live process of the same
// user. (A process of another user does not fool PostgreSQL.)
func TestStalePidFileIsIgnored(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	opts := Options{DataDir: filepath.Join(t.TempDir(), "postgres"), Logger: testLogger(t), Fast: true}
	c := startCluster(t, opts)
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	other := c.command(ctx, "sleep", "600") // runs as the server's user
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	pidFile := filepath.Join(opts.DataDir, "postmaster.pid")
	stale := strconv.Itoa(other.Process.Pid) + "\n" + opts.DataDir + "\n1700000000\n54329\n" + c.socketDir + "\n\n  54329001         0\nready   \n"
	if err := os.WriteFile(pidFile, []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	if c.runAs != nil {
		if err := os.Lchown(pidFile, int(c.runAs.uid), int(c.runAs.gid)); err != nil {
			t.Fatal(err)
		}
	}
	c = startCluster(t, opts)
	conn := connect(t, c.URL("postgres"))
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func TestURL(t *testing.T) {
	t.Parallel()
	c := &Cluster{socketDir: "/srv/spelt data/postgres/run", port: 54329}
	got := c.URL("spelt")
	want := "postgres:///spelt?host=%2Fsrv%2Fspelt+data%2Fpostgres%2Frun&port=54329&user=spelt"
	if got != want {
		t.Fatalf("URL = %s, want %s", got, want)
	}
	u, err := url.Parse(got)
	if err != nil || u.Query().Get("host") != c.socketDir {
		t.Fatalf("URL does not round-trip: %v %v", u, err)
	}
}

// fakeInstall lays out fake server binaries whose pg_ctl --version reports
// the given version.
func fakeInstall(t *testing.T, dir, version string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		script := "#!/bin/sh\necho '" + name + " (PostgreSQL) " + version + " (Fake)'\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindBinaries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	root := t.TempDir()
	for _, v := range []string{"9.6.24", "15.8", "16.4"} {
		fakeInstall(t, filepath.Join(root, "lib", strings.Join(strings.Split(v, ".")[:len(strings.Split(v, "."))-1], "."), "bin"), v)
	}
	fakeInstall(t, filepath.Join(root, "path"), "17.0")
	incomplete := filepath.Join(root, "incomplete")
	fakeInstall(t, incomplete, "18.0")
	if err := os.Remove(filepath.Join(incomplete, "postgres")); err != nil {
		t.Fatal(err)
	}
	glob := filepath.Join(root, "lib", "*", "bin")

	cases := []struct {
		name, pathEnv, glob, want string
		wantVersion               string // "" means an error
		wantErr                   error
	}{
		{name: "path wins", pathEnv: filepath.Join(root, "path"), glob: glob, wantVersion: "17"},
		{name: "incomplete path falls back to highest", pathEnv: incomplete, glob: glob, wantVersion: "16"},
		{name: "cluster version picks", pathEnv: filepath.Join(root, "path"), glob: glob, want: "15", wantVersion: "15"},
		{name: "old two-part major", glob: glob, want: "9.6", wantVersion: "9.6"},
		{name: "no matching version", glob: glob, want: "12"},
		{name: "nothing installed", glob: filepath.Join(root, "none", "*", "bin"), wantErr: ErrBinariesNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := findBinaries(ctx, tc.pathEnv, tc.glob, tc.want)
			if tc.wantVersion == "" {
				if err == nil {
					t.Fatalf("found %+v, want an error", b)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				t.Logf("error text: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("findBinaries: %v", err)
			}
			if b.version != tc.wantVersion {
				t.Fatalf("version = %s (%s), want %s", b.version, b.pgCtl, tc.wantVersion)
			}
		})
	}
}

func TestBinariesNotFoundTellsHowToFix(t *testing.T) {
	t.Parallel()
	msg := ErrBinariesNotFound.Error()
	for _, want := range []string{"apt-get install postgresql", "[database] url", "SPELT_DATABASE_URL"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestMajorVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n": "15",
		"pg_ctl (PostgreSQL) 9.6.24\n":                         "9.6",
		"pg_ctl (PostgreSQL) 17beta1\n":                        "17",
		"pg_ctl (PostgreSQL) 16.4\n":                           "16",
	} {
		if got := majorVersion(in); got != want {
			t.Errorf("majorVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
