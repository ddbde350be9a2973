package queries

import "sync"

// readCache remembers values read from a read model until forget is called, which is
// whenever that read model moves (projections.Runner.OnAdvance). A read that raced with
// a forget is not kept (gen), so a cached value is never older than the last move.
type readCache[K comparable, V any] struct {
	mu      sync.Mutex
	gen     uint64
	entries map[K]V
	max     int // past it, the cache starts again empty
}

// get returns the cached value of k, and the generation a read made now must be put
// back with.
func (c *readCache[K, V]) get(k K) (v V, gen uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok = c.entries[k]
	return v, c.gen, ok
}

// put keeps v for k, unless the cache was emptied since gen.
func (c *readCache[K, V]) put(k K, v V, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.entries == nil || c.max > 0 && len(c.entries) >= c.max {
		c.entries = map[K]V{}
	}
	c.entries[k] = v
}

// forget empties the cache.
func (c *readCache[K, V]) forget() {
	c.mu.Lock()
	c.gen++
	c.entries = nil
	c.mu.Unlock()
}
