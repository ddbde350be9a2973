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

// liveMemoryKey carries, in the context of a batch the live runner applies, the
// projector's live memory.
type liveMemoryKey struct{}

// liveMemory is what a projector that runs live may remember of its own tables between
// batches, so as not to read them again: while it holds its lock it is their only
// writer. The runner owns it and forgets it whenever the tables may not be what the
// projector remembers: when it takes the projector (back) on, when an Apply fails,
// and when a batch was not seen to commit (begin finds the previous batch still
// pending). Only the projector's goroutine uses it.
type liveMemory struct {
	v       any
	pending bool
}

// begin is called before a batch is applied.
func (m *liveMemory) begin() {
	if m.pending {
		m.v = nil // the last batch did not commit: what it remembered may be wrong
	}
	m.pending = true
}

// committed is called once a batch has committed.
func (m *liveMemory) committed() { m.pending = false }

// forget drops what the projector remembers.
func (m *liveMemory) forget() { m.v = nil }

func withLiveMemory(ctx context.Context, m *liveMemory) context.Context {
	return context.WithValue(ctx, liveMemoryKey{}, m)
}

// liveMemoryOf returns the projector's live memory (made by create when empty), or nil
// outside the live runner (rebuilds, catch-ups of tools).
func liveMemoryOf[T any](ctx context.Context, create func() *T) *T {
	m := memoryIn(ctx)
	if m == nil {
		return nil
	}
	v, ok := m.v.(*T)
	if !ok {
		v = create()
		m.v = v
	}
	return v
}

func memoryIn(ctx context.Context) *liveMemory {
	m, _ := ctx.Value(liveMemoryKey{}).(*liveMemory)
	return m
}

// memBegin, memCommitted and memForget are begin, committed and forget of the live
// memory in ctx, if any.
func memBegin(ctx context.Context) {
	if m := memoryIn(ctx); m != nil {
		m.begin()
	}
}

func memCommitted(ctx context.Context) {
	if m := memoryIn(ctx); m != nil {
		m.committed()
	}
}

func memForget(ctx context.Context) {
	if m := memoryIn(ctx); m != nil {
		m.forget()
	}
}
