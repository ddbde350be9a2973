package projections

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/eventlog"
)

// projectedChannel is the PostgreSQL NOTIFY channel on which a process says which of
// its projectors moved, so that requests waiting in other processes (WaitFor) learn it
// at once instead of at their next checkpoint poll.
const projectedChannel = "spelt_projected"

// controlChannel carries requests to the processes running projectors: "release NAME"
// asks the one running NAME to give up its lock (an online rebuild takes it over),
// "wake NAME" to poll the log now (a request in another process waits for NAME).
const controlChannel = "spelt_control"

// announcer sends one NOTIFY per burst of commits, naming the projectors that moved;
// while one is being sent, the next burst accumulates.
type announcer struct {
	pool     *pgxpool.Pool
	instance string
	signal   chan struct{}
	// peers reports whether another process may be listening; nil: assume so.
	peers func() bool

	mu      sync.Mutex
	pending map[string]bool
}

// announceGather is how long the announcer waits for more projectors to move before
// it announces.
const announceGather = time.Millisecond

func newAnnouncer(pool *pgxpool.Pool) *announcer {
	return &announcer{pool: pool, instance: uuid.NewString(), signal: make(chan struct{}, 1), pending: map[string]bool{}}
}

func (a *announcer) moved(name string) {
	a.mu.Lock()
	a.pending[name] = true
	a.mu.Unlock()
	select {
	case a.signal <- struct{}{}:
	default:
	}
}

func (a *announcer) run(ctx context.Context, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.signal:
		}
		// Gather the burst: one append moves every projector within a millisecond or
		// so, and one NOTIFY can say so for all of them.
		select {
		case <-ctx.Done():
			return
		case <-time.After(announceGather):
		}
		a.mu.Lock()
		names := make([]string, 0, len(a.pending))
		for n := range a.pending {
			names = append(names, n)
		}
		clear(a.pending)
		a.mu.Unlock()
		if a.peers != nil && !a.peers() {
			continue // no other process waits on these projectors
		}
		payload := a.instance + " " + strings.Join(names, ",")
		if _, err := a.pool.Exec(ctx, "SELECT pg_notify($1, $2)", projectedChannel, payload); err != nil && ctx.Err() == nil {
			logger.WarnContext(ctx, "announcing projector progress failed", slog.Any("err", err))
		}
	}
}

// listen applies other processes' announcements: it reads the named projectors'
// checkpoints and wakes the requests waiting for them.
func (r *Runner) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := r.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		r.logger.WarnContext(ctx, "listening for projector progress failed; retrying", slog.Any("err", err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (r *Runner) listenOnce(ctx context.Context) error {
	pc, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range []string{projectedChannel, controlChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return err
		}
	}
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if note.Channel == controlChannel {
			if name, ok := strings.CutPrefix(note.Payload, "release "); ok {
				if ch, ok := r.release[name]; ok {
					select {
					case ch <- struct{}{}:
					default:
					}
				}
			}
			if name, ok := strings.CutPrefix(note.Payload, "wake "); ok {
				if ch, ok := r.kick[name]; ok && r.running[name].Load() {
					select {
					case ch <- struct{}{}:
					default:
					}
				}
			}
			continue
		}
		instance, names, _ := strings.Cut(note.Payload, " ")
		if instance == r.announce.instance {
			continue
		}
		for _, name := range strings.Split(names, ",") {
			if _, ok := r.states[name]; !ok {
				continue
			}
			cp, err := r.q.CheckpointGet(ctx, r.pool, name)
			if err != nil {
				return err
			}
			r.moved(name, eventlog.Position{XID: cp.TransactionID, Offset: cp.Offset}, nil, false)
		}
	}
}
