package projections

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/projdb"
)

// Runner runs projectors: each catches up in batches, then follows the log live through
// its own Watermill subscriber. One process at a time runs a given projector, under a
// PostgreSQL advisory lock named after it.
type Runner struct {
	pool       *pgxpool.Pool
	notifier   *eventlog.Notifier
	logger     *slog.Logger
	projectors []Projector
	states     map[string]*state
	q          *projdb.Queries
	announce   *announcer
	release    map[string]chan struct{}
	// kick wakes a projector's live subscriber; running tells whether this process
	// runs it now.
	kick    map[string]chan struct{}
	running map[string]*atomic.Bool
	// careful is set when a live batch failed: the next is applied in savepoints.
	careful map[string]*atomic.Bool
	// hub wakes long-polls by key; wakers are the projectors that give keys, and
	// pending their live batches' keys until the batch commits.
	hub     *hub
	wakers  map[string]Waker
	pending map[string]*pendingKeys
	// memories are the live memories of the projectors this process runs.
	memories map[string]*liveMemory

	// BatchSize is how many events one catch-up transaction applies.
	BatchSize int
	// RebuildBatchSize is the same for rebuilds, where larger batches pay (tables start
	// empty, nothing waits on a batch).
	RebuildBatchSize int
	// IdlePoll is how long a live subscriber waits for a wake-up before polling anyway
	// (a NOTIFY from another process can be missed while reconnecting).
	IdlePoll time.Duration
}

// NewRunner returns a Runner for projectors. notifier wakes live subscribers after
// appends; it may be nil for rebuilds.
func NewRunner(pool *pgxpool.Pool, notifier *eventlog.Notifier, logger *slog.Logger, projectors ...Projector) *Runner {
	r := &Runner{
		pool:             pool,
		notifier:         notifier,
		logger:           logger,
		projectors:       projectors,
		states:           make(map[string]*state, len(projectors)),
		q:                projdb.New(),
		announce:         newAnnouncer(pool),
		release:          make(map[string]chan struct{}, len(projectors)),
		kick:             make(map[string]chan struct{}, len(projectors)),
		running:          make(map[string]*atomic.Bool, len(projectors)),
		careful:          make(map[string]*atomic.Bool, len(projectors)),
		hub:              newHub(),
		wakers:           map[string]Waker{},
		pending:          map[string]*pendingKeys{},
		memories:         map[string]*liveMemory{},
		BatchSize:        2000,
		RebuildBatchSize: 5000,
		IdlePoll:         500 * time.Millisecond,
	}
	if notifier != nil {
		r.announce.peers = notifier.HasPeers
	}
	for _, p := range projectors {
		r.states[p.Name()] = newState()
		r.release[p.Name()] = make(chan struct{}, 1)
		r.kick[p.Name()] = make(chan struct{}, 1)
		r.running[p.Name()] = new(atomic.Bool)
		r.careful[p.Name()] = new(atomic.Bool)
		r.pending[p.Name()] = &pendingKeys{}
		r.memories[p.Name()] = &liveMemory{}
		if w, ok := p.(Waker); ok {
			r.wakers[p.Name()] = w
		}
	}
	return r
}

// Projectors returns the runner's projectors.
func (r *Runner) Projectors() []Projector { return r.projectors }

// Run runs every projector until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	locks, err := newLockConn(ctx, r.pool)
	if err != nil {
		return err
	}
	defer locks.close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.announce.run(ctx, r.logger)
	}()
	go func() {
		defer wg.Done()
		r.listen(ctx)
	}()
	errs := make(chan error, len(r.projectors))
	for _, p := range r.projectors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.runOne(ctx, locks, p); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("projector %s: %w", p.Name(), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

func (r *Runner) runOne(ctx context.Context, locks *lockConn, p Projector) error {
	log := r.logger.With(slog.String("projector", p.Name()))
	release := r.release[p.Name()]
	for ctx.Err() == nil {
		if err := r.acquire(ctx, locks, p, log); err != nil || ctx.Err() != nil {
			return err
		}
		// A release request from before we held the lock is stale.
		select {
		case <-release:
		default:
		}
		if err := r.prepare(ctx, r.pool, p); err != nil {
			return err
		}
		// Another process may have run the projector meanwhile.
		mem := r.memories[p.Name()]
		*mem = liveMemory{}
		start := time.Now()
		n, err := r.catchUp(withLiveMemory(ctx, mem), r.pool, p, eventlog.Bound{}, eventlog.Position{}, false, nil)
		if err != nil {
			return err
		}
		if n > 0 {
			log.InfoContext(ctx, "projector caught up", slog.Int64("events", n), slog.Duration("took", time.Since(start)))
		}
		fctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-release:
				cancel()
			case <-fctx.Done():
			}
		}()
		err = r.follow(fctx, p, log)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		// Released for an online rebuild in another process (spelt replay): give the
		// lock up, and take it back when the rebuild has swapped its tables in.
		if err := locks.unlock(ctx, lockID(p.Name())); err != nil {
			return err
		}
		log.InfoContext(ctx, "projector handed over for a rebuild")
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	return nil
}

// acquire takes p's lock, waiting while another process holds it.
func (r *Runner) acquire(ctx context.Context, locks *lockConn, p Projector, log *slog.Logger) error {
	logged := false
	for {
		ok, err := locks.try(ctx, lockID(p.Name()))
		if err != nil || ok {
			return err
		}
		if !logged {
			log.InfoContext(ctx, "projector runs in another process; waiting for its lock")
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

// prepare makes sure p has a checkpoint and rebuilds it from the start if its stored
// version is not the code's.
func (r *Runner) prepare(ctx context.Context, db *pgxpool.Pool, p Projector) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if err := r.q.CheckpointEnsure(ctx, tx, ensureParams(p)); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		cp, err := r.q.CheckpointGet(ctx, tx, p.Name())
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if int(cp.Version) != p.Version() {
			r.logger.InfoContext(ctx, "projector version changed; rebuilding",
				slog.String("projector", p.Name()), slog.Int("from", int(cp.Version)), slog.Int("to", p.Version()))
			if err := reset(ctx, tx, p); err != nil {
				return err
			}
			cp = projdb.ProjectionCheckpoint{}
		}
		r.moved(p.Name(), eventlog.Position{XID: cp.TransactionID, Offset: cp.Offset}, nil, false)
		return nil
	})
}

// reset empties p's tables and moves its checkpoint back to the start.
func reset(ctx context.Context, tx pgx.Tx, p Projector) error {
	for _, t := range p.Tables() {
		if _, err := tx.Exec(ctx, "TRUNCATE "+pgx.Identifier{t}.Sanitize()); err != nil {
			return fmt.Errorf("reset %s: %w", t, err)
		}
	}
	if _, err := tx.Exec(ctx, "DELETE FROM projection_failures WHERE name = $1", p.Name()); err != nil {
		return fmt.Errorf("reset failures: %w", err)
	}
	if err := projdb.New().CheckpointReset(ctx, tx, projdb.CheckpointResetParams{Name: p.Name(), Version: int32(p.Version())}); err != nil {
		return fmt.Errorf("reset checkpoint: %w", err)
	}
	return nil
}

// catchUp applies batches of events until it has passed target, or, when target is the
// zero Position, until a read finds nothing (live delivery goes on from there). It
// returns how many events it read. A reader goroutine reads the next batch on its own
// connection while the current one is applied, so that decoding and applying overlap.
// rebuild reads bigger batches (a rebuild has no live readers waiting). Every batch
// commits without waiting for the WAL flush (asyncBegin). progress, if not nil, gets each batch's size.
func (r *Runner) catchUp(ctx context.Context, db *pgxpool.Pool, p Projector, until eventlog.Bound,
	target eventlog.Position, rebuild bool, progress func(int)) (int64, error) {
	cp, err := r.q.CheckpointGet(ctx, db, p.Name())
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	start := eventlog.Position{XID: cp.TransactionID, Offset: cp.Offset}
	if !target.IsZero() && !start.Less(target) {
		return 0, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []eventlog.Event, 1)
	readErr := make(chan error, 1)
	limit := r.BatchSize
	if rebuild {
		limit = r.RebuildBatchSize
	}
	go func() {
		defer close(batches)
		after := start
		for {
			events, err := eventlog.Read(ctx, db, after, limit, until)
			if err != nil {
				readErr <- err
				return
			}
			if len(events) == 0 {
				if target.IsZero() || !after.Less(target) {
					return
				}
				// The rest is behind a transaction still running somewhere: readers
				// never pass the oldest one. Look again shortly.
				select {
				case <-ctx.Done():
					return
				case <-time.After(2 * time.Millisecond):
				}
				continue
			}
			select {
			case batches <- events:
			case <-ctx.Done():
				return
			}
			after = events[len(events)-1].Position
		}
	}()
	var total int64
	for events := range batches {
		if err := r.applyBatch(ctx, db, p, events); err != nil {
			return total, err
		}
		last := events[len(events)-1].Position
		total += int64(len(events))
		r.moved(p.Name(), last, nil, false)
		r.announce.moved(p.Name())
		if progress != nil {
			progress(len(events))
		}
	}
	select {
	case err := <-readErr:
		return total, err
	default:
	}
	return total, ctx.Err()
}

// applyBatch applies events (read after the projector's checkpoint) and moves the
// checkpoint past them, in one transaction.
func (r *Runner) applyBatch(ctx context.Context, db *pgxpool.Pool, p Projector, events []eventlog.Event) error {
	tx, err := pgbatch.BeginLazy(ctx, db, asyncBegin("")...)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	handled := events[:0:0]
	for _, e := range events {
		if p.Handles(e.Type) {
			handled = append(handled, e)
		}
	}
	memBegin(ctx)
	applied, err := r.applyEvents(ctx, tx, p, handled)
	if err != nil {
		return err
	}
	last := events[len(events)-1].Position
	n, err := r.q.CheckpointAdvance(ctx, tx, projdb.CheckpointAdvanceParams{
		Name: p.Name(), TransactionID: last.XID, Offset: last.Offset, N: int64(applied),
	})
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("checkpoint of %s moved past %s meanwhile", p.Name(), last)
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	memCommitted(ctx)
	return nil
}

// applyEvents applies events in one savepoint; if that fails it applies them one by one
// to find the failing ones, records each in projection_failures and skips it. The same
// events fail the same way on every replay, so read models stay reproducible.
func (r *Runner) applyEvents(ctx context.Context, tx pgx.Tx, p Projector, events []eventlog.Event) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error { return p.Apply(ctx, sp, events) })
	if err == nil {
		return len(events), nil
	}
	disableRebuildMemory(ctx)
	memForget(ctx)
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	applied := 0
	for _, e := range events {
		err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error { return p.Apply(ctx, sp, []eventlog.Event{e}) })
		if err == nil {
			applied++
			continue
		}
		memForget(ctx)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if err := r.poison(ctx, tx, p, e, err); err != nil {
			return 0, err
		}
	}
	return applied, nil
}

func (r *Runner) poison(ctx context.Context, tx pgx.Tx, p Projector, e eventlog.Event, cause error) error {
	r.logger.ErrorContext(ctx, "projector skipped an event it cannot apply",
		slog.String("projector", p.Name()), slog.String("position", e.Position.String()),
		slog.String("type", e.Type), slog.Any("err", cause))
	return r.q.FailureRecord(ctx, tx, projdb.FailureRecordParams{
		Name: p.Name(), TransactionID: e.Position.XID, Offset: e.Position.Offset,
		EventType: e.Type, Error: cause.Error(),
	})
}

// follow delivers new events to p through a Watermill SQL subscriber until ctx ends.
func (r *Runner) follow(ctx context.Context, p Projector, log *slog.Logger) error {
	// Only appends of events p handles wake it: the others it reads at its next
	// wake-up, or when a request waits for it (WaitFor kicks it), or at its idle poll.
	var wake <-chan struct{}
	if r.notifier != nil {
		ch, cancel := r.notifier.Subscribe(p.Handles)
		defer cancel()
		wake = ch
	}
	r.running[p.Name()].Store(true)
	defer r.running[p.Name()].Store(false)
	ackDeadline := 10 * time.Second
	pending := r.pending[p.Name()]
	committed := func(pos eventlog.Position) {
		keys, known := r.wakeKeys(ctx, p.Name(), pending.take())
		r.moved(p.Name(), pos, keys, known)
		r.announce.moved(p.Name())
	}
	backoff := &wakeBackoff{wake: wake, kick: r.kick[p.Name()], done: ctx.Done(), idle: r.IdlePoll, retry: time.Second, logger: log, batch: liveBatchSize}
	sub, err := wsql.NewSubscriber(&beginner{pool: r.pool, onCommit: committed, mem: r.memories[p.Name()]}, wsql.SubscriberConfig{
		ConsumerGroup:  p.Name(),
		SchemaAdapter:  eventlog.SchemaAdapter{BatchSize: liveBatchSize, Skip: skipped(p), Seen: &backoff.seen},
		OffsetsAdapter: checkpointOffsets{},
		BackoffManager: backoff,
		AckDeadline:    &ackDeadline,
	}, watermill.NewSlogLogger(log))
	if err != nil {
		return err
	}
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, eventlog.Topic)
	if err != nil {
		return err
	}
	for msg := range msgs {
		backoff.polled.Add(1)
		if err := r.handle(msg, p); err != nil {
			if ctx.Err() == nil {
				log.ErrorContext(ctx, "projector failed; retrying", slog.Any("err", err))
			}
			msg.Nack()
			continue
		}
		msg.Ack()
	}
	return nil
}

// handle takes one live event in the subscriber's transaction. Events p handles are not
// applied at once but collected: the subscriber hands over the rows of one poll one at
// a time, and they are applied together, in one call of Apply, just before the poll's
// checkpoint moves (hookTx.flush), so that a burst of events costs one batch.
func (r *Runner) handle(msg *message.Message, p Projector) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	ctx := msg.Context()
	wtx, ok := wsql.TxFromContext(ctx)
	if !ok {
		return errors.New("message without transaction")
	}
	htx, ok := wtx.(*hookTx)
	if !ok {
		return fmt.Errorf("unexpected transaction type %T", wtx)
	}
	e, err := eventlog.EventFromMessage(msg)
	if err != nil {
		return err
	}
	htx.applied = e.Position
	if !p.Handles(e.Type) {
		// Watermill's ack query moves the checkpoint past it with the rest of the poll.
		return nil
	}
	if htx.flush == nil {
		htx.flush = func(ctx context.Context, t *hookTx, events []eventlog.Event) error {
			return r.applyLive(withLiveMemory(ctx, r.memories[p.Name()]), t, p, events)
		}
	}
	htx.pending = append(htx.pending, e)
	return nil
}

// applyLive applies the events of one poll and moves the checkpoint past them in the
// poll's transaction: if this fails, the poll is rolled back and the same events are
// delivered again. Events the checkpoint already passed were applied before (delivery
// is at least once) and are skipped.
func (r *Runner) applyLive(ctx context.Context, t *hookTx, p Projector, events []eventlog.Event) error {
	err := r.applyLiveBatch(ctx, t, p, events)
	if _, ok := r.wakers[p.Name()]; ok && err == nil {
		// What the batch concerns is worked out once it commits (WakeKeys may read, and
		// must not hold a second connection while this transaction holds one).
		r.pending[p.Name()].set(events)
	}
	return err
}

func (r *Runner) applyLiveBatch(ctx context.Context, t *hookTx, p Projector, events []eventlog.Event) error {
	last := events[len(events)-1].Position
	advance := projdb.CheckpointAdvanceParams{Name: p.Name(), TransactionID: last.XID, Offset: last.Offset, N: int64(len(events))}
	careful := r.careful[p.Name()]
	memBegin(ctx)
	if !careful.Load() {
		// Optimistically, the writes go with the poll's ack and COMMIT: the checkpoint
		// moves, and the projector's batches are deferred (two round trips fewer per
		// poll, and no savepoint). The poll's snapshot (repeatable read) read the
		// checkpoint, and only this process moves it, so the events are all new; a
		// concurrent move would fail the update. If the batch fails, here or at the
		// commit, the poll's transaction is lost and the same events come again, and
		// then they go through applyEvents, which isolates an event that cannot be
		// applied. The live memory, left pending, is dropped by the next memBegin.
		t.onFail = func() {
			careful.Store(true)
			select { // poll again at once, carefully
			case r.kick[p.Name()] <- struct{}{}:
			default:
			}
		}
		tx := &pgbatch.Deferred{Tx: t.tx, Tail: &t.tail}
		var b pgbatch.DB
		if _, err := r.q.CheckpointAdvance(ctx, &b, advance); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if err := b.Send(ctx, tx); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if err := p.Apply(ctx, tx, events); err != nil {
			careful.Store(true)
			return fmt.Errorf("apply (the poll is retried carefully): %w", err)
		}
		return nil
	}
	tx := t.tx
	n, err := r.q.CheckpointAdvance(ctx, tx, advance)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if n == 0 {
		return nil
	}
	careful.Store(false)
	applied, err := r.applyEvents(ctx, tx, p, events)
	for range len(events) - applied {
		if err == nil {
			err = r.q.CheckpointUncount(ctx, tx, p.Name())
		}
	}
	return err
}

// WaitFor blocks until every named projector (all when none are named) has applied pos,
// or ctx ends. It is how a request reads its own writes. A caller names the projectors
// that handle what it wrote, which the append has woken; waiting for all, it also waits
// for projectors that appends of other types do not wake, so those are woken here.
func (r *Runner) WaitFor(ctx context.Context, pos eventlog.Position, names ...string) error {
	kick := len(names) == 0
	if len(names) == 0 {
		for _, p := range r.projectors {
			names = append(names, p.Name())
		}
	}
	for _, name := range names {
		st, ok := r.states[name]
		if !ok {
			return fmt.Errorf("wait for unknown projector %q", name)
		}
		kicked := !kick
		for {
			cur, changed := st.get()
			if !cur.Less(pos) {
				break
			}
			if !kicked {
				// Appends of events it does not handle do not wake a projector: wake
				// it now, here or in the process that runs it.
				kicked = true
				r.kickProjector(ctx, name)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for %s to reach %s: %w", name, pos, ctx.Err())
			case <-changed:
			case <-time.After(time.Second):
				// The projector may run in another process, whose announcement we may
				// have missed (reconnecting): read its checkpoint.
				cp, err := r.q.CheckpointGet(ctx, r.pool, name)
				if err == nil {
					r.moved(name, eventlog.Position{XID: cp.TransactionID, Offset: cp.Offset}, nil, false)
				}
			}
		}
	}
	return nil
}

// kickProjector wakes the live subscriber of projector name: at once when this process
// runs it, else with a NOTIFY to the process that does.
func (r *Runner) kickProjector(ctx context.Context, name string) {
	if r.running[name].Load() {
		select {
		case r.kick[name] <- struct{}{}:
		default:
		}
		return
	}
	if _, err := r.pool.Exec(ctx, "SELECT pg_notify($1, $2)", controlChannel, "wake "+name); err != nil && ctx.Err() == nil {
		r.logger.WarnContext(ctx, "waking a projector in another process failed", slog.String("projector", name), slog.Any("err", err))
	}
}

// Moved returns a channel that is closed when projector name next moves on (nil for an
// unknown projector).
func (r *Runner) Moved(name string) <-chan struct{} {
	st, ok := r.states[name]
	if !ok {
		return nil
	}
	_, ch := st.get()
	return ch
}

// OnAdvance registers fn to be called whenever this process learns that projector name
// moved on (it applied events here, or another process announced it did); for caches
// of its read model. Call it before Run.
func (r *Runner) OnAdvance(name string, fn func()) {
	if st, ok := r.states[name]; ok {
		st.mu.Lock()
		st.hooks = append(st.hooks, fn)
		st.mu.Unlock()
	}
}

// state is what this process knows of a projector's checkpoint.
type state struct {
	mu      sync.Mutex
	pos     eventlog.Position
	changed chan struct{}
	hooks   []func()
}

func newState() *state { return &state{changed: make(chan struct{})} }

func (s *state) get() (eventlog.Position, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos, s.changed
}

func (s *state) advance(p eventlog.Position) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pos.Less(p) || p.IsZero() {
		// The hooks run before any waiter learns of the move: a request that waited
		// for it must not find a cache from before it.
		for _, fn := range s.hooks {
			fn()
		}
		s.pos = p
		close(s.changed)
		s.changed = make(chan struct{})
		return true
	}
	return false
}

func lockID(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("spelt.projector." + name))
	return int64(h.Sum64())
}

// lockConn holds session advisory locks on one connection kept out of the pool for the
// runner's lifetime: if the process dies, PostgreSQL releases them with the connection.
type lockConn struct {
	mu   sync.Mutex
	conn *pgx.Conn
}

func newLockConn(ctx context.Context, pool *pgxpool.Pool) (*lockConn, error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &lockConn{conn: c.Hijack()}, nil
}

func (l *lockConn) try(ctx context.Context, id int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ok bool
	err := l.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", id).Scan(&ok)
	return ok, err
}

func (l *lockConn) unlock(ctx context.Context, id int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", id)
	return err
}

func (l *lockConn) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Unlock before closing: the server drops a closed session's locks only when its
	// backend exits, after Close has returned, and a Rebuild or Run started right after
	// this one must find them free.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = l.conn.Exec(ctx, "SELECT pg_advisory_unlock_all()")
	l.conn.Close(ctx)
}

// wakeBackoff is the live subscriber's BackoffManager. When a poll finds nothing it
// blocks until the notifier says something was appended (or IdlePoll passes) instead of
// sleeping a fixed poll interval. After a wake-up that still finds nothing, the new
// event is behind a transaction that is still running (readers never pass the oldest
// running transaction, in any database of the cluster), so it polls a few more times at
// short, growing intervals.
// wakeRetries is how many times a subscriber polls again after a wake-up that found
// nothing.
const wakeRetries = 9

// liveBatchSize is how many rows of the log a live subscriber's poll reads at most
// (skipped ones included): a projector of a few types that polls after a while skips
// what came meanwhile in one poll rather than in many.
const liveBatchSize = 1000

type wakeBackoff struct {
	wake   <-chan struct{}
	kick   <-chan struct{}
	done   <-chan struct{}
	idle   time.Duration
	retry  time.Duration
	logger *slog.Logger
	tries  int
	// polled counts the messages of the current poll, seen the rows it read (skipped
	// ones too); batch is the poll's size limit.
	polled atomic.Int64
	seen   atomic.Int64
	batch  int64
}

func (b *wakeBackoff) HandleError(_ watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	select {
	case <-b.done:
		return 0
	default:
	}
	if err != nil {
		b.logger.Error("projector poll failed", slog.Any("err", err))
		return b.retry
	}
	if !noMsg {
		b.tries = 0
		if b.polled.Swap(0) >= b.batch || b.seen.Swap(0) >= b.batch {
			return 0 // a full poll: more are waiting
		}
		// The poll took everything there was. Whatever was appended since woke the
		// notifier's channel, so wait for it rather than poll again for nothing.
		return b.waitWake()
	}
	b.polled.Store(0)
	b.seen.Store(0)
	if b.tries > 0 {
		// 0.5, 1, 2 ... 128 ms: about a quarter of a second in all, then idle. A wake-up
		// meanwhile (another append) polls at once.
		b.tries--
		return b.wait(500 * time.Microsecond << (wakeRetries - 1 - b.tries))
	}
	return b.waitWake()
}

// waitWake blocks until the notifier wakes the subscriber, IdlePoll passes or the
// subscriber stops.
func (b *wakeBackoff) waitWake() time.Duration { return b.wait(b.idle) }

// wait blocks until the notifier wakes the subscriber, d passes or the subscriber
// stops.
func (b *wakeBackoff) wait(d time.Duration) time.Duration {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-b.wake:
		b.tries = wakeRetries
	case <-b.kick:
		b.tries = wakeRetries
	case <-t.C:
	case <-b.done:
	}
	return 0
}

// skipped lists the event types p does not handle, of those the log knows: its live
// polls skip them in the database. Types the log does not list are delivered, and
// Handles sorts them out.
func skipped(p Projector) []string {
	var out []string
	for _, t := range eventlog.Types {
		if !p.Handles(t) {
			out = append(out, t)
		}
	}
	return out
}

func ensureParams(p Projector) projdb.CheckpointEnsureParams {
	return projdb.CheckpointEnsureParams{Name: p.Name(), Version: int32(p.Version())}
}
