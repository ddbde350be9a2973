// Package typing keeps who is typing in which room. Typing is not written to the event
// log: it is a signal that expires within seconds (an EDU in federation), whose history
// nobody needs, and a log write per keystroke burst would cost more than it is worth.
// A restart forgets it, as a client's next keystroke restores it. Processes sharing a
// database tell each other with NOTIFY spelt_typing.
package typing

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

const channel = "spelt_typing"

// MaxTimeout bounds how long one request marks a user as typing.
const MaxTimeout = 2 * time.Minute

// Hub is the typing state of this process.
type Hub struct {
	pool     *pgxpool.Pool
	logger   *slog.Logger
	instance string

	mu      sync.Mutex
	serial  int64
	rooms   map[string]map[string]time.Time // room → user → until
	changed map[string]int64                // room → serial of its last change
	moved   chan struct{}
	timer   *time.Timer

	// OnChange, if set (before Run), is told of each room whose typing changed.
	OnChange func(room string)
}

// New returns a Hub; Run must run for other processes' typing to arrive. pool may be
// nil (one process, tests).
func New(pool *pgxpool.Pool, logger *slog.Logger) *Hub {
	return &Hub{pool: pool, logger: logger, instance: uuid.NewString(), rooms: map[string]map[string]time.Time{},
		changed: map[string]int64{}, moved: make(chan struct{})}
}

type note struct {
	Instance  string `json:"i"`
	Room      string `json:"r"`
	User      string `json:"u"`
	Typing    bool   `json:"t"`
	TimeoutMS int64  `json:"ms"`
}

// Set marks user as typing in room for timeout, or as not typing, here and in the other
// processes.
func (h *Hub) Set(ctx context.Context, room, user string, typing bool, timeout time.Duration) {
	timeout = min(timeout, MaxTimeout)
	h.apply(room, user, typing, timeout)
	if h.pool == nil {
		return
	}
	b, _ := json.Marshal(note{Instance: h.instance, Room: room, User: user, Typing: typing, TimeoutMS: timeout.Milliseconds()})
	if _, err := h.pool.Exec(ctx, "SELECT pg_notify($1, $2)", channel, string(b)); err != nil && ctx.Err() == nil {
		h.logger.WarnContext(ctx, "typing notify failed", slog.Any("err", err))
	}
}

func (h *Hub) apply(room, user string, typing bool, timeout time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	users := h.rooms[room]
	_, was := users[user]
	if typing {
		if users == nil {
			users = map[string]time.Time{}
			h.rooms[room] = users
		}
		users[user] = time.Now().Add(timeout)
		h.schedule()
	} else {
		delete(users, user)
	}
	if typing != was {
		h.bump(room)
	}
}

// bump records a change of room; h.mu is held.
func (h *Hub) bump(room string) {
	h.serial++
	h.changed[room] = h.serial
	close(h.moved)
	h.moved = make(chan struct{})
	if h.OnChange != nil {
		h.OnChange(room)
	}
}

// schedule arms the timer for the next expiry; h.mu is held.
func (h *Hub) schedule() {
	var next time.Time
	for _, users := range h.rooms {
		for _, until := range users {
			if next.IsZero() || until.Before(next) {
				next = until
			}
		}
	}
	if next.IsZero() {
		return
	}
	if h.timer != nil {
		h.timer.Stop()
	}
	h.timer = time.AfterFunc(time.Until(next)+time.Millisecond, h.expire)
}

func (h *Hub) expire() {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	for room, users := range h.rooms {
		for user, until := range users {
			if !until.After(now) {
				delete(users, user)
				h.bump(room)
			}
		}
		if len(users) == 0 {
			delete(h.rooms, room)
		}
	}
	h.schedule()
}

// Moved returns a channel closed at the next change.
func (h *Hub) Moved() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.moved
}

// Changes returns this process's typing position, and for each of rooms whose typing
// changed after since, who types there now (sorted). A since beyond the position (from
// another process, or before a restart) counts as the beginning.
func (h *Hub) Changes(rooms []string, since int64) (int64, map[string][]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if since > h.serial {
		since = 0
	}
	out := map[string][]string{}
	for _, room := range rooms {
		at, ok := h.changed[room]
		if !ok || at <= since {
			continue
		}
		users := []string{}
		for u := range h.rooms[room] {
			users = append(users, u)
		}
		sort.Strings(users)
		out[room] = users
	}
	return h.serial, out
}

// Run applies other processes' typing until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := h.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		h.logger.WarnContext(ctx, "typing listener lost; retrying", slog.Any("err", err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (h *Hub) listen(ctx context.Context) error {
	pc, err := h.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var msg note
		if json.Unmarshal([]byte(n.Payload), &msg) != nil || msg.Instance == h.instance {
			continue
		}
		h.apply(msg.Room, msg.User, msg.Typing, time.Duration(msg.TimeoutMS)*time.Millisecond)
	}
}
