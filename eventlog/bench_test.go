package eventlog_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/testkit"
	"spelt.dev/spelt/sql/migrations"
)

func durableDB(b *testing.B, maxConns int32) *pgxpool.Pool {
	return testkit.DurableDB(b, migrations.UpURL, maxConns)
}

func percentile(sorted []time.Duration, q float64) float64 { return testkit.Percentile(sorted, q) }

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
