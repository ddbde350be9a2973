package projections

import (
	"context"
	"sync"
)

// rebuildMemoryKey marks the context of a rebuild that started from empty tables.
type rebuildMemoryKey struct{}

// rebuildMemory is what projectors may remember during such a rebuild, where the rows
// they wrote so far are all the rows there are: the accounts projector remembers which
// devices it inserted, and skips deletes of rows that cannot exist.
type rebuildMemory struct {
	mu       sync.Mutex
	m        map[string]any
	disabled bool
}

func withRebuildMemory(ctx context.Context) context.Context {
	return context.WithValue(ctx, rebuildMemoryKey{}, &rebuildMemory{m: map[string]any{}})
}

// rebuildMemoryOf returns the projector's memory during a rebuild (made by create on
// first use), or nil outside one.
func rebuildMemoryOf[T any](ctx context.Context, name string, create func() *T) *T {
	rm, _ := ctx.Value(rebuildMemoryKey{}).(*rebuildMemory)
	if rm == nil {
		return nil
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.disabled {
		return nil
	}
	v, ok := rm.m[name].(*T)
	if !ok {
		v = create()
		rm.m[name] = v
	}
	return v
}

// disableRebuildMemory drops the rebuild's memory for good: after a batch was rolled
// back, what projectors remember may no longer be what the tables hold.
func disableRebuildMemory(ctx context.Context) {
	if rm, _ := ctx.Value(rebuildMemoryKey{}).(*rebuildMemory); rm != nil {
		rm.mu.Lock()
		rm.disabled = true
		rm.m = nil
		rm.mu.Unlock()
	}
}
