package http

import (
	"sync"
	"time"

	"spelt.dev/spelt/queries"
)

// memberCaches remember, per device, the member events /sync gave it, for lazy loading
// without redundant members. Like Synapse's, they live in memory only: after a
// restart, or for a device not seen lately, the members are given again, which
// clients handle (the spec asks servers not to send what they "believe the client
// already has").
type memberCaches struct {
	mu      sync.Mutex
	devices map[deviceKey]*memberCache
}

// maxMemberCaches bounds the devices remembered; the least recently syncing go first.
const maxMemberCaches = 10_000

func newMemberCaches() *memberCaches { return &memberCaches{devices: map[deviceKey]*memberCache{}} }

// of returns the cache of a device.
func (m *memberCaches) of(user, device string) queries.MemberCache {
	k := deviceKey{user, device}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.devices[k]
	if c == nil {
		if len(m.devices) >= maxMemberCaches {
			var oldest deviceKey
			var at time.Time
			for k, c := range m.devices {
				if u := c.used(); at.IsZero() || u.Before(at) {
					oldest, at = k, u
				}
			}
			delete(m.devices, oldest)
		}
		c = &memberCache{sent: map[[2]string]string{}}
		m.devices[k] = c
	}
	c.mu.Lock()
	c.lastUse = now
	c.mu.Unlock()
	return c
}

// memberCache is one device's: (room, user) → member event ID.
type memberCache struct {
	mu      sync.Mutex
	sent    map[[2]string]string
	lastUse time.Time
}

func (c *memberCache) used() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastUse
}

// Sent implements queries.MemberCache.
func (c *memberCache) Sent(room, user string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent[[2]string{room, user}]
}

// Record implements queries.MemberCache.
func (c *memberCache) Record(room, user, eventID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent[[2]string{room, user}] = eventID
}

// Reset implements queries.MemberCache.
func (c *memberCache) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.sent)
}
