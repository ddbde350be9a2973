package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/config"
	"spelt.dev/spelt/internal/testkit"
)

// peakRSS is the process's peak resident set size in MiB (VmHWM), or 0 when unknown.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(rest), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkSync measures /sync through the real server on a durable cluster: delivery
// latency of a long-polling receiver, fan-out to 200 long-polling members of one room,
// an initial sync in 500 rooms of 20 messages with timelines limited to 10, and an
// incremental sync with nothing new in those 500 rooms. The server runs in the
// benchmark's process, so the peak RSS printed includes its clients.
func BenchmarkSync(b *testing.B) {
	tuneGC() // as spelt serve runs
	ctx := context.Background()
	pool := testkit.DurableDB(b, migrate, 4)
	url := pool.Config().ConnString()
	pool.Close()
	te := newTestEnv(b, func(c *config.Config) { c.Database.URL = url; c.Database.MaxConns = 40 })
	te.dbURL = url
	s := te.start()
	transport := &http.Transport{MaxIdleConnsPerHost: 512}
	client := func(r *mautrix.RespRegister) *mautrix.Client {
		c, err := mautrix.NewClient(s.baseURL, r.UserID, r.AccessToken)
		if err != nil {
			b.Fatal(err)
		}
		c.Client = &http.Client{Transport: transport}
		return c
	}
	sender := client(s.register(ctx, "sender", "pw"))
	receiver := client(s.register(ctx, "receiver", "pw"))
	created, err := sender.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		b.Fatal(err)
	}
	room := created.RoomID
	if _, err := receiver.JoinRoomByID(ctx, room); err != nil {
		b.Fatal(err)
	}

	// Delivery latency.
	first, err := receiver.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		b.Fatal(err)
	}
	since := first.NextBatch
	var lat []time.Duration
	for i := range 300 {
		got := make(chan time.Time, 1)
		go func() {
			tok := since
			for {
				r, err := receiver.SyncRequest(ctx, 30000, tok, "", false, "")
				if err != nil {
					b.Error(err)
					got <- time.Now()
					return
				}
				tok = r.NextBatch
				if jr, ok := r.Rooms.Join[room]; ok && len(jr.Timeline.Events) > 0 {
					since = tok
					got <- time.Now()
					return
				}
			}
		}()
		// Let the long-poll start: it is in flight once the request is being served.
		time.Sleep(2 * time.Millisecond)
		start := time.Now()
		if _, err := sender.SendText(ctx, room, fmt.Sprintf("latency %d", i)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-got).Sub(start))
	}
	slices.Sort(lat)
	b.ReportMetric(testkit.Percentile(lat, 0.50), "delivery-p50-ms")
	b.ReportMetric(testkit.Percentile(lat, 0.99), "delivery-p99-ms")
	b.Logf("delivery (send start → long-polling receiver has it), 300 messages: p50 %.2f ms, p95 %.2f ms, p99 %.2f ms (target p99 < 30 ms)",
		testkit.Percentile(lat, 0.50), testkit.Percentile(lat, 0.95), testkit.Percentile(lat, 0.99))

	// Fan-out to 200 long-polling members.
	const members = 200
	var fans []*mautrix.Client
	var tokens []string
	for i := range members {
		c := client(s.register(ctx, fmt.Sprintf("fan%d", i), "pw"))
		if _, err := c.JoinRoomByID(ctx, room); err != nil {
			b.Fatal(err)
		}
		fans = append(fans, c)
	}
	for _, c := range fans {
		r, err := c.SyncRequest(ctx, 0, "", "", false, "")
		if err != nil {
			b.Fatal(err)
		}
		tokens = append(tokens, r.NextBatch)
	}
	// Round -1 warms up what a first message meets only once (the members' push rules,
	// caches, prepared statements on every pooled connection); it is logged, not
	// reported.
	for round := -1; round < 3; round++ {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var last time.Time
		for i, c := range fans {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					r, err := c.SyncRequest(ctx, 30000, tokens[i], "", false, "")
					if err != nil {
						b.Error(err)
						return
					}
					tokens[i] = r.NextBatch
					if jr, ok := r.Rooms.Join[room]; ok && len(jr.Timeline.Events) > 0 {
						mu.Lock()
						if now := time.Now(); now.After(last) {
							last = now
						}
						mu.Unlock()
						return
					}
				}
			}()
		}
		time.Sleep(500 * time.Millisecond) // every long-poll in flight
		start := time.Now()
		if _, err := sender.SendText(ctx, room, fmt.Sprintf("fan-out %d", round)); err != nil {
			b.Fatal(err)
		}
		wg.Wait()
		took := last.Sub(start)
		if round < 0 {
			b.Logf("fan-out warm-up round: %.1f ms", float64(took.Microseconds())/1000)
			continue
		}
		b.ReportMetric(float64(took.Microseconds())/1000, fmt.Sprintf("fanout%d-ms", round))
		b.Logf("fan-out to %d long-polling members, round %d: all have the message after %.1f ms (target < 200 ms)", members, round, float64(took.Microseconds())/1000)
	}
	b.ReportMetric(peakRSS(), "peak-rss-MiB")
	b.Logf("peak RSS of the process (server, PostgreSQL excluded, and the 200 clients): %.0f MiB", peakRSS())

	// Initial sync in 500 rooms of 20 messages, timelines limited to 10.
	heavy := s.register(ctx, "heavy", "pw")
	hc := client(heavy)
	meta := eventlog.Metadata{Origin: eventlog.OriginClient, Actor: string(heavy.UserID)}
	rooms := make([]id.RoomID, 500)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				r, err := s.app.commands.CreateRoom(ctx, meta, commands.CreateRoom{Creator: string(heavy.UserID), Preset: commands.PresetPrivateChat})
				if err != nil {
					b.Error(err)
					return
				}
				rooms[i] = id.RoomID(r.RoomID)
				for j := range 20 {
					if _, err := s.app.commands.Send(ctx, meta, commands.SendEvent{RoomID: r.RoomID, Sender: string(heavy.UserID), Type: "m.room.message",
						Content: json.RawMessage(fmt.Sprintf(`{"msgtype":"m.text","body":"m%d"}`, j))}); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}()
	}
	for i := range rooms {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := s.app.runner.WaitFor(ctx, mustHead(b, ctx, s)); err != nil {
		b.Fatal(err)
	}
	filter, err := hc.CreateFilter(ctx, &mautrix.Filter{Room: &mautrix.RoomFilter{Timeline: &mautrix.FilterPart{Limit: 10}}})
	if err != nil {
		b.Fatal(err)
	}
	var initial []time.Duration
	var next string
	for range 3 {
		start := time.Now()
		r, err := hc.SyncRequest(ctx, 0, "", filter.FilterID, false, "")
		if err != nil {
			b.Fatal(err)
		}
		initial = append(initial, time.Since(start))
		if len(r.Rooms.Join) != 500 {
			b.Fatalf("initial sync has %d rooms, want 500", len(r.Rooms.Join))
		}
		next = r.NextBatch
	}
	slices.Sort(initial)
	b.ReportMetric(float64(initial[1].Microseconds())/1000, "initial-sync-500-rooms-ms")
	b.Logf("initial sync, 500 rooms × 20 messages, timeline limit 10: median of 3 %.0f ms (target < 1 s)", float64(initial[1].Microseconds())/1000)
	var empty []time.Duration
	for range 20 {
		start := time.Now()
		if _, err := hc.SyncRequest(ctx, 0, next, filter.FilterID, false, ""); err != nil {
			b.Fatal(err)
		}
		empty = append(empty, time.Since(start))
	}
	slices.Sort(empty)
	b.ReportMetric(testkit.Percentile(empty, 0.5), "incremental-empty-500-rooms-ms")
	b.Logf("incremental sync with nothing new in 500 rooms: p50 %.2f ms", testkit.Percentile(empty, 0.5))
}

// mustHead is the position of the log's last event.
func mustHead(b *testing.B, ctx context.Context, s *testServer) eventlog.Position {
	p, err := eventlog.Last(ctx, s.env.pool, eventlog.Bound{})
	if err != nil {
		b.Fatal(err)
	}
	return p
}
