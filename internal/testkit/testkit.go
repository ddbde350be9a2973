package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/internal/pgembed"
)

// EnvURL names the environment variable pointing the tests at an existing
// server instead of a throwaway cluster.
const EnvURL = "SPELT_TEST_DATABASE_URL"

const (
	// dirPrefix names the throwaway clusters' directories under
	// os.TempDir(), so that a later run can find those of dead runs.
	dirPrefix = "spelt-testkit-"
	// lockName is the file in that directory a live run holds flocked.
	lockName = "testkit.lock"

	setupTimeout = 5 * time.Minute // cluster start and migrations
	opTimeout    = time.Minute     // one CREATE or DROP DATABASE
)

// state is the test binary's server. It is the package's only variable,
// and must be one: Main and the tests share nothing else, and the point is
// one server per test binary.
var state kit

type kit struct {
	mu         sync.Mutex
	mainCalled bool
	started    bool // setup has run, whatever its outcome
	srv        *server
	err        error // from setup
	templates  map[uintptr]*template
}

// server is where the test databases live.
type server struct {
	// base is the URL the admin pool connects to; test URLs are derived
	// from it by changing the database name.
	base *url.URL
	pool *pgxpool.Pool

	// Set for the throwaway cluster only.
	cluster *pgembed.Cluster
	dir     string
	lock    *os.File
}

// template is a migrated database that DB clones, one per migrate function.
type template struct {
	once sync.Once
	name string
	err  error
}

// Main runs the tests, then tears down what DB set up, and exits. Call it
// from TestMain in every package that uses DB or AdminURL.
func Main(m *testing.M) {
	state.mu.Lock()
	state.mainCalled = true
	state.mu.Unlock()

	code := m.Run()
	if err := state.shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "testkit: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// DB returns the URL of a new database for this test only, a copy of a
// template on which migrate has run, and drops it when the test ends. migrate
// runs once per test binary and per function (keyed by its code pointer, so
// closures sharing code share a template); it may be nil for an empty
// database. It must close its connections before returning: a template
// cannot be copied while in use.
func DB(t testing.TB, migrate func(ctx context.Context, url string) error) string {
	t.Helper()
	s := state.server(t)
	tpl, err := state.template(s, migrate)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}

	name := "spelt_t_" + randomSuffix()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	// Identifiers cannot be bound as parameters; both names are ours.
	_, err = s.pool.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(tpl))
	if err != nil {
		t.Fatalf("testkit: create database %s from %s: %v", name, tpl, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		// FORCE ends connections the test left open (PostgreSQL 13+).
		if _, err := s.pool.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("testkit: drop database %s: %v", name, err)
		}
	})
	return s.url(name)
}

// AdminURL returns a URL to the "postgres" maintenance database of the
// server DB uses, as a user with the rights the tests need (the superuser of
// the throwaway cluster), e.g. to disable a trigger.
func AdminURL(t testing.TB) string {
	t.Helper()
	return state.server(t).url("postgres")
}

// server sets the server up on first use, or fails t with why it cannot.
func (k *kit) server(t testing.TB) *server {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.mainCalled {
		t.Fatal("testkit: call testkit.Main(m) from this package's TestMain; it stops the test server")
	}
	// Setup under the mutex: parallel tests wait for the one that came first.
	if !k.started {
		k.started = true
		k.srv, k.err = setup()
	}
	if k.err != nil {
		t.Fatalf("testkit: %v", k.err)
	}
	return k.srv
}

// template returns the name of migrate's template, creating it on first use.
func (k *kit) template(s *server, migrate func(context.Context, string) error) (string, error) {
	var key uintptr
	if migrate != nil {
		key = reflect.ValueOf(migrate).Pointer()
	}
	k.mu.Lock()
	if k.templates == nil {
		k.templates = map[uintptr]*template{}
	}
	tpl := k.templates[key]
	if tpl == nil {
		tpl = &template{}
		k.templates[key] = tpl
	}
	k.mu.Unlock()

	// Not tied to the calling test's context: the template outlives it.
	tpl.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		tpl.name, tpl.err = s.createTemplate(ctx, migrate)
	})
	return tpl.name, tpl.err
}

// setup connects to SPELT_TEST_DATABASE_URL or starts a throwaway cluster.
func setup() (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s := &server{}

	adminURL := os.Getenv(EnvURL)
	if adminURL == "" {
		if err := s.startCluster(ctx); err != nil {
			s.close(ctx)
			return nil, err
		}
		adminURL = s.cluster.URL("postgres")
	}
	var err error
	s.base, err = url.Parse(adminURL)
	if err != nil || (s.base.Scheme != "postgres" && s.base.Scheme != "postgresql") {
		s.close(ctx)
		return nil, fmt.Errorf("%s must be a postgres:// URL", EnvURL)
	}
	s.pool, err = pgxpool.New(ctx, adminURL)
	if err == nil {
		err = s.pool.Ping(ctx)
	}
	if err != nil {
		s.close(ctx)
		return nil, fmt.Errorf("connect to test server: %w", err)
	}
	return s, nil
}

// startCluster starts the throwaway cluster in a new temporary directory.
func (s *server) startCluster(ctx context.Context) error {
	sweep()
	var err error
	s.dir, err = os.MkdirTemp("", dirPrefix)
	if err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		// Let the postgres user, which runs the server for root, traverse
		// into the directory (pgembed would do it too, with a warning).
		if err := os.Chmod(s.dir, 0o711); err != nil {
			return err
		}
	}
	s.lock, err = lockNew(s.dir)
	if err != nil {
		return err
	}
	s.cluster, err = pgembed.Start(ctx, pgembed.Options{
		DataDir: filepath.Join(s.dir, "pg"),
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Fast:    true,
	})
	return err
}

// createTemplate creates a database and runs migrate on it.
func (s *server) createTemplate(ctx context.Context, migrate func(context.Context, string) error) (string, error) {
	name := "spelt_tpl_" + randomSuffix()
	if _, err := s.pool.Exec(ctx, "CREATE DATABASE "+ident(name)); err != nil {
		return "", fmt.Errorf("create template %s: %w", name, err)
	}
	if migrate == nil {
		return name, nil
	}
	if err := migrate(ctx, s.url(name)); err != nil {
		_, _ = s.pool.Exec(ctx, "DROP DATABASE "+ident(name)+" WITH (FORCE)")
		return "", fmt.Errorf("migrate template %s: %w", name, err)
	}
	// A connection the migration left open (an unclosed pool) would make
	// every copy fail with "source database is being accessed by other
	// users".
	_, err := s.pool.Exec(ctx,
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
	if err != nil {
		return "", fmt.Errorf("disconnect template %s: %w", name, err)
	}
	return name, nil
}

// url is the URL of database name on the server.
func (s *server) url(name string) string {
	u := *s.base
	u.Path, u.RawPath = "/"+name, ""
	q := u.Query()
	if q.Has("dbname") {
		q.Del("dbname")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// shutdown drops the templates of an external server, or stops and deletes
// the throwaway cluster.
func (k *kit) shutdown() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.srv
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	var errs []error
	if s.cluster == nil {
		for _, tpl := range k.templates {
			if tpl.name == "" {
				continue
			}
			if _, err := s.pool.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(tpl.name)+" WITH (FORCE)"); err != nil {
				errs = append(errs, fmt.Errorf("drop template %s: %w", tpl.name, err))
			}
		}
	}
	errs = append(errs, s.close(ctx))
	return errors.Join(errs...)
}

// close releases whatever setup got as far as acquiring.
func (s *server) close(ctx context.Context) error {
	if s.pool != nil {
		s.pool.Close()
	}
	var err error
	if s.cluster != nil {
		err = s.cluster.Stop(ctx)
	}
	if s.dir != "" && err == nil {
		err = os.RemoveAll(s.dir)
	}
	if s.lock != nil {
		_ = s.lock.Close() // after RemoveAll: see sweep
	}
	return err
}

// lockNew creates dir's lock file already flocked: it is locked under a
// temporary name and then renamed into place, so that sweep never sees it
// unlocked while we live.
func lockNew(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, lockName+".*")
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, lockName)); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// sweep deletes the cluster directories of test binaries that died before
// Main could clean up (a -timeout panic, a kill). Their lock is no longer
// held. Their server, which pg_ctl detached, notices within a minute that
// its postmaster.pid is gone and shuts itself down. Errors are ignored: this
// is housekeeping for a previous run.
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		f, err := os.Open(filepath.Join(dir, lockName))
		if err != nil {
			continue // no lock file yet (or gone): not ours to judge
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			_ = os.RemoveAll(dir)
		}
		_ = f.Close()
	}
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}

func ident(name string) string {
	return pgx.Identifier{name}.Sanitize()
}
