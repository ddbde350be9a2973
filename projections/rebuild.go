package projections

import (
	"context"
	"fmt"
	"log/slog"
	"time"

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
		// The tables are empty now: projectors may remember what they write.
		if _, err := r.catchUp(withRebuildMemory(ctx), db, p, until, target, true, prog); err != nil {
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

// RebuildOnline rebuilds the named projectors' read models (all when none are named)
// while a server keeps serving from the old ones: each is built from the log in a
// shadow schema (open returns a pool whose search_path puts that schema first), then
// the process running the projector is asked to release it, the shadow catches up with
// what was appended meanwhile, and its tables replace the live ones in one short
// transaction. The live process takes the projector back and goes on from the swapped
// checkpoint.
func (r *Runner) RebuildOnline(ctx context.Context, open func(schema string) (*pgxpool.Pool, error),
	names []string, progress func(projector string, n int)) error {
	selected, err := r.selectProjectors(names)
	if err != nil {
		return err
	}
	for _, p := range selected {
		if err := r.rebuildOnline(ctx, open, p, progress); err != nil {
			return fmt.Errorf("rebuild %s: %w", p.Name(), err)
		}
	}
	return nil
}

func (r *Runner) rebuildOnline(ctx context.Context, open func(schema string) (*pgxpool.Pool, error), p Projector,
	progress func(projector string, n int)) error {
	shadow := "spelt_rebuild_" + p.Name()
	s := pgx.Identifier{shadow}.Sanitize()
	tables := append([]string{"projection_checkpoints", "projection_failures"}, p.Tables()...)
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "CREATE SCHEMA "+s); err != nil {
			return err
		}
		for _, t := range tables {
			id := pgx.Identifier{t}.Sanitize()
			if _, err := tx.Exec(ctx, fmt.Sprintf("CREATE TABLE %s.%s (LIKE public.%s INCLUDING ALL)", s, id, id)); err != nil {
				return fmt.Errorf("clone %s: %w", t, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	spool, err := open(shadow)
	if err != nil {
		return err
	}
	defer spool.Close()
	var prog func(string, int)
	if progress != nil {
		prog = progress
	}
	if err := r.Rebuild(ctx, spool, RebuildOptions{Projectors: []string{p.Name()}, LockScope: shadow + ".", Progress: prog}); err != nil {
		return err
	}

	// Take the projector over from the process that runs it.
	locks, err := newLockConn(ctx, r.pool)
	if err != nil {
		return err
	}
	defer locks.close()
	deadline := time.Now().Add(time.Minute)
	var asked time.Time
	for {
		ok, err := locks.try(ctx, lockID(p.Name()))
		if err != nil {
			return err
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the process running %s did not release it within a minute", p.Name())
		}
		if time.Since(asked) > 5*time.Second {
			if _, err := r.pool.Exec(ctx, "SELECT pg_notify($1, $2)", controlChannel, "release "+p.Name()); err != nil {
				return err
			}
			asked = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	target, err := eventlog.Last(ctx, r.pool, eventlog.Bound{})
	if err != nil {
		return err
	}
	var prog1 func(int)
	if progress != nil {
		prog1 = func(n int) { progress(p.Name(), n) }
	}
	if _, err := r.catchUp(ctx, spool, p, eventlog.Bound{}, target, true, prog1); err != nil {
		return err
	}
	// Swap: readers wait on the table locks for the moment it takes, then see the new
	// tables (PostgreSQL resolves their names again after the wait).
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		for _, t := range p.Tables() {
			id := pgx.Identifier{t}.Sanitize()
			for _, q := range []string{
				"LOCK TABLE public." + id + " IN ACCESS EXCLUSIVE MODE",
				"DROP TABLE public." + id,
				"ALTER TABLE " + s + "." + id + " SET SCHEMA public",
			} {
				if _, err := tx.Exec(ctx, q); err != nil {
					return fmt.Errorf("swap %s: %w", t, err)
				}
			}
		}
		for _, q := range []string{
			`UPDATE public.projection_checkpoints c SET version = n.version, transaction_id = n.transaction_id,
				"offset" = n."offset", events = n.events
			 FROM ` + s + `.projection_checkpoints n WHERE c.name = $1 AND n.name = $1`,
			`DELETE FROM public.projection_failures WHERE name = $1`,
			`INSERT INTO public.projection_failures SELECT * FROM ` + s + `.projection_failures WHERE name = $1`,
		} {
			if _, err := tx.Exec(ctx, q, p.Name()); err != nil {
				return fmt.Errorf("swap checkpoint: %w", err)
			}
		}
		_, err := tx.Exec(ctx, "DROP SCHEMA "+s+" CASCADE")
		return err
	})
	if err != nil {
		return err
	}
	r.logger.InfoContext(ctx, "rebuilt read model swapped in", slog.String("projector", p.Name()))
	return nil
}
