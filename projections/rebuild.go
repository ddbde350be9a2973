package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/eventlog"
)

// Rebuild empties the named projectors' read models (all when names is empty) and
// replays the log (up to until) into them, in batches. db may point at another schema
// (through its search_path) to build read models as they were at a point in the past.
// It takes each projector's lock first and fails if a running server holds it.
func (r *Runner) Rebuild(ctx context.Context, db *pgxpool.Pool, opts RebuildOptions) error {
	names, until, progress := opts.Projectors, opts.Until, opts.Progress
	selected, err := r.selectProjectors(names)
	if err != nil {
		return err
	}
	locks, err := newLockConn(ctx, db)
	if err != nil {
		return err
	}
	defer locks.close()
	for _, p := range selected {
		ok, err := locks.try(ctx, lockID(opts.LockScope+p.Name()))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("projector %s is running in another process (is spelt serve running?): stop it first, or rebuild into another schema with --into", p.Name())
		}
	}
	for _, p := range selected {
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			if err := r.q.CheckpointEnsure(ctx, tx, ensureParams(p)); err != nil {
				return err
			}
			return reset(ctx, tx, p)
		})
		if err != nil {
			return fmt.Errorf("rebuild %s: %w", p.Name(), err)
		}
		var prog func(int)
		if progress != nil {
			prog = func(n int) { progress(p.Name(), n) }
		}
		target, err := eventlog.Last(ctx, db, until)
		if err != nil {
			return err
		}
		if _, err := r.catchUp(ctx, db, p, until, target, true, prog); err != nil {
			return fmt.Errorf("rebuild %s: %w", p.Name(), err)
		}
	}
	return nil
}

// RebuildOptions selects what Rebuild does.
type RebuildOptions struct {
	// Projectors names the projectors to rebuild; all when empty.
	Projectors []string
	// Until bounds the replay; the zero Bound replays everything.
	Until eventlog.Bound
	// LockScope separates the locks of a rebuild into another schema from those of the
	// live projectors; empty for the live read models.
	LockScope string
	// Progress, if not nil, is called with the number of events of each batch.
	Progress func(projector string, n int)
}

func (r *Runner) selectProjectors(names []string) ([]Projector, error) {
	if len(names) == 0 {
		return r.projectors, nil
	}
	var out []Projector
	for _, n := range names {
		found := false
		for _, p := range r.projectors {
			if p.Name() == n {
				out = append(out, p)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("no projector named %q", n)
		}
	}
	return out, nil
}

// CatchUp brings the named projectors (all when none are named) up to the last event
// committed now: itself, for those no other process runs, and by waiting for the
// process that runs the others. Tools that read read models (spelt admin) call it.
func (r *Runner) CatchUp(ctx context.Context, names ...string) error {
	selected, err := r.selectProjectors(names)
	if err != nil {
		return err
	}
	target, err := eventlog.Last(ctx, r.pool, eventlog.Bound{})
	if err != nil {
		return err
	}
	locks, err := newLockConn(ctx, r.pool)
	if err != nil {
		return err
	}
	defer locks.close()
	for _, p := range selected {
		ok, err := locks.try(ctx, lockID(p.Name()))
		if err != nil {
			return err
		}
		if !ok {
			if err := r.WaitFor(ctx, target, p.Name()); err != nil {
				return err
			}
			continue
		}
		if err := r.prepare(ctx, r.pool, p); err != nil {
			return err
		}
		if _, err := r.catchUp(ctx, r.pool, p, eventlog.Bound{}, target, false, nil); err != nil {
			return err
		}
	}
	return nil
}
