package eventlog

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// notifyChannel is the PostgreSQL LISTEN/NOTIFY channel that announces appends.
const notifyChannel = "spelt_events"

// Notifier wakes readers of the log when a transaction that appended has ended: readers
// in this process at once, and other processes with a PostgreSQL NOTIFY. The NOTIFY is
// sent after commit and coalesced (one in flight at a time), because NOTIFY inside the
// append transaction serialises every writer on the notification queue's lock.
type Notifier struct {
	pool     *pgxpool.Pool
	logger   *slog.Logger
	instance string
	pending  chan struct{}

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// NewNotifier returns a Notifier; Run must be running for other processes to hear it.
func NewNotifier(pool *pgxpool.Pool, logger *slog.Logger) *Notifier {
	return &Notifier{
		pool:     pool,
		logger:   logger,
		instance: uuid.NewString(),
		pending:  make(chan struct{}, 1),
		subs:     make(map[chan struct{}]struct{}),
	}
}

// Subscribe returns a channel that receives a value (coalesced: it holds at most one)
// after appends, and a function that cancels the subscription.
func (n *Notifier) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	n.subs[ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.subs, ch)
		n.mu.Unlock()
	}
}

// Notify wakes every subscriber in this process and schedules a NOTIFY for the others.
func (n *Notifier) Notify() {
	n.wakeLocal()
	select {
	case n.pending <- struct{}{}:
	default:
	}
}

func (n *Notifier) wakeLocal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run sends coalesced NOTIFYs and listens for other processes' until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.send(ctx)
	}()
	err := n.listen(ctx)
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (n *Notifier) send(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.pending:
		}
		if _, err := n.pool.Exec(ctx, "SELECT pg_notify($1, $2)", notifyChannel, n.instance); err != nil && ctx.Err() == nil {
			n.logger.WarnContext(ctx, "notify failed", slog.Any("err", err))
		}
	}
}

func (n *Notifier) listen(ctx context.Context) error {
	for ctx.Err() == nil {
		err := n.listenOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		n.logger.WarnContext(ctx, "listen connection lost; retrying", slog.Any("err", err))
		// Readers fall back to their idle poll meanwhile; wake them in case we missed one.
		n.wakeLocal()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func (n *Notifier) listenOnce(ctx context.Context) error {
	pc, err := n.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A LISTENing session must not go back to the pool.
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	// Appends that committed before LISTEN took effect were not announced to us.
	n.wakeLocal()
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if note == nil {
			return errors.New("listen: nil notification")
		}
		if note.Payload != n.instance {
			n.wakeLocal()
		}
	}
}

// Announce sends the NOTIFY that wakes every process's subscribers, at once; for tools
// that append without running a Notifier.
func Announce(ctx context.Context, q interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}) error {
	_, err := q.Exec(ctx, "SELECT pg_notify($1, '')", notifyChannel)
	return err
}
