package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/projections"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("replay", "[--config PATH] [--projection NAME]... [--until POSITION|RFC3339-TIME --into SCHEMA]", stderr)
	var names stringList
	fs.Var(&names, "projection", "rebuild only this projector (repeatable); default: every projector and the write model")
	until := fs.String("until", "", "replay only up to this log position (XID:OFFSET, as verify prints) or time (RFC 3339); needs --into")
	into := fs.String("into", "", "build the read models into this new schema instead of the live ones (for audit)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *until != "" && *into == "" {
		fmt.Fprintln(stderr, "--until needs --into: the live read models always follow the whole log")
		return errUsage
	}
	var bound eventlog.Bound
	if *until != "" {
		if t, err := time.Parse(time.RFC3339Nano, *until); err == nil {
			bound.Time = &t
		} else if p, err := eventlog.ParsePosition(*until); err == nil {
			bound.Position = &p
		} else {
			fmt.Fprintf(stderr, "--until %q is neither a position (XID:OFFSET) nor an RFC 3339 time\n", *until)
			return errUsage
		}
	}
	if *into != "" && (!schemaName.MatchString(*into) || *into == "public" || strings.HasPrefix(*into, "pg_") ||
		*into == "eventlog" || *into == "writemodel") {
		fmt.Fprintf(stderr, "--into %q: want a new schema name of lower-case letters, digits and _\n", *into)
		return errUsage
	}

	e, err := open(ctx, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.requireSchema(ctx); err != nil {
		return err
	}
	runner := projections.NewRunner(e.pool, nil, e.logger, projections.All(e.cfg.ServerName)...)
	selected := names
	if len(selected) == 0 {
		for _, p := range runner.Projectors() {
			selected = append(selected, p.Name())
		}
	}
	total, err := eventlog.Count(ctx, e.pool, eventlog.Position{}, bound)
	if err != nil {
		return err
	}

	if *into != "" {
		return replayInto(ctx, e, runner, *into, selected, bound, total, stdout, stderr)
	}

	start := time.Now()
	release, lockErr := commands.TryExclusiveWriterLock(ctx, e.pool)
	if lockErr != nil {
		// A server is running: rebuild the read models beside it and swap them in; the
		// write model, which its commands use, can only be rebuilt with it stopped.
		if len(names) == 0 {
			fmt.Fprintln(stderr, "a server is running: rebuilding the read models online; stop it to rebuild the write model too")
		}
		bars := newPhases(stderr, total)
		err = runner.RebuildOnline(ctx, func(schema string) (*pgxpool.Pool, error) {
			return connect(ctx, e.dbURL, 4, pgx.Identifier{schema}.Sanitize()+", public")
		}, selected, bars.add)
		bars.finish()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replayed %d events into %s (online) in %s\n", total, strings.Join(selected, ", "), time.Since(start).Round(time.Millisecond))
		return nil
	}
	if len(names) == 0 {
		p := newProgress(stderr, "write model", total)
		err = commands.RebuildWriteModel(ctx, e.pool, p.add)
		p.finish()
		if err != nil {
			release()
			return err
		}
	}
	release()
	bars := newPhases(stderr, total)
	err = runner.Rebuild(ctx, e.pool, projections.RebuildOptions{Projectors: selected, Progress: bars.add})
	bars.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replayed %d events into %s in %s\n", total, strings.Join(selected, ", "), time.Since(start).Round(time.Millisecond))
	return nil
}

// replayInto builds the selected read models into a new schema, as they were at bound.
func replayInto(ctx context.Context, e *env, runner *projections.Runner, schema string, names []string,
	bound eventlog.Bound, total int64, stdout, stderr io.Writer) error {
	var exists bool
	if err := e.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("schema %s already exists: drop it (DROP SCHEMA %s CASCADE) or choose another", schema, schema)
	}
	tables := []string{"projection_checkpoints", "projection_failures"}
	for _, p := range runner.Projectors() {
		for _, n := range names {
			if p.Name() == n {
				tables = append(tables, p.Tables()...)
			}
		}
	}
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		s := pgx.Identifier{schema}.Sanitize()
		if _, err := tx.Exec(ctx, "CREATE SCHEMA "+s); err != nil {
			return err
		}
		for _, t := range tables {
			q := fmt.Sprintf("CREATE TABLE %s.%s (LIKE public.%s INCLUDING ALL)", s, pgx.Identifier{t}.Sanitize(), pgx.Identifier{t}.Sanitize())
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("clone %s: %w", t, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	pool, err := connect(ctx, e.dbURL, 4, schema+", public")
	if err != nil {
		return err
	}
	defer pool.Close()
	bars := newPhases(stderr, total)
	err = runner.Rebuild(ctx, pool, projections.RebuildOptions{
		Projectors: names, Until: bound, LockScope: schema + ".", Progress: bars.add,
	})
	bars.finish()
	if err != nil {
		return errors.Join(err, fmt.Errorf("schema %s is incomplete: drop it before retrying", schema))
	}
	fmt.Fprintf(stdout, "read models (%s) as of %s are in schema %s: %d events replayed\n",
		strings.Join(names, ", "), describeBound(bound), schema, total)
	return nil
}

func describeBound(b eventlog.Bound) string {
	switch {
	case b.Position != nil:
		return "position " + b.Position.String()
	case b.Time != nil:
		return b.Time.UTC().Format(time.RFC3339Nano)
	}
	return "now"
}
