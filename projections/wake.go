package projections

import (
	"context"
	"log/slog"
	"sync"

	"github.com/tidwall/gjson"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/sql/gen/projdb"
)

// Waker is a projector whose events concern particular users and rooms: keys
// "user:<user ID>" and "room:<room ID>". After it commits a batch, the long-polls
// watching those keys (Runner.Watch) wake, and only they: a message in one room does
// not wake the syncs of users who are not in it. WakeKeys runs once the batch has
// committed, outside its transaction (a failed read must not fail the batch, and a
// transaction must not wait for a second connection); it may read, e.g. the rooms of
// a user whose presence changed. Keys do not touch the read model, so reading other
// projectors' tables here does not make a rebuild differ.
type Waker interface {
	WakeKeys(ctx context.Context, db projdb.DBTX, events []eventlog.Event) ([]string, error)
}

var (
	userKey = eventlog.UserWakeKey
	roomKey = eventlog.RoomWakeKey
)

// hub hands out channels closed when one of their keys is woken. Changes whose keys
// are not known (applied by another process, or in a catch-up) wake every watcher.
type hub struct {
	mu       sync.Mutex
	watchers map[string]map[*watcher]struct{}
}

type watcher struct {
	ch   chan struct{}
	once sync.Once
	keys []string
}

func (w *watcher) fire() { w.once.Do(func() { close(w.ch) }) }

func newHub() *hub { return &hub{watchers: map[string]map[*watcher]struct{}{}} }

// watch returns a channel closed when one of keys is woken, and the function that
// stops watching (call it when done).
func (h *hub) watch(keys []string) (<-chan struct{}, func()) {
	w := &watcher{ch: make(chan struct{}), keys: keys}
	h.mu.Lock()
	for _, k := range keys {
		set := h.watchers[k]
		if set == nil {
			set = map[*watcher]struct{}{}
			h.watchers[k] = set
		}
		set[w] = struct{}{}
	}
	h.mu.Unlock()
	return w.ch, func() {
		h.mu.Lock()
		for _, k := range w.keys {
			if set := h.watchers[k]; set != nil {
				delete(set, w)
				if len(set) == 0 {
					delete(h.watchers, k)
				}
			}
		}
		h.mu.Unlock()
	}
}

// wake fires the watchers of keys.
func (h *hub) wake(keys []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		for w := range h.watchers[k] {
			w.fire()
		}
	}
}

// wakeAll fires every watcher.
func (h *hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.watchers {
		for w := range set {
			w.fire()
		}
	}
}

// Watch returns a channel closed when a Waker projector commits a change concerning
// one of keys (eventlog.UserWakeKey, RoomWakeKey), or a change of unknown concern, and a function to
// call when done watching. Call it before reading what it watches, or check afterwards
// that nothing moved meanwhile.
func (r *Runner) Watch(keys ...string) (<-chan struct{}, func()) { return r.hub.watch(keys) }

// Wake wakes the watchers of keys, for changes that are not in the log (typing).
func (r *Runner) Wake(keys ...string) { r.hub.wake(keys) }

// pendingKeys are the events of a live batch not committed yet, whose wake keys are
// worked out after the commit. A commit that applied nothing (it only moved the
// checkpoint past events the projector does not handle) wakes nobody.
type pendingKeys struct {
	mu     sync.Mutex
	events []eventlog.Event
}

func (p *pendingKeys) set(events []eventlog.Event) {
	p.mu.Lock()
	p.events = events
	p.mu.Unlock()
}

func (p *pendingKeys) take() []eventlog.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	events := p.events
	p.events = nil
	return events
}

// wakeKeys returns what committed events of projector name concern; known is false
// when that cannot be told (every watcher then wakes).
func (r *Runner) wakeKeys(ctx context.Context, name string, events []eventlog.Event) (keys []string, known bool) {
	w, ok := r.wakers[name]
	if !ok || len(events) == 0 {
		return nil, true
	}
	keys, err := w.WakeKeys(ctx, r.pool, events)
	if err != nil {
		r.logger.WarnContext(ctx, "wake keys", slog.String("projector", name), slog.Any("err", err))
		return nil, false
	}
	return keys, true
}

// moved records that projector name reached pos. keys are what the events up to pos
// concern, when known: otherwise every watcher of a Waker's changes wakes.
func (r *Runner) moved(name string, pos eventlog.Position, keys []string, known bool) {
	if !r.states[name].advance(pos) {
		return
	}
	if _, ok := r.wakers[name]; !ok {
		return
	}
	if known {
		r.hub.wake(keys)
	} else {
		r.hub.wakeAll()
	}
}

// withRooms adds to keys the users' keys and those of the rooms they are joined to
// (their presence or devices concern everyone who shares a room with them).
func withRooms(ctx context.Context, db projdb.DBTX, keys []string, users []string) ([]string, error) {
	if len(users) == 0 {
		return keys, nil
	}
	rooms, err := projdb.New().RoomsJoinedByUsers(ctx, db, users)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		keys = append(keys, userKey(u))
	}
	for _, r := range rooms {
		keys = append(keys, roomKey(r))
	}
	return keys, nil
}

// userOf decodes an event's user_id.
func userOf(e eventlog.Event) string {
	var d struct {
		UserID string `json:"user_id"`
	}
	_ = e.Decode(&d)
	return d.UserID
}

// WakeKeys implements Waker: a room event concerns its room, and a member event its
// target too (an invitee is not in the room yet); forgetting concerns the user.
func (Rooms) WakeKeys(_ context.Context, _ projdb.DBTX, events []eventlog.Event) ([]string, error) {
	var keys []string
	for _, e := range events {
		switch e.Type {
		case eventlog.TypeRoomEventAccepted:
			// Read in place: decoding the whole PDU again for two fields costs more.
			f := gjson.GetManyBytes(e.Payload, "room_id", "pdu.type", "pdu.state_key")
			keys = append(keys, roomKey(f[0].Str))
			if f[1].Str == "m.room.member" {
				keys = append(keys, userKey(f[2].Str))
			}
		case eventlog.TypeRoomForgotten:
			keys = append(keys, userKey(userOf(e)))
		}
	}
	return keys, nil
}

// WakeKeys implements Waker: account data concerns its user.
func (AccountData) WakeKeys(_ context.Context, _ projdb.DBTX, events []eventlog.Event) ([]string, error) {
	keys := make([]string, 0, len(events))
	for _, e := range events {
		keys = append(keys, userKey(userOf(e)))
	}
	return keys, nil
}

// WakeKeys implements Waker: a receipt concerns its room.
func (Receipts) WakeKeys(_ context.Context, _ projdb.DBTX, events []eventlog.Event) ([]string, error) {
	keys := make([]string, 0, len(events))
	for _, e := range events {
		var d eventlog.ReceiptSent
		if err := e.Decode(&d); err != nil {
			return nil, err
		}
		keys = append(keys, roomKey(d.RoomID))
	}
	return keys, nil
}

// WakeKeys implements Waker: to-device messages concern their recipients.
func (ToDevice) WakeKeys(_ context.Context, _ projdb.DBTX, events []eventlog.Event) ([]string, error) {
	var keys []string
	for _, e := range events {
		if e.Type != eventlog.TypeToDeviceSent {
			continue
		}
		var d eventlog.ToDeviceSent
		if err := e.Decode(&d); err != nil {
			return nil, err
		}
		for _, m := range d.Messages {
			keys = append(keys, userKey(m.UserID))
		}
	}
	return keys, nil
}

// WakeKeys implements Waker: a user's presence concerns them and whoever shares a
// room with them.
func (Presence) WakeKeys(ctx context.Context, db projdb.DBTX, events []eventlog.Event) ([]string, error) {
	users := make([]string, 0, len(events))
	for _, e := range events {
		users = append(users, userOf(e))
	}
	return withRooms(ctx, db, nil, users)
}

// WakeKeys implements Waker: a change of a user's devices or keys concerns them and
// whoever shares a room with them (device_lists); a signature of another user's key
// only its signer. One-time key claims wake nobody: their counts ride on the next sync.
func (E2EKeys) WakeKeys(ctx context.Context, db projdb.DBTX, events []eventlog.Event) ([]string, error) {
	var keys, users []string
	for _, e := range events {
		switch e.Type {
		case eventlog.TypeOneTimeKeysUploaded, eventlog.TypeFallbackKeysUploaded, eventlog.TypeKeysClaimed:
		case eventlog.TypeKeySignaturesUploaded:
			var d eventlog.KeySignaturesUploaded
			if err := e.Decode(&d); err != nil {
				return nil, err
			}
			for _, s := range d.Signatures {
				if s.UserID == d.Signer {
					users = append(users, d.Signer)
				} else {
					keys = append(keys, userKey(d.Signer))
				}
			}
		default:
			users = append(users, userOf(e))
		}
	}
	return withRooms(ctx, db, keys, users)
}
