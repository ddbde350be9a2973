package eventlog_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/testkit"
	"spelt.dev/spelt/sql/migrations"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// migrate is the template migration of every test database.
// migrate is the test databases' migration.
var migrate = migrations.UpURL

// testTimeout bounds every wait of a test: generous, because the tests of the package
// share one cluster, and a transaction anywhere in it holds back every reader's horizon.
const testTimeout = 60 * time.Second

// testType is the event type the tests append; the log takes any type name.
const testType = "test.happened.v1"

var testMeta = eventlog.Metadata{Actor: "@tester:spelt.test", Origin: eventlog.OriginSystem, RequestID: "req"}

// newPool returns a pool on a fresh migrated database of the test's own.
func newPool(t *testing.T, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testkit.DB(t, migrate))
	if err != nil {
		t.Fatalf("parse url: %v", err)
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

type payload struct {
	N      int    `json:"n"`
	Writer int    `json:"writer,omitempty"`
	Note   string `json:"note,omitempty"`
}

func ev(stream string, n int, expect int64) eventlog.NewEvent {
	return eventlog.NewEvent{Stream: stream, Type: testType, Data: payload{N: n}, ExpectVersion: expect}
}

// appendCommit appends events in a transaction of their own and commits it.
func appendCommit(t *testing.T, ctx context.Context, pool *pgxpool.Pool, log *eventlog.Log, events ...eventlog.NewEvent) []eventlog.Event {
	t.Helper()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	out, err := log.Append(ctx, tx, testMeta, events...)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	log.Committed()
	return out
}

// readAll reads the whole visible log.
func readAll(t *testing.T, ctx context.Context, q eventlog.Querier) []eventlog.Event {
	t.Helper()
	var out []eventlog.Event
	var after eventlog.Position
	for {
		evs, err := eventlog.Read(ctx, q, after, 1000, eventlog.Bound{})
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if len(evs) == 0 {
			return out
		}
		out = append(out, evs...)
		after = evs[len(evs)-1].Position
	}
}

// readUntil reads the whole log until it holds want events: events committed a moment
// ago stay invisible while any transaction of the cluster that began before them runs.
func readUntil(t *testing.T, ctx context.Context, q eventlog.Querier, want int) []eventlog.Event {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		evs := readAll(t, ctx, q)
		if len(evs) >= want {
			return evs
		}
		select {
		case <-ctx.Done():
			t.Fatalf("log shows %d events, want %d: %v", len(evs), want, ctx.Err())
		case <-tick.C:
		}
	}
}

// sealVisible seals once the whole log of total events is visible (a seal covers only
// what readers can see, and the other tests' transactions hold back the horizon), and
// checks that the seal covered want events.
func sealVisible(t *testing.T, ctx context.Context, pool *pgxpool.Pool, sealer *eventlog.Sealer, total int, want int64) {
	t.Helper()
	readUntil(t, ctx, pool, total)
	n, err := sealer.Seal(ctx)
	if err != nil || n != want {
		t.Fatalf("seal = %d, %v; want %d events sealed", n, err, want)
	}
}

func TestAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	pool := newPool(t, 4)
	log := eventlog.New(discardLogger(), nil)
	appendCommit(t, ctx, pool, log, ev("test:append-only", 1, eventlog.NoStream), ev("test:append-only", 2, eventlog.AnyVersion))

	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sealVisible(t, ctx, pool, eventlog.NewSealer(pool, eventlog.Key{ID: "ed25519:test", Private: priv}, discardLogger()), 2, 2)

	for _, table := range []string{"events", "seals"} {
		t.Run(table, func(t *testing.T) {
			dump := func() string {
				t.Helper()
				var s string
				err := pool.QueryRow(ctx, `SELECT string_agg(r::text, E'\n' ORDER BY r::text) FROM eventlog.`+table+` r`).Scan(&s)
				if err != nil {
					t.Fatalf("dump: %v", err)
				}
				return s
			}
			before := dump()
			column := map[string]string{"events": "payload", "seals": "digest"}[table]
			value := map[string]string{"events": `'{"n": 99}'`, "seals": `'\x00'`}[table]
			for _, stmt := range []string{
				`UPDATE eventlog.` + table + ` SET ` + column + ` = ` + value,
				`DELETE FROM eventlog.` + table,
				`TRUNCATE eventlog.` + table,
				`TRUNCATE eventlog.` + table + ` RESTART IDENTITY CASCADE`,
			} {
				_, err := pool.Exec(ctx, stmt)
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) {
					t.Errorf("%s: err = %v, want a PostgreSQL error", stmt, err)
					continue
				}
				if pgErr.Code != "23001" || !strings.Contains(pgErr.Message, "append-only") {
					t.Errorf("%s: error %s %q, want 23001 restrict_violation saying append-only", stmt, pgErr.Code, pgErr.Message)
				}
			}
			if after := dump(); after != before {
				t.Errorf("rows changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestConcurrentAppendersNeverSkip(t *testing.T) {
	t.Parallel()

	t.Run("writers", func(t *testing.T) {
		t.Parallel()
		testConcurrentWriters(t)
	})

	// A transaction that appended stays open while a later one commits: a reader must
	// not pass the open one's event, whichever of the two got the lower offset.
	t.Run("forced", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name string
			// xidFirst makes the open transaction take its transaction id before the
			// other appends, and append after it: it then has the lower transaction id
			// but the higher offset, the case an offset-only cursor skips.
			xidFirst bool
		}{{"lower offset stays open", false}, {"higher offset stays open", true}} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				ctx := ctxFor(t)
				pool := newPool(t, 4)
				log := eventlog.New(discardLogger(), nil)

				txA, err := pool.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer txA.Rollback(context.WithoutCancel(ctx))
				if tc.xidFirst {
					if _, err := txA.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
						t.Fatal(err)
					}
				}
				var a []eventlog.Event
				if !tc.xidFirst {
					a, err = log.Append(ctx, txA, testMeta, ev("test:a", 1, eventlog.NoStream))
					if err != nil {
						t.Fatal(err)
					}
				}
				b := appendCommit(t, ctx, pool, log, ev("test:b", 1, eventlog.NoStream))
				if tc.xidFirst {
					a, err = log.Append(ctx, txA, testMeta, ev("test:a", 1, eventlog.NoStream))
					if err != nil {
						t.Fatal(err)
					}
					if a[0].Position.Offset < b[0].Position.Offset {
						t.Fatalf("offsets %d (open) and %d (committed): want the open one higher", a[0].Position.Offset, b[0].Position.Offset)
					}
				}
				if !a[0].Position.Less(b[0].Position) {
					t.Fatalf("open transaction's event at %s, committed one at %s: want the open one first", a[0].Position, b[0].Position)
				}

				// B committed, but A is still running and may commit below it.
				got, err := eventlog.Read(ctx, pool, eventlog.Position{}, 100, eventlog.Bound{})
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 0 {
					t.Fatalf("read returned %d events (first at %s) while a transaction before them is open", len(got), got[0].Position)
				}
				if head, err := eventlog.Head(ctx, pool); err != nil || !head.IsZero() {
					t.Fatalf("head = %s, %v; want nothing while the first transaction is open", head, err)
				}

				if err := txA.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				got = readUntil(t, ctx, pool, 2)
				if len(got) != 2 || got[0].ID != a[0].ID || got[1].ID != b[0].ID {
					t.Fatalf("read %v, want A then B", ids(got))
				}
				if got[0].Position != a[0].Position || got[1].Position != b[0].Position {
					t.Fatalf("read positions %s, %s; Append returned %s, %s", got[0].Position, got[1].Position, a[0].Position, b[0].Position)
				}
			})
		}
	})
}

func ids(evs []eventlog.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Stream + "@" + e.Position.String()
	}
	return out
}

// testConcurrentWriters has 8 writers append 300 events each in small transactions,
// some held open a moment after their insert so that commits happen out of offset
// order, while one reader follows the log. Every event must be read exactly once, in
// strictly increasing positions.
func testConcurrentWriters(t *testing.T) {
	const (
		writers   = 8
		perWriter = 300
		hotStream = "test:hot"
	)
	ctx := ctxFor(t)
	pool := newPool(t, writers+4)
	notifier := eventlog.NewNotifier(pool, discardLogger()) // local wake-ups only: Run is not needed
	log := eventlog.New(discardLogger(), notifier)
	wake, cancel := notifier.Subscribe(nil)
	defer cancel()

	var (
		mu        sync.Mutex
		committed = map[string]eventlog.Position{}
		conflicts int
		wg        sync.WaitGroup
	)
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for n := 0; n < perWriter; {
				k := min(1+rng.IntN(3), perWriter-n)
				batch := make([]eventlog.NewEvent, k)
				for i := range batch {
					stream := fmt.Sprintf("test:w%d:s%d", w, rng.IntN(10))
					if rng.IntN(5) == 0 {
						stream = hotStream // all writers: version conflicts
					}
					batch[i] = eventlog.NewEvent{Stream: stream, Type: testType,
						Data: payload{N: n + i, Writer: w}, ExpectVersion: eventlog.AnyVersion}
				}
				var hold float64
				if rng.IntN(3) == 0 {
					hold = float64(1+rng.IntN(5)) / 1000 // seconds, for pg_sleep
				}
				evs, err := appendHeld(ctx, pool, log, batch, hold)
				if errors.Is(err, eventlog.ErrVersionConflict) {
					mu.Lock()
					conflicts++
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				for _, e := range evs {
					committed[e.ID] = e.Position
				}
				mu.Unlock()
				n += k
			}
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()

	seen := map[string]eventlog.Position{}
	var after eventlog.Position
	outOfOffsetOrder, reads := 0, 0
	writersDone := false
	for {
		evs, err := eventlog.Read(ctx, pool, after, 100, eventlog.Bound{})
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		reads++
		for _, e := range evs {
			if !after.Less(e.Position) {
				t.Fatalf("read %s after %s: positions must increase", e.Position, after)
			}
			if p, dup := seen[e.ID]; dup {
				t.Fatalf("event %s read twice (at %s and %s)", e.ID, p, e.Position)
			}
			if e.Position.Offset < after.Offset {
				outOfOffsetOrder++
			}
			seen[e.ID] = e.Position
			after = e.Position
		}
		if len(evs) > 0 {
			continue
		}
		if writersDone {
			mu.Lock()
			total := len(committed)
			mu.Unlock()
			if len(seen) >= total {
				break
			}
		}
		// Nothing new: wait for a commit. The fallback timer covers transactions of
		// other tests on the cluster, which hold back the horizon without waking us.
		select {
		case <-wake:
		case <-done:
			writersDone, done = true, nil
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("reader: %v (read %d events)", ctx.Err(), len(seen))
		}
	}
	if t.Failed() {
		return
	}
	if len(committed) != writers*perWriter {
		t.Fatalf("%d events committed, want %d", len(committed), writers*perWriter)
	}
	for id, p := range committed {
		got, ok := seen[id]
		switch {
		case !ok:
			t.Errorf("event %s at %s was never read", id, p)
		case got != p:
			t.Errorf("event %s read at %s, appended at %s", id, got, p)
		}
	}
	if len(seen) != len(committed) {
		t.Errorf("read %d events, %d were committed", len(seen), len(committed))
	}
	t.Logf("%d events, %d reads, %d version conflicts retried, %d events read after a higher offset",
		len(seen), reads, conflicts, outOfOffsetOrder)
}

// appendHeld appends batch in a transaction that, when hold > 0, stays open that many
// seconds after the insert before it commits.
func appendHeld(ctx context.Context, pool *pgxpool.Pool, log *eventlog.Log, batch []eventlog.NewEvent, hold float64) (evs []eventlog.Event, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
		log.Committed()
	}()
	evs, err = log.Append(ctx, tx, testMeta, batch...)
	if err != nil {
		return nil, err
	}
	if hold > 0 {
		if _, err := tx.Exec(ctx, "SELECT pg_sleep($1)", hold); err != nil {
			return nil, err
		}
	}
	return evs, tx.Commit(ctx)
}

func TestVersionConflict(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	pool := newPool(t, 6)
	log := eventlog.New(discardLogger(), nil)

	first := appendCommit(t, ctx, pool, log, ev("test:s", 1, eventlog.NoStream), ev("test:s", 2, eventlog.AnyVersion))
	if first[0].Version != 1 || first[1].Version != 2 {
		t.Fatalf("versions %d, %d; want 1, 2", first[0].Version, first[1].Version)
	}
	for _, expect := range []int64{eventlog.NoStream, 1, 3} {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = log.Append(ctx, tx, testMeta, ev("test:s", 3, expect))
		_ = tx.Rollback(ctx)
		if !errors.Is(err, eventlog.ErrVersionConflict) {
			t.Errorf("append expecting version %d of a stream at 2: err = %v, want ErrVersionConflict", expect, err)
		}
	}
	if got := appendCommit(t, ctx, pool, log, ev("test:s", 3, 2)); got[0].Version != 3 {
		t.Errorf("append expecting version 2: got version %d, want 3", got[0].Version)
	}

	// Two transactions append version 1 of a new stream. The second one's head read
	// cannot see the first's uncommitted row, so it passes the NoStream check and
	// blocks on the unique index until the first commits.
	tx1, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback(context.WithoutCancel(ctx))
	tx2, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Rollback(context.WithoutCancel(ctx))
	var pid2 uint32
	if err := tx2.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid2); err != nil {
		t.Fatal(err)
	}
	won, err := log.Append(ctx, tx1, testMeta, ev("test:new", 1, eventlog.NoStream))
	if err != nil {
		t.Fatal(err)
	}
	lost := make(chan error, 1)
	go func() {
		_, err := log.Append(ctx, tx2, testMeta, ev("test:new", 1, eventlog.NoStream))
		lost <- err
	}()
	waitBlocked(t, ctx, pool, pid2, lost)
	if err := tx1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lost:
		if !errors.Is(err, eventlog.ErrVersionConflict) {
			t.Fatalf("second append of version 1: err = %v, want ErrVersionConflict", err)
		}
	case <-ctx.Done():
		t.Fatal("second append never returned")
	}
	_ = tx2.Rollback(ctx)

	var n int
	var id string
	if err := pool.QueryRow(ctx, `SELECT count(*), min(uuid::text) FROM eventlog.events WHERE stream = 'test:new'`).Scan(&n, &id); err != nil {
		t.Fatal(err)
	}
	if n != 1 || id != won[0].ID {
		t.Fatalf("stream test:new has %d events (first %s), want only the winner's %s", n, id, won[0].ID)
	}
}

// waitBlocked waits until backend pid waits for a lock (or its statement ends, which
// fails the test: it was meant to block).
func waitBlocked(t *testing.T, ctx context.Context, pool *pgxpool.Pool, pid uint32, ended <-chan error) {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		var wait *string
		if err := pool.QueryRow(ctx, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid).Scan(&wait); err != nil {
			t.Fatal(err)
		}
		if wait != nil && *wait == "Lock" {
			return
		}
		select {
		case err := <-ended:
			t.Fatalf("second append returned %v without waiting for the first transaction", err)
		case <-ctx.Done():
			t.Fatalf("second append never blocked: %v", ctx.Err())
		case <-tick.C:
		}
	}
}

// fixture is a log of three streams over several transactions, sealed twice, with an
// unsealed tail unless noTail.
type fixture struct {
	pool   *pgxpool.Pool
	events map[string]eventlog.Event // by "stream/version", e.g. "a/2"
	pub    ed25519.PublicKey
	total  int
	tail   int
}

const keyID = "ed25519:test"

func newFixture(t *testing.T, ctx context.Context, noTail bool, sealWith ed25519.PrivateKey) *fixture {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if sealWith == nil {
		sealWith = priv
	}
	f := &fixture{pool: newPool(t, 4), events: map[string]eventlog.Event{}, pub: pub}
	log := eventlog.New(discardLogger(), nil)
	sealer := eventlog.NewSealer(f.pool, eventlog.Key{ID: keyID, Private: sealWith}, discardLogger())
	add := func(streams ...string) {
		t.Helper()
		batch := make([]eventlog.NewEvent, len(streams))
		for i, s := range streams {
			batch[i] = ev("test:"+s, i, eventlog.AnyVersion)
		}
		for _, e := range appendCommit(t, ctx, f.pool, log, batch...) {
			f.events[fmt.Sprintf("%s/%d", strings.TrimPrefix(e.Stream, "test:"), e.Version)] = e
			f.total++
		}
	}
	seal := func(want int64) {
		t.Helper()
		sealVisible(t, ctx, f.pool, sealer, f.total, want)
	}
	add("a", "b") // a1 b1
	add("a", "c") // a2 c1
	seal(4)
	add("b", "a", "c") // b2 a3 c2
	add("a")           // a4
	seal(4)
	if !noTail {
		add("b", "c") // b3 c3
		f.tail = 2
	}
	return f
}

func (f *fixture) verify(t *testing.T, ctx context.Context) eventlog.Report {
	t.Helper()
	rep, err := eventlog.Verify(ctx, f.pool, map[string]ed25519.PublicKey{keyID: f.pub}, nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, p := range rep.Problems {
		t.Logf("problem: %s", p)
	}
	return rep
}

// tamper runs stmt as the superuser with the append-only trigger disabled, as an
// attacker with the database's keys would.
func (f *fixture) tamper(t *testing.T, ctx context.Context, stmt string, args ...any) {
	t.Helper()
	err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "ALTER TABLE eventlog.events DISABLE TRIGGER events_append_only"); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, stmt, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("%s changed %d rows, want 1", stmt, tag.RowsAffected())
		}
		_, err = tx.Exec(ctx, "ALTER TABLE eventlog.events ENABLE TRIGGER events_append_only")
		return err
	})
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

func wantProblem(t *testing.T, got eventlog.Problem, kind string, at eventlog.Event, stream bool) {
	t.Helper()
	if got.Kind != kind || got.Position != at.Position {
		t.Errorf("problem %s; want %q at %s", got, kind, at.Position)
	}
	if stream && (got.Stream != at.Stream || got.Version != at.Version) {
		t.Errorf("problem %s; want stream %s version %d", got, at.Stream, at.Version)
	}
}

func TestHashChainAndVerify(t *testing.T) {
	t.Parallel()

	t.Run("intact", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t)
		f := newFixture(t, ctx, false, nil)
		rep := f.verify(t, ctx)
		if len(rep.Problems) != 0 {
			t.Fatalf("intact log: %d problems, first %s", len(rep.Problems), rep.Problems[0])
		}
		if rep.Events != int64(f.total) || rep.Streams != 3 || rep.Seals != 2 || rep.Unsealed != int64(f.tail) {
			t.Fatalf("report %+v; want %d events, 3 streams, 2 seals, %d unsealed", rep, f.total, f.tail)
		}
		// The chain links each event to its stream's previous one.
		a1, a2 := f.events["a/1"], f.events["a/2"]
		if a1.PrevHash != nil || string(a2.PrevHash) != string(a1.Hash) {
			t.Fatalf("a/1 prev %x; a/2 prev %x, a/1 hash %x", a1.PrevHash, a2.PrevHash, a1.Hash)
		}
		// What Append returned is what is stored.
		for _, e := range readAll(t, ctx, f.pool) {
			want := f.events[fmt.Sprintf("%s/%d", strings.TrimPrefix(e.Stream, "test:"), e.Version)]
			if e.ID != want.ID || e.Position != want.Position || string(e.Hash) != string(want.Hash) ||
				string(e.Payload) != string(want.Payload) || !e.RecordedAt.Equal(want.RecordedAt) || mustMeta(t, e) != testMeta {
				t.Errorf("stored %+v\nappended %+v", e, want)
			}
		}

		// Without the public key, every seal is unverifiable.
		rep, err := eventlog.Verify(ctx, f.pool, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) != 2 || rep.Problems[0].Kind != "signature" || rep.Problems[1].Kind != "signature" {
			t.Fatalf("verify without keys: %v; want 2 signature problems", rep.Problems)
		}
	})

	t.Run("edited", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t)
		f := newFixture(t, ctx, false, nil)
		a2 := f.events["a/2"]
		f.tamper(t, ctx, `UPDATE eventlog.events SET payload = '{"n": 1000}' WHERE uuid = $1`, a2.ID)
		rep := f.verify(t, ctx)
		if len(rep.Problems) != 1 {
			t.Fatalf("%d problems, want 1", len(rep.Problems))
		}
		wantProblem(t, rep.Problems[0], "edited", a2, true)
	})

	t.Run("edited metadata", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t)
		f := newFixture(t, ctx, false, nil)
		c3 := f.events["c/3"] // in the unsealed tail: only the chain protects it
		f.tamper(t, ctx, `UPDATE eventlog.events SET metadata = '{"origin":"admin"}' WHERE uuid = $1`, c3.ID)
		rep := f.verify(t, ctx)
		if len(rep.Problems) != 1 {
			t.Fatalf("%d problems, want 1", len(rep.Problems))
		}
		wantProblem(t, rep.Problems[0], "edited", c3, true)
	})

	t.Run("removed within a seal", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t)
		f := newFixture(t, ctx, false, nil)
		// a/3 goes; a/4 is the next event of the stream and ends seal 2.
		f.tamper(t, ctx, `DELETE FROM eventlog.events WHERE uuid = $1`, f.events["a/3"].ID)
		rep := f.verify(t, ctx)
		if len(rep.Problems) != 2 {
			t.Fatalf("%d problems, want 2", len(rep.Problems))
		}
		wantProblem(t, rep.Problems[0], "removed", f.events["a/4"], true)
		wantProblem(t, rep.Problems[1], "reordered", f.events["a/4"], false)
	})

	t.Run("removed across seals", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t)
		f := newFixture(t, ctx, false, nil)
		// a/2 goes: seal 1, which ends at c/1, misses it before the stream's chain
		// reaches a/3 in seal 2.
		f.tamper(t, ctx, `DELETE FROM eventlog.events WHERE uuid = $1`, f.events["a/2"].ID)
		rep := f.verify(t, ctx)
		if len(rep.Problems) != 2 {
			t.Fatalf("%d problems, want 2", len(rep.Problems))
		}
		wantProblem(t, rep.Problems[0], "reordered", f.events["c/1"], false)
		wantProblem(t, rep.Problems[1], "removed", f.events["a/3"], true)
	})

	t.Run("removed last sealed event", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t)
		f := newFixture(t, ctx, true, nil)
		// a/4 is the last event of the log and of its stream: no chain notices, the seal
		// that covered it does.
		a4 := f.events["a/4"]
		f.tamper(t, ctx, `DELETE FROM eventlog.events WHERE uuid = $1`, a4.ID)
		rep := f.verify(t, ctx)
		if len(rep.Problems) != 1 {
			t.Fatalf("%d problems, want 1", len(rep.Problems))
		}
		wantProblem(t, rep.Problems[0], "reordered", a4, false)
		if rep.Events != int64(f.total-1) || rep.Unsealed != 0 {
			t.Errorf("report %+v; want %d events, none unsealed", rep, f.total-1)
		}
	})

	t.Run("signed with another key", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t)
		_, other, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		f := newFixture(t, ctx, false, other)
		rep := f.verify(t, ctx)
		if len(rep.Problems) != 2 {
			t.Fatalf("%d problems, want one per seal", len(rep.Problems))
		}
		wantProblem(t, rep.Problems[0], "signature", f.events["c/1"], false)
		wantProblem(t, rep.Problems[1], "signature", f.events["a/4"], false)
	})
}

func mustMeta(t *testing.T, e eventlog.Event) eventlog.Metadata {
	t.Helper()
	m, err := e.Meta()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// QueueAppend's INSERT goes with the caller's next batch: the events' positions are
// there once the batch's results are read, and a conflict fails the batch with
// ErrVersionConflict, leaving nothing behind.
func TestQueueAppend(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	pool := newPool(t, 4)
	log := eventlog.New(discardLogger(), nil)

	queued := func(events ...eventlog.NewEvent) ([]eventlog.Event, error) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		var b pgx.Batch
		out, err := log.QueueAppend(ctx, tx, &b, testMeta, nil, events...)
		if err != nil {
			return nil, err
		}
		for _, e := range out {
			if !e.Position.IsZero() {
				t.Fatalf("position %s before the batch ran", e.Position)
			}
		}
		b.Queue("SELECT 1")
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return nil, err
		}
		return out, tx.Commit(ctx)
	}
	out, err := queued(ev("test:q", 1, eventlog.NoStream), ev("test:q", 2, eventlog.AnyVersion))
	if err != nil {
		t.Fatal(err)
	}
	all := readUntil(t, ctx, pool, 2)
	if len(all) != 2 {
		t.Fatalf("log has %d events, want 2", len(all))
	}
	for i, e := range out {
		if e.Position != all[i].Position || e.ID != all[i].ID || e.Version != int64(i+1) {
			t.Errorf("event %d: %s v%d at %s, stored %s v%d at %s", i, e.ID, e.Version, e.Position, all[i].ID, all[i].Version, all[i].Position)
		}
	}

	// A head read before another writer moved the stream: the INSERT conflicts.
	stale := map[string]eventlog.StreamHead{"test:q": {Version: 1, Hash: out[0].Hash}}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var b pgx.Batch
	if _, err := log.QueueAppend(ctx, tx, &b, testMeta, stale, ev("test:q", 3, eventlog.AnyVersion)); err != nil {
		t.Fatal(err)
	}
	if err := tx.SendBatch(ctx, &b).Close(); !errors.Is(err, eventlog.ErrVersionConflict) {
		t.Fatalf("queued append after a stale head: err = %v, want ErrVersionConflict", err)
	}
	_ = tx.Rollback(ctx)
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM eventlog.events").Scan(&n); err != nil || n != 2 {
		t.Fatalf("log has %d events after the conflict (%v), want 2", n, err)
	}
}
