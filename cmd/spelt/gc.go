package main

import (
	"os"
	"runtime/debug"
)

// serverGCPercent is the garbage collector's target for spelt serve: the heap may grow
// to three times what is live before a collection, instead of Go's twice. A
// homeserver's live heap is small and most of its allocations are short-lived request
// garbage, so collecting less often buys CPU for requests. Measured here in the
// benchmarks' process (server and clients): 8 senders in 8 rooms 810 → 967 events/s,
// one sender 299 → 429, peak RSS 104–110 → 139 MiB; 400 gave no more throughput for
// 254 MiB. GOGC in the environment wins.
const serverGCPercent = 200

// tuneGC sets serverGCPercent unless the operator set GOGC.
func tuneGC() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(serverGCPercent)
	}
}
