package projections

// roomsMemory is what the rooms projector remembers of its tables between live batches
// (see liveMemory): the last stream ordering, and for the rooms and state keys recent
// batches touched, what a batch's prelude would read of them. A batch whose rooms and
// state keys are all remembered reads nothing before it writes.
type roomsMemory struct {
	next      int64
	nextKnown bool
	rooms     map[string]*roomMemory
	state     map[stateKey]string // current state event ID; "": none
}

// roomMemory is what the rooms projector remembers of one room.
type roomMemory struct {
	hv   string      // history visibility
	push *notifyRoom // the room state the push rules look at
}

// The memory starts again empty when it holds more than this many rooms or state keys.
const (
	maxRememberedRooms     = 10_000
	maxRememberedStateKeys = 200_000
)

func newRoomsMemory() *roomsMemory {
	return &roomsMemory{rooms: map[string]*roomMemory{}, state: map[stateKey]string{}}
}

// room returns what is remembered of room, or nil (also when m is nil: no memory).
func (m *roomsMemory) room(room string) *roomMemory {
	if m == nil {
		return nil
	}
	return m.rooms[room]
}

// current returns the remembered current state event of k.
func (m *roomsMemory) current(k stateKey) (string, bool) {
	if m == nil {
		return "", false
	}
	id, ok := m.state[k]
	return id, ok
}

func (m *roomsMemory) ordering() (int64, bool) {
	if m == nil {
		return 0, false
	}
	return m.next, m.nextKnown
}

// update remembers what the batch rb leaves behind; push is the push rules' state of
// its rooms, as notify left it. A room with a redaction in the batch is forgotten: the
// prelude reads the push rules' state from the stored (redacted) events, which the
// memory, kept from the events as they came, may no longer match.
func (m *roomsMemory) update(rb *roomsBatch, push map[string]*notifyRoom) {
	if m == nil {
		return
	}
	if len(m.rooms) > maxRememberedRooms || len(m.state) > maxRememberedStateKeys {
		clear(m.rooms)
		clear(m.state)
	}
	m.next, m.nextKnown = rb.next, true
	for room, hv := range rb.hv {
		if rb.redacted[room] || push[room] == nil {
			delete(m.rooms, room)
			continue
		}
		m.rooms[room] = &roomMemory{hv: hv, push: push[room]}
	}
	for k, id := range rb.state {
		m.state[k] = id
	}
}
