package projections_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/internal/testkit"
	"spelt.dev/spelt/projections"
	"spelt.dev/spelt/sql/migrations"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// migrate is the test databases' migration.
var migrate = migrations.UpURL

// testTimeout bounds every wait. The tests share one cluster, and a transaction anywhere
// in it holds back every reader of every database, so waits are generous.
const testTimeout = 60 * time.Second

// Event types of the tests: the projector handles the first only.
const (
	typeSeen  = "test.seen.v1"
	typeOther = "test.other.v1"
)

var testMeta = eventlog.Metadata{Actor: "@tester:spelt.test", Origin: eventlog.OriginSystem}

type seenData struct {
	N      int  `json:"n"`
	Poison bool `json:"poison,omitempty"`
	// LatePoison fails in the database, in a batch: live, that batch is deferred to
	// the poll's commit, so the failure comes after Apply returned.
	LatePoison bool `json:"late_poison,omitempty"`
}

// seenProjector writes one row per event of typeSeen into seen, counting applications
// (n) since the table was last emptied, and logs every application in seen_log, which a
// rebuild does not empty, with the isolation level of the transaction that applied it:
// live delivery runs in Watermill's REPEATABLE READ poll, the batch catch-up in READ
// COMMITTED. It fails on events marked poison.
type seenProjector struct {
	version int
}

func (seenProjector) Name() string                  { return "seen" }
func (p seenProjector) Version() int                { return p.version }
func (seenProjector) Tables() []string              { return []string{"seen"} }
func (seenProjector) Handles(eventType string) bool { return eventType == typeSeen }

func (p seenProjector) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	for _, e := range events {
		var d seenData
		if err := e.Decode(&d); err != nil {
			return err
		}
		if d.Poison {
			return fmt.Errorf("poison event %d", d.N)
		}
		_, err := tx.Exec(ctx, `INSERT INTO seen (xid, off, stream, n_payload, ver, n) VALUES ($1, $2, $3, $4, $5, 1)
			ON CONFLICT (xid, off) DO UPDATE SET n = seen.n + 1`,
			e.Position.XID, e.Position.Offset, e.Stream, d.N, p.version)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO seen_log (xid, off, ver, path)
			VALUES ($1, $2, $3, current_setting('transaction_isolation'))`,
			e.Position.XID, e.Position.Offset, p.version)
		if err != nil {
			return err
		}
		if d.LatePoison {
			var b pgbatch.DB
			_, _ = b.Exec(ctx, `SELECT CAST('late poison event' AS int)`)
			if err := b.Send(ctx, tx); err != nil {
				return err
			}
		}
	}
	return nil
}

const seenSchema = `
CREATE TABLE seen (
    xid xid8 NOT NULL,
    off bigint NOT NULL,
    stream text NOT NULL,
    n_payload int NOT NULL,
    ver int NOT NULL,
    n int NOT NULL,
    PRIMARY KEY (xid, off)
);
CREATE TABLE seen_log (
    seq bigserial PRIMARY KEY,
    xid xid8 NOT NULL,
    off bigint NOT NULL,
    ver int NOT NULL,
    path text NOT NULL
);`

// env is one test's database, notifier and log.
type env struct {
	t        *testing.T
	ctx      context.Context
	pool     *pgxpool.Pool
	notifier *eventlog.Notifier
	log      *eventlog.Log
	logger   *slog.Logger
	n        int // payload counter
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	cfg, err := pgxpool.ParseConfig(testkit.DB(t, migrate))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 10
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, seenSchema); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	e := &env{t: t, ctx: ctx, pool: pool, logger: logger}
	e.notifier = eventlog.NewNotifier(pool, logger)
	e.log = eventlog.New(slog.New(slog.DiscardHandler), e.notifier)
	nctx, ncancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.notifier.Run(nctx) }()
	t.Cleanup(func() {
		ncancel()
		if err := <-done; err != nil {
			t.Errorf("notifier: %v", err)
		}
	})
	return e
}

// seen returns a handled event; other an event the projector ignores.
func (e *env) seen(stream string) eventlog.NewEvent {
	e.n++
	return eventlog.NewEvent{Stream: stream, Type: typeSeen, Data: seenData{N: e.n}, ExpectVersion: eventlog.AnyVersion}
}

func (e *env) other(stream string) eventlog.NewEvent {
	e.n++
	return eventlog.NewEvent{Stream: stream, Type: typeOther, Data: seenData{N: e.n}, ExpectVersion: eventlog.AnyVersion}
}

func (e *env) latePoison(stream string) eventlog.NewEvent {
	e.n++
	return eventlog.NewEvent{Stream: stream, Type: typeSeen, Data: seenData{N: e.n, LatePoison: true}, ExpectVersion: eventlog.AnyVersion}
}

func (e *env) poison(stream string) eventlog.NewEvent {
	e.n++
	return eventlog.NewEvent{Stream: stream, Type: typeSeen, Data: seenData{N: e.n, Poison: true}, ExpectVersion: eventlog.AnyVersion}
}

// append appends events in one transaction, commits, and tells the notifier.
func (e *env) append(events ...eventlog.NewEvent) []eventlog.Event {
	e.t.Helper()
	out, err := appendTx(e.ctx, e.pool, e.log, events...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func appendTx(ctx context.Context, pool *pgxpool.Pool, log *eventlog.Log, events ...eventlog.NewEvent) ([]eventlog.Event, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	out, err := log.Append(ctx, tx, testMeta, events...)
	if err != nil {
		return nil, fmt.Errorf("append: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	log.Committed()
	return out, nil
}

// run runs r until the returned function (also called at cleanup) stops it.
func (e *env) run(r *projections.Runner) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("runner: %v", err)
				}
			case <-time.After(testTimeout):
				e.t.Errorf("runner did not stop")
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

func (e *env) waitFor(r *projections.Runner, pos eventlog.Position) {
	e.t.Helper()
	if err := r.WaitFor(e.ctx, pos, "seen"); err != nil {
		e.t.Fatalf("wait for %s: %v", pos, err)
	}
}

// waitLive appends probe events (handled ones) until one is applied by live delivery:
// the runner has then finished its batch catch-up, and every later event is delivered
// live. It returns the probes, which the caller counts among its events.
func (e *env) waitLive(r *projections.Runner) []eventlog.Event {
	e.t.Helper()
	var probes []eventlog.Event
	for {
		p := e.append(e.seen("test:probe"))
		probes = append(probes, p...)
		e.waitFor(r, p[0].Position)
		var path string
		err := e.pool.QueryRow(e.ctx, `SELECT path FROM seen_log WHERE (xid, off) = ($1::xid8, $2::bigint)`,
			p[0].Position.XID, p[0].Position.Offset).Scan(&path)
		if err != nil {
			e.t.Fatalf("probe at %s: %v", p[0].Position, err)
		}
		if path == "repeatable read" {
			return probes
		}
	}
}

type seenRow struct {
	Pos     eventlog.Position
	Stream  string
	Payload int
	Ver     int
	N       int
}

// dump returns the read model, in log order.
func (e *env) dump() []seenRow {
	e.t.Helper()
	rows, err := e.pool.Query(e.ctx, `SELECT xid, off, stream, n_payload, ver, n FROM seen ORDER BY xid, off`)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (seenRow, error) {
		var r seenRow
		err := row.Scan(&r.Pos.XID, &r.Pos.Offset, &r.Stream, &r.Payload, &r.Ver, &r.N)
		return r, err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

type application struct {
	Pos  eventlog.Position
	Ver  int
	Path string
}

// applications returns seen_log in the order the projector applied events.
func (e *env) applications() []application {
	e.t.Helper()
	rows, err := e.pool.Query(e.ctx, `SELECT xid, off, ver, path FROM seen_log ORDER BY seq`)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (application, error) {
		var a application
		err := row.Scan(&a.Pos.XID, &a.Pos.Offset, &a.Ver, &a.Path)
		return a, err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// checkExactlyOnce checks that the read model holds exactly the handled events among
// all, each applied once, by projector version ver.
func (e *env) checkExactlyOnce(all []eventlog.Event, ver int) {
	e.t.Helper()
	var want []eventlog.Event
	for _, ev := range all {
		if ev.Type == typeSeen && !strings.Contains(string(ev.Payload), `poison"`) {
			want = append(want, ev)
		}
	}
	slices.SortFunc(want, func(a, b eventlog.Event) int {
		if a.Position.Less(b.Position) {
			return -1
		}
		return 1
	})
	got := e.dump()
	if len(got) != len(want) {
		e.t.Errorf("read model has %d rows, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.Pos != w.Position || g.Stream != w.Stream || g.N != 1 || g.Ver != ver {
			e.t.Errorf("row %d: %+v; want event at %s of %s applied once by version %d", i, g, w.Position, w.Stream, ver)
		}
	}
}

// checkOrdered checks that applications of version ver happened in log order, each
// position once.
func checkOrdered(t *testing.T, apps []application, ver int) {
	t.Helper()
	var last eventlog.Position
	for _, a := range apps {
		if a.Ver != ver {
			continue
		}
		if !last.Less(a.Pos) {
			t.Errorf("version %d applied %s after %s", ver, a.Pos, last)
		}
		last = a.Pos
	}
}

// probes returns the probe events among all.
func probes(all []eventlog.Event) []eventlog.Event {
	var out []eventlog.Event
	for _, ev := range all {
		if ev.Stream == "test:probe" {
			out = append(out, ev)
		}
	}
	return out
}

func pathCounts(apps []application) map[string]int {
	out := map[string]int{}
	for _, a := range apps {
		out[a.Path]++
	}
	return out
}

func TestLiveDeliveryExactlyOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := projections.NewRunner(e.pool, e.notifier, e.logger, seenProjector{version: 1})
	e.run(r)
	all := e.waitLive(r)

	// Four writers, ten transactions each, mixing handled and ignored events; each
	// writer reads its own writes now and then.
	type result struct {
		events []eventlog.Event
		err    error
	}
	results := make(chan result, 4)
	for w := range 4 {
		go func() {
			var res result
			defer func() { results <- res }()
			for i := range 10 {
				var batch []eventlog.NewEvent
				for j := range 1 + (w+i)%4 {
					stream := fmt.Sprintf("test:w%d:%d", w, j)
					if (i+j)%3 == 2 {
						batch = append(batch, eventlog.NewEvent{Stream: stream, Type: typeOther, Data: seenData{N: -1}, ExpectVersion: eventlog.AnyVersion})
					} else {
						batch = append(batch, eventlog.NewEvent{Stream: stream, Type: typeSeen, Data: seenData{N: w*1000 + i*10 + j}, ExpectVersion: eventlog.AnyVersion})
					}
				}
				evs, err := appendTx(e.ctx, e.pool, e.log, batch...)
				if err != nil {
					res.err = err
					return
				}
				res.events = append(res.events, evs...)
				if i%3 == 0 {
					if err := r.WaitFor(e.ctx, evs[len(evs)-1].Position, "seen"); err != nil {
						res.err = err
						return
					}
				}
			}
		}()
	}
	for range 4 {
		res := <-results
		if res.err != nil {
			t.Fatal(res.err)
		}
		all = append(all, res.events...)
	}
	// A last transaction of ignored events only: waiting for it must still return.
	last := e.append(e.other("test:ignored"), e.other("test:ignored"))
	all = append(all, last...)
	e.waitFor(r, last[len(last)-1].Position)

	e.checkExactlyOnce(all, 1)
	apps := e.applications()
	checkOrdered(t, apps, 1)
	for _, a := range apps[len(probes(all)):] {
		if a.Path != "repeatable read" {
			t.Errorf("event at %s applied by the batch path (%s), want live delivery", a.Pos, a.Path)
		}
	}
	var cp eventlog.Position
	if err := e.pool.QueryRow(e.ctx, `SELECT transaction_id, "offset" FROM projection_checkpoints WHERE name = 'seen'`).
		Scan(&cp.XID, &cp.Offset); err != nil {
		t.Fatal(err)
	}
	if cp != last[len(last)-1].Position {
		t.Errorf("checkpoint at %s, want the last (ignored) event's %s", cp, last[len(last)-1].Position)
	}
}

func TestCatchUpThenLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var all []eventlog.Event
	for i := range 6 {
		var batch []eventlog.NewEvent
		for j := range 20 {
			if j%5 == 4 {
				batch = append(batch, e.other(fmt.Sprintf("test:s%d", j%3)))
			} else {
				batch = append(batch, e.seen(fmt.Sprintf("test:s%d", (i+j)%3)))
			}
		}
		all = append(all, e.append(batch...)...)
	}
	r := projections.NewRunner(e.pool, e.notifier, e.logger, seenProjector{version: 1})
	r.BatchSize = 25 // several catch-up transactions
	e.run(r)
	e.waitFor(r, all[len(all)-1].Position)
	all = append(all, e.waitLive(r)...)
	for i := range 5 {
		all = append(all, e.append(e.seen("test:live"), e.other("test:live"), e.seen(fmt.Sprintf("test:s%d", i%3)))...)
	}
	e.waitFor(r, all[len(all)-1].Position)

	e.checkExactlyOnce(all, 1)
	apps := e.applications()
	checkOrdered(t, apps, 1)
	counts := pathCounts(apps)
	if counts["repeatable read"] < 10 {
		t.Errorf("applications by path %v: want the last 10 events delivered live", counts)
	}
	t.Logf("applications by path: %v", counts)
}

func TestVersionChangeRebuilds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var all []eventlog.Event
	for i := range 4 {
		all = append(all, e.append(e.seen("test:a"), e.other("test:b"), e.seen(fmt.Sprintf("test:c%d", i)))...)
	}
	r1 := projections.NewRunner(e.pool, e.notifier, e.logger, seenProjector{version: 1})
	stop := e.run(r1)
	e.waitFor(r1, all[len(all)-1].Position)
	stop()
	e.checkExactlyOnce(all, 1)
	v1Apps := len(e.applications())

	all = append(all, e.append(e.seen("test:a"), e.seen("test:d"))...)
	r2 := projections.NewRunner(e.pool, e.notifier, e.logger, seenProjector{version: 2})
	stop = e.run(r2)
	e.waitFor(r2, all[len(all)-1].Position)
	stop()
	e.checkExactlyOnce(all, 2) // version 1's rows are gone: every row is version 2's, once
	apps := e.applications()
	checkOrdered(t, apps, 2)
	if got := len(apps) - v1Apps; got != len(e.dump()) {
		t.Errorf("version 2 applied %d events, want %d (all, from the start)", got, len(e.dump()))
	}
	var ver int
	if err := e.pool.QueryRow(e.ctx, `SELECT version FROM projection_checkpoints WHERE name = 'seen'`).Scan(&ver); err != nil || ver != 2 {
		t.Errorf("checkpoint version %d, %v; want 2", ver, err)
	}

	// Same version again: nothing is rebuilt or reapplied.
	all = append(all, e.append(e.seen("test:e"))...)
	r3 := projections.NewRunner(e.pool, e.notifier, e.logger, seenProjector{version: 2})
	e.run(r3)
	e.waitFor(r3, all[len(all)-1].Position)
	e.checkExactlyOnce(all, 2)
	if got := len(e.applications()) - len(apps); got != 1 {
		t.Errorf("restart with the same version applied %d events, want 1 (the new one)", got)
	}
}

func TestRebuild(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var all []eventlog.Event
	for i := range 5 {
		all = append(all, e.append(e.seen("test:a"), e.other("test:a"), e.seen(fmt.Sprintf("test:s%d", i)))...)
	}
	r := projections.NewRunner(e.pool, e.notifier, e.logger, seenProjector{version: 1})
	stop := e.run(r)
	e.waitFor(r, all[len(all)-1].Position)
	built := e.dump()

	// While the projector runs, a rebuild must refuse and change nothing.
	rb := projections.NewRunner(e.pool, nil, e.logger, seenProjector{version: 1})
	err := rb.Rebuild(e.ctx, e.pool, projections.RebuildOptions{})
	if err == nil || !strings.Contains(err.Error(), "running in another process") {
		t.Fatalf("rebuild while running: err = %v, want a refusal naming the running projector", err)
	}
	if !strings.Contains(err.Error(), "seen") {
		t.Errorf("rebuild refusal %q does not name the projector", err)
	}
	if got := e.dump(); !slices.Equal(got, built) {
		t.Fatalf("refused rebuild changed the read model")
	}
	stop()

	if err := rb.Rebuild(e.ctx, e.pool, projections.RebuildOptions{Projectors: []string{"nope"}}); err == nil {
		t.Errorf("rebuild of an unknown projector: no error")
	}

	var batches, events int
	err = rb.Rebuild(e.ctx, e.pool, projections.RebuildOptions{Progress: func(name string, n int) {
		if name != "seen" {
			t.Errorf("progress for %q", name)
		}
		batches++
		events += n
	}})
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if got := e.dump(); !slices.Equal(got, built) {
		t.Fatalf("rebuilt read model differs:\n got  %v\n want %v", got, built)
	}
	if events != len(all) || batches == 0 {
		t.Errorf("progress reported %d events in %d batches, want %d", events, batches, len(all))
	}

	// A rebuild up to a point in the log builds the read model as it was then.
	mid := all[len(all)/2].Position
	if err := rb.Rebuild(e.ctx, e.pool, projections.RebuildOptions{Until: eventlog.Bound{Position: &mid}}); err != nil {
		t.Fatalf("rebuild until %s: %v", mid, err)
	}
	var want []seenRow
	for _, row := range built {
		if !mid.Less(row.Pos) {
			want = append(want, row)
		}
	}
	if got := e.dump(); !slices.Equal(got, want) {
		t.Fatalf("rebuild until %s:\n got  %v\n want %v", mid, got, want)
	}

	// And the runner, started again, continues from there to the same result.
	r2 := projections.NewRunner(e.pool, e.notifier, e.logger, seenProjector{version: 1})
	e.run(r2)
	e.waitFor(r2, all[len(all)-1].Position)
	if got := e.dump(); !slices.Equal(got, built) {
		t.Fatalf("after a partial rebuild and a restart:\n got  %v\n want %v", got, built)
	}
}

func TestPoisonEventSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Before the runner starts: the batch catch-up meets the first poison event.
	all := e.append(e.seen("test:a"), e.poison("test:a"), e.seen("test:b"), e.other("test:b"))
	all = append(all, e.append(e.seen("test:a"))...)
	r := projections.NewRunner(e.pool, e.notifier, e.logger, seenProjector{version: 1})
	stop := e.run(r)
	e.waitFor(r, all[len(all)-1].Position)
	all = append(all, e.waitLive(r)...)
	// Live: the subscriber meets the second.
	all = append(all, e.append(e.seen("test:c"))...)
	all = append(all, e.append(e.poison("test:c"))...)
	all = append(all, e.append(e.seen("test:c"), e.seen("test:d"))...)
	// And one that fails only when its deferred batch reaches the database, after the
	// runner is back to optimistic polls.
	e.waitFor(r, all[len(all)-1].Position)
	all = append(all, e.append(e.seen("test:e"))...)
	e.waitFor(r, all[len(all)-1].Position)
	all = append(all, e.append(e.seen("test:e"), e.latePoison("test:e"))...)
	all = append(all, e.append(e.seen("test:f"))...)
	e.waitFor(r, all[len(all)-1].Position)
	stop()

	e.checkExactlyOnce(all, 1)
	var poisoned []eventlog.Position
	for _, ev := range all {
		if strings.Contains(string(ev.Payload), `poison"`) {
			poisoned = append(poisoned, ev.Position)
		}
	}
	checkFailures := func() {
		t.Helper()
		rows, err := e.pool.Query(e.ctx, `SELECT transaction_id, "offset", event_type, error FROM projection_failures
			WHERE name = 'seen' ORDER BY transaction_id, "offset"`)
		if err != nil {
			t.Fatal(err)
		}
		type failure struct {
			pos   eventlog.Position
			typ   string
			cause string
		}
		got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (failure, error) {
			var f failure
			err := row.Scan(&f.pos.XID, &f.pos.Offset, &f.typ, &f.cause)
			return f, err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(poisoned) {
			t.Fatalf("failures %+v; want one at each of %v", got, poisoned)
		}
		for i, f := range got {
			if f.pos != poisoned[i] || f.typ != typeSeen || !strings.Contains(f.cause, "poison event") {
				t.Errorf("failure %+v; want %s of type %s with the projector's error", f, poisoned[i], typeSeen)
			}
		}
	}
	checkFailures()

	// A rebuild (the batch path for every event) skips and records the same ones.
	built := e.dump()
	if err := projections.NewRunner(e.pool, nil, e.logger, seenProjector{version: 1}).
		Rebuild(e.ctx, e.pool, projections.RebuildOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := e.dump(); !slices.Equal(got, built) {
		t.Fatalf("rebuild differs:\n got  %v\n want %v", got, built)
	}
	checkFailures()
}

// randomAccountEvents is a random but reproducible history of a few users: registrations
// (some repeated, some taking another user's localpart, which the projector fails on),
// logins with and without display names and expiry, token hashes that sometimes repeat
// across devices and users, device logouts and logouts everywhere, in an order that
// makes the result depend on it.
func randomAccountEvents(n int) []eventlog.NewEvent {
	rng := rand.New(rand.NewPCG(7, 11))
	names := []*string{nil, nil, ptr("Phone"), ptr("Laptop")}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	out := make([]eventlog.NewEvent, 0, n)
	hashes := 0
	for len(out) < n {
		u := rng.IntN(30)
		user := fmt.Sprintf("@u%d:spelt.test", u)
		dev := fmt.Sprintf("D%d", rng.IntN(4))
		var typ string
		var data any
		switch k := rng.IntN(20); {
		case k < 3:
			lp := fmt.Sprintf("u%d", u)
			if k == 0 {
				lp = fmt.Sprintf("u%d", rng.IntN(30)) // may be another user's: fails
			}
			typ, data = eventlog.TypeAccountRegistered, eventlog.AccountRegistered{UserID: user, Localpart: lp, Admin: rng.IntN(2) == 0}
		case k < 15:
			hash := hashes
			if rng.IntN(15) == 0 && hashes > 0 {
				hash = rng.IntN(hashes) // an earlier login's token hash
			} else {
				hashes++
			}
			var exp *time.Time
			if rng.IntN(3) == 0 {
				t := base.Add(time.Duration(rng.IntN(1000)) * time.Hour)
				exp = &t
			}
			typ, data = eventlog.TypeDeviceLoggedIn, eventlog.DeviceLoggedIn{UserID: user, DeviceID: dev,
				DisplayName: names[rng.IntN(len(names))], TokenHash: tokenHash(fmt.Sprint(hash)), ExpiresAt: exp}
		case k < 18:
			typ, data = eventlog.TypeDeviceLoggedOut, eventlog.DeviceLoggedOut{UserID: user, DeviceID: dev}
		default:
			typ, data = eventlog.TypeAllDevicesLoggedOut, eventlog.AllDevicesLoggedOut{UserID: user}
		}
		out = append(out, eventlog.NewEvent{Stream: eventlog.UserStream(user), Type: typ, Data: data, ExpectVersion: eventlog.AnyVersion})
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// dumpAccounts returns the accounts read model and the projector's failures as text.
// Times recorded by the log are shown as the offset of the first event recorded then,
// and failures by offset, so that dumps of two runs compare.
func (e *env) dumpAccounts() string {
	e.t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT row(user_id, localpart, is_guest, is_admin, deactivated, at.o)::text FROM accounts a,
			LATERAL (SELECT min("offset") o FROM eventlog.events WHERE recorded_at = a.created_at) at ORDER BY user_id`,
		`SELECT row(user_id, device_id, display_name, at.o)::text FROM devices d,
			LATERAL (SELECT min("offset") o FROM eventlog.events WHERE recorded_at = d.created_at) at ORDER BY user_id, device_id`,
		`SELECT row(token_hash, user_id, device_id, at.o, expires_at)::text FROM access_tokens t,
			LATERAL (SELECT min("offset") o FROM eventlog.events WHERE recorded_at = t.created_at) at ORDER BY token_hash`,
		`SELECT "offset" || ' ' || event_type FROM projection_failures WHERE name = 'accounts' ORDER BY transaction_id, "offset"`,
	} {
		rows, err := e.pool.Query(e.ctx, q)
		if err != nil {
			e.t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			e.t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s\n%s\n\n", q, strings.Join(lines, "\n"))
	}
	return b.String()
}

// TestAccountsBatchSizes rebuilds the accounts read model from a random history, up to
// its middle and to its end, with batches of 1 (every event applied on its own), 7 and
// 2,000 events: the rows and the failures must be the same.
func TestAccountsBatchSizes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	events := randomAccountEvents(2000)
	rng := rand.New(rand.NewPCG(3, 5))
	var all []eventlog.Event
	for i := 0; i < len(events); {
		k := min(1+rng.IntN(40), len(events)-i)
		all = append(all, e.append(events[i:i+k]...)...)
		i += k
	}
	for _, until := range []eventlog.Position{all[len(all)/2].Position, all[len(all)-1].Position} {
		var want string
		for _, size := range []int{1, 7, 2000} {
			r := projections.NewRunner(e.pool, nil, e.logger, projections.Accounts{})
			r.BatchSize = size
			if err := r.Rebuild(e.ctx, e.pool, projections.RebuildOptions{Until: eventlog.Bound{Position: &until}}); err != nil {
				t.Fatalf("rebuild with batches of %d: %v", size, err)
			}
			got := e.dumpAccounts()
			if want == "" {
				want = got
				if f := os.Getenv("SPELT_DUMP_ACCOUNTS"); f != "" {
					_ = os.WriteFile(f+"."+strconv.Itoa(int(until.Offset)), []byte(got), 0o644)
				}
				continue
			}
			if got != want {
				t.Errorf("up to %s, batches of %d give another read model than batches of 1:\n%s", until, size, diffLines(want, got))
			}
		}
	}
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, x, y))
			if len(out) == 10 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
