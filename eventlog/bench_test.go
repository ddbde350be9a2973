package eventlog_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgembed"
	"spelt.dev/spelt/sql/migrations"
)

// durableDB starts a private PostgreSQL cluster with its default durability (fsync and
// synchronous_commit on: testkit's cluster has them off, which makes commit latency
// meaningless), migrates a database in it and returns a pool on it. The cluster is
// stopped and deleted when b ends.
func durableDB(b *testing.B, maxConns int32) *pgxpool.Pool {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "spelt-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		// The server runs as postgres for root: let it into the directory.
		if err := os.Chmod(dir, 0o711); err != nil {
			b.Fatal(err)
		}
	}
	cluster, err := pgembed.Start(ctx, pgembed.Options{DataDir: filepath.Join(dir, "pg"), Fast: false})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := cluster.Stop(context.Background()); err != nil {
			b.Errorf("stop cluster: %v", err)
		}
	})
	if err := cluster.EnsureDatabase(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(cluster.URL("bench"))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := migrations.Up(ctx, pool); err != nil {
		b.Fatal(err)
	}
	var fsync, syncCommit string
	if err := pool.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit')").Scan(&fsync, &syncCommit); err != nil {
		b.Fatal(err)
	}
	if fsync != "on" || syncCommit != "on" {
		b.Fatalf("benchmark cluster has fsync=%s synchronous_commit=%s, want both on", fsync, syncCommit)
	}
	return pool
}

// percentile returns the q-quantile (nearest rank) of sorted durations, in ms.
func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / float64(time.Millisecond)
}

// BenchmarkAppend measures appends of one event per transaction (each a realistic
// device login payload, to a stream of the writer's own with a head read, as commands
// do) on a durable cluster: 2,000 transactions with 1 writer, then with 8.
func BenchmarkAppend(b *testing.B) {
	pool := durableDB(b, 16)
	log := eventlog.New(discardLogger(), nil)
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			const txs = 2000
			ctx := context.Background()
			lat := make([]time.Duration, txs)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range writers {
				wg.Go(func() {
					stream := eventlog.UserStream(fmt.Sprintf("@bench%d_%d:spelt.test", writers, w))
					for {
						i := next.Add(1) - 1
						if i >= txs {
							return
						}
						token := sha256.Sum256(fmt.Appendf(nil, "token %d %d", writers, i))
						e := eventlog.NewEvent{Stream: stream, Type: eventlog.TypeDeviceLoggedIn, ExpectVersion: eventlog.AnyVersion,
							Data: eventlog.DeviceLoggedIn{UserID: "@bench:spelt.test", DeviceID: fmt.Sprintf("DEV%d", i), TokenHash: token[:]}}
						t0 := time.Now()
						tx, err := pool.Begin(ctx)
						if err != nil {
							b.Error(err)
							return
						}
						if _, err := log.Append(ctx, tx, testMeta, e); err != nil {
							_ = tx.Rollback(ctx)
							b.Error(err)
							return
						}
						if err := tx.Commit(ctx); err != nil {
							b.Error(err)
							return
						}
						lat[i] = time.Since(t0)
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if b.Failed() {
				return
			}
			slices.Sort(lat)
			rate := txs / elapsed.Seconds()
			b.ReportMetric(percentile(lat, 0.50), "p50_ms")
			b.ReportMetric(percentile(lat, 0.99), "p99_ms")
			b.ReportMetric(rate, "events/s")
			b.Logf("append, %d writer(s), %d transactions of 1 event, fsync on: p50 %.2f ms, p99 %.2f ms, max %.2f ms, %.0f events/s",
				writers, txs, percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1), rate)
		})
	}
}
