package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"spelt.dev/spelt/internal/config"
	"spelt.dev/spelt/internal/testkit"
)

// benchClient is a mautrix client without the spec checks (they would be part of the
// latency measured) and with enough idle connections for concurrent senders.
func benchClient(b *testing.B, s *testServer, r *mautrix.RespRegister) *mautrix.Client {
	c, err := mautrix.NewClient(s.baseURL, r.UserID, r.AccessToken)
	if err != nil {
		b.Fatal(err)
	}
	c.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	return c
}

// sendRun is one measured run: senders send each messages, one at a time each.
type sendRun struct {
	latencies []time.Duration
	took      time.Duration
}

func runSenders(b *testing.B, ctx context.Context, clients []*mautrix.Client, rooms []id.RoomID, each int) sendRun {
	var mu sync.Mutex
	var run sendRun
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, each)
			for j := range each {
				t0 := time.Now()
				if _, err := c.SendText(ctx, rooms[i%len(rooms)], fmt.Sprintf("bench %d %d", i, j)); err != nil {
					b.Error(err)
					return
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			run.latencies = append(run.latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	run.took = time.Since(start)
	slices.Sort(run.latencies)
	return run
}

// BenchmarkRoomSend measures PUT /rooms/{roomId}/send through the real HTTP server on a
// durable PostgreSQL (fsync on): latency (request sent → response, which comes once the
// event is in the log and in the rooms read model) and throughput with 1 and 8
// concurrent senders, in one room and in separate rooms; then send → visible in another
// user's /messages, and /messages pagination speed.
func BenchmarkRoomSend(b *testing.B) {
	tuneGC() // as spelt serve runs
	ctx := context.Background()
	pool := testkit.DurableDB(b, migrate, 4)
	url := pool.Config().ConnString()
	pool.Close()
	te := newTestEnv(b, func(c *config.Config) { c.Database.URL = url; c.Database.MaxConns = 20 })
	te.dbURL = url
	s := te.start()

	const senders = 8
	var clients []*mautrix.Client
	for i := range senders + 1 {
		clients = append(clients, benchClient(b, s, s.register(ctx, fmt.Sprintf("bench%d", i), "pw")))
	}
	reader := clients[senders]
	newRoom := func() id.RoomID {
		r, err := clients[0].CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range clients[1:] {
			if _, err := c.JoinRoomByID(ctx, r.RoomID); err != nil {
				b.Fatal(err)
			}
		}
		return r.RoomID
	}
	shared := newRoom()
	var separate []id.RoomID
	for range senders {
		separate = append(separate, newRoom())
	}
	// Warm up connections and caches.
	runSenders(b, ctx, clients[:senders], separate, 20)

	report := func(name string, r sendRun) {
		n := len(r.latencies)
		rate := float64(n) / r.took.Seconds()
		b.ReportMetric(testkit.Percentile(r.latencies, 0.50), name+"-p50-ms")
		b.ReportMetric(testkit.Percentile(r.latencies, 0.99), name+"-p99-ms")
		b.ReportMetric(rate, name+"-events/s")
		b.Logf("%-22s %5d sends: p50 %.2f ms, p99 %.2f ms, %.0f events/s", name, n,
			testkit.Percentile(r.latencies, 0.50), testkit.Percentile(r.latencies, 0.99), rate)
	}
	report("1-sender", runSenders(b, ctx, clients[:1], []id.RoomID{shared}, 1000))
	report("8-senders-one-room", runSenders(b, ctx, clients[:senders], []id.RoomID{shared}, 250))
	report("8-senders-8-rooms", runSenders(b, ctx, clients[:senders], separate, 250))

	// Send → visible in another user's /messages: the reader asks for the newest event
	// right after the send returns, as a client that was told of it would.
	var visible []time.Duration
	for i := range 500 {
		t0 := time.Now()
		resp, err := clients[0].SendText(ctx, shared, fmt.Sprintf("visible %d", i))
		if err != nil {
			b.Fatal(err)
		}
		for {
			page, err := reader.Messages(ctx, shared, "", "", mautrix.DirectionBackward, nil, 1)
			if err != nil {
				b.Fatal(err)
			}
			if len(page.Chunk) == 1 && page.Chunk[0].ID == resp.EventID {
				break
			}
		}
		visible = append(visible, time.Since(t0))
	}
	slices.Sort(visible)
	b.ReportMetric(testkit.Percentile(visible, 0.50), "send-to-visible-p50-ms")
	b.ReportMetric(testkit.Percentile(visible, 0.99), "send-to-visible-p99-ms")
	b.Logf("send → visible to another user: p50 %.2f ms, p99 %.2f ms (target p99 < 25 ms)",
		testkit.Percentile(visible, 0.50), testkit.Percentile(visible, 0.99))

	// Pagination: the whole shared room (about 3,500 events), 100 a page, backwards.
	t0 := time.Now()
	events, from := 0, ""
	for {
		page, err := reader.Messages(ctx, shared, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			b.Fatal(err)
		}
		events += len(page.Chunk)
		if page.End == "" {
			break
		}
		from = page.End
	}
	rate := float64(events) / time.Since(t0).Seconds()
	b.ReportMetric(rate, "messages-events/s")
	b.Logf("/messages pagination: %d events, 100 a page: %.0f events/s", events, rate)
}
