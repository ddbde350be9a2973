package testkit

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/internal/pgembed"
)

// DurableDB starts a private PostgreSQL cluster with its default durability (fsync and
// synchronous_commit on, unlike the shared test cluster, which makes commit latency
// meaningless), runs migrate on a database in it and returns a pool of at most
// maxConns connections. For benchmarks; the cluster is stopped and deleted when tb ends.
func DurableDB(tb testing.TB, migrate func(ctx context.Context, url string) error, maxConns int32) *pgxpool.Pool {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "spelt-bench-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		// The server runs as postgres for root: let it into the directory.
		if err := os.Chmod(dir, 0o711); err != nil {
			tb.Fatal(err)
		}
	}
	cluster, err := pgembed.Start(ctx, pgembed.Options{DataDir: filepath.Join(dir, "pg"), Fast: false})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := cluster.Stop(context.Background()); err != nil {
			tb.Errorf("stop cluster: %v", err)
		}
	})
	if err := cluster.EnsureDatabase(ctx, "bench"); err != nil {
		tb.Fatal(err)
	}
	if err := migrate(ctx, cluster.URL("bench")); err != nil {
		tb.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(cluster.URL("bench"))
	if err != nil {
		tb.Fatal(err)
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	var fsync, syncCommit string
	if err := pool.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit')").Scan(&fsync, &syncCommit); err != nil {
		tb.Fatal(err)
	}
	if fsync != "on" || syncCommit != "on" {
		tb.Fatalf("benchmark cluster has fsync=%s synchronous_commit=%s, want both on", fsync, syncCommit)
	}
	return pool
}

// Percentile returns the q-quantile (nearest rank) of sorted durations, in ms.
func Percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / float64(time.Millisecond)
}
