package eventlog

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
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
	subs map[chan struct{}]func(eventType string) bool
	// types are the event types appended since the last NOTIFY; all is set when an
	// append's types are unknown.
	types map[string]bool
	all   bool
	// peers are the other serving processes heard from, with when; greet asks send to
	// say this process is here.
	peers map[string]time.Time
	greet bool
}

// Peer messages: a serving process says hello when it starts listening, every process
// that hears it answers here, and each says here again every peerHeartbeat. A process
// that has heard no peer for peerTimeout sends no NOTIFY for its appends: nobody else
// would read them.
const (
	peerHello     = "!hello"
	peerHere      = "!here"
	peerHeartbeat = 30 * time.Second
	peerTimeout   = 2*peerHeartbeat + 10*time.Second
)

// HasPeers reports whether another serving process shares the database (heard from
// within peerTimeout); tools that append without a Notifier use Announce, which every
// process hears.
func (n *Notifier) HasPeers() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	for id, at := range n.peers {
		if now.Sub(at) < peerTimeout {
			return true
		}
		delete(n.peers, id)
	}
	return false
}

// NewNotifier returns a Notifier; Run must be running for other processes to hear it.
func NewNotifier(pool *pgxpool.Pool, logger *slog.Logger) *Notifier {
	return &Notifier{
		pool:     pool,
		logger:   logger,
		instance: uuid.NewString(),
		pending:  make(chan struct{}, 1),
		subs:     make(map[chan struct{}]func(string) bool),
		types:    make(map[string]bool),
		peers:    make(map[string]time.Time),
	}
}

// Subscribe returns a channel that receives a value (coalesced: it holds at most one)
// after appends of events whose type wants accepts (every append when wants is nil), and
// a function that cancels the subscription. A reader that is not woken by an append
// reads its events at its next wake-up.
func (n *Notifier) Subscribe(wants func(eventType string) bool) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	n.subs[ch] = wants
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.subs, ch)
		n.mu.Unlock()
	}
}

// Notify wakes the subscribers in this process that want one of types (all of them when
// types is empty: an append whose types are unknown) and schedules a NOTIFY that does
// the same in the other processes.
func (n *Notifier) Notify(types ...string) {
	n.wakeLocal(types)
	n.mu.Lock()
	if len(types) == 0 {
		n.all = true
	}
	for _, t := range types {
		n.types[t] = true
	}
	n.mu.Unlock()
	select {
	case n.pending <- struct{}{}:
	default:
	}
}

func (n *Notifier) wakeLocal(types []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch, wants := range n.subs {
		if wants != nil && len(types) > 0 && !slices.ContainsFunc(types, wants) {
			continue
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// payload is what the next NOTIFY says: this process's instance and, unless an append's
// types were unknown, the types appended, "INSTANCE|TYPE,TYPE".
func (n *Notifier) payload() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.instance
	if !n.all && len(n.types) > 0 && len(n.types) < 64 {
		types := make([]string, 0, len(n.types))
		for t := range n.types {
			types = append(types, t)
		}
		p += "|" + strings.Join(types, ",")
	}
	n.all = false
	clear(n.types)
	return p
}

// parsePayload reads a NOTIFY's payload: the sending instance and the types appended
// (nil: unknown, wake everyone).
func parsePayload(payload string) (instance string, types []string) {
	instance, list, ok := strings.Cut(payload, "|")
	if ok && list != "" {
		types = strings.Split(list, ",")
	}
	return instance, types
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
	heartbeat := time.NewTicker(peerHeartbeat)
	defer heartbeat.Stop()
	for {
		var payload string
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			payload = n.instance + "|" + peerHere
		case <-n.pending:
			n.mu.Lock()
			greet := n.greet
			n.greet = false
			n.mu.Unlock()
			switch {
			case greet:
				payload = n.instance + "|" + peerHere
			case n.HasPeers():
				payload = n.payload()
			default:
				n.payload() // nobody listens: drop what was pending
				continue
			}
		}
		if _, err := n.pool.Exec(ctx, "SELECT pg_notify($1, $2)", notifyChannel, payload); err != nil && ctx.Err() == nil {
			n.logger.WarnContext(ctx, "notify failed", slog.Any("err", err))
		}
		n.mu.Lock()
		waiting := n.all || len(n.types) > 0
		n.mu.Unlock()
		if payload == n.instance+"|"+peerHere && waiting {
			// The greeting went first; what was appended meanwhile goes now.
			select {
			case n.pending <- struct{}{}:
			default:
			}
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
		n.wakeLocal(nil)
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
	n.wakeLocal(nil)
	if _, err := conn.Exec(ctx, "SELECT pg_notify($1, $2)", notifyChannel, n.instance+"|"+peerHello); err != nil {
		return err
	}
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if note == nil {
			return errors.New("listen: nil notification")
		}
		// Another process's appends wake every reader here, whatever their types: a
		// request there may be waiting for any projector here to pass its write
		// (WaitFor), and a round trip to ask for it would cost more than a poll.
		instance, types := parsePayload(note.Payload)
		if instance == n.instance {
			continue
		}
		if len(types) == 1 && (types[0] == peerHello || types[0] == peerHere) {
			n.mu.Lock()
			if instance != "" {
				n.peers[instance] = time.Now()
			}
			if types[0] == peerHello {
				n.greet = true
			}
			n.mu.Unlock()
			if types[0] == peerHello {
				select {
				case n.pending <- struct{}{}:
				default:
				}
			}
			continue
		}
		n.wakeLocal(nil)
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

// UserWakeKey and RoomWakeKey name what a projected change concerns, for the
// long-polls that wait on it (projections.Runner.Watch): a user, a room.
func UserWakeKey(userID string) string { return "user:" + userID }

// RoomWakeKey is the wake key of a room.
func RoomWakeKey(roomID string) string { return "room:" + roomID }
