package commands

import (
	"context"
	"maps"
	"sync"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pdus"
)

// roomMemo is what a command of this process last knew of a room when it committed:
// its version, depth, forward extremities and the current state of the keys it had
// read, as of version head (with hash) of the room's stream. Every change to a room's
// state is an event on that stream, so while the stream is still at head all that holds:
// openRoom checks it under the room's lock, and sendAhead by appending version head+1,
// which fails if anything came first. A memo is never changed once made.
type roomMemo struct {
	head        int64
	hash        []byte // the hash of the stream's event at head
	version     string // the room version
	depth       int64
	extremities []pdus.Ref
	state       map[pdus.StateKey]*pdus.Event // nil value: known to be absent
}

// roomMemos are the memos of the rooms this process wrote to last, at most
// maxRoomMemos of them, and how many sends of this process are under way in each room.
type roomMemos struct {
	mu      sync.Mutex
	m       map[string]*roomMemo
	sending map[string]int
}

// startSend counts a send under way in roomID and reports whether it is the only one.
func (ms *roomMemos) startSend(roomID string) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.sending == nil {
		ms.sending = map[string]int{}
	}
	ms.sending[roomID]++
	return ms.sending[roomID] == 1
}

// endSend undoes startSend.
func (ms *roomMemos) endSend(roomID string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.sending[roomID]--; ms.sending[roomID] <= 0 {
		delete(ms.sending, roomID)
	}
}

const maxRoomMemos = 4096

func (ms *roomMemos) get(roomID string) *roomMemo {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.m[roomID]
}

func (ms *roomMemos) put(roomID string, m *roomMemo) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.m == nil {
		ms.m = map[string]*roomMemo{}
	}
	if _, ok := ms.m[roomID]; !ok && len(ms.m) >= maxRoomMemos {
		// Forget an eighth, whichever the map hands out first.
		n := maxRoomMemos / 8
		for k := range ms.m {
			delete(ms.m, k)
			if n--; n == 0 {
				break
			}
		}
	}
	ms.m[roomID] = m
}

func (ms *roomMemos) drop(roomID string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	delete(ms.m, roomID)
}

// afterCommitKey is the context key under which a decider finds where to leave what
// to do once its command has committed, with the events it appended.
type afterCommitKey struct{}

type afterCommit []func(events []eventlog.Event)

// onCommit has fn run once the running command has committed.
func onCommit(ctx context.Context, fn func(events []eventlog.Event)) {
	if hooks, ok := ctx.Value(afterCommitKey{}).(*afterCommit); ok {
		*hooks = append(*hooks, fn)
	}
}

// remember records what r knows after its command committed events: the head of the
// room's stream is the last of them on it. A room whose extremities were more than one
// event may take as prev_events, or whose stream took room events r did not build, is
// forgotten instead: the next command reads it whole.
func (r *room) remember(events []eventlog.Event) {
	stream := eventlog.RoomStream(r.id)
	head, hash, built := r.head, r.hash, 0
	for _, e := range events {
		if e.Stream != stream {
			continue
		}
		head, hash = e.Version, e.Hash
		if e.Type == eventlog.TypeRoomEventAccepted {
			built++
		}
	}
	if !r.whole || built != len(r.built) || head == 0 || hash == nil {
		r.c.rooms.drop(r.id)
		return
	}
	r.c.rooms.put(r.id, &roomMemo{head: head, hash: hash, version: r.version, depth: r.depth,
		extremities: r.extremities, state: maps.Clone(r.state)})
}
