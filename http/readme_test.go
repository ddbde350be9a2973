package http

import (
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeEndpointTable keeps the README honest: every spec endpoint it marks done is
// routed, and every routed spec endpoint is marked done.
func TestReadmeEndpointTable(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| (client-server|server-server) \\| (GET|POST|PUT|DELETE) \\| `([^`]+)`[^|]*\\| ([a-z ]+) \\|$")
	listed := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			listed[m[2]+" "+m[3]] = m[4]
		}
	}
	if len(listed) != 195 {
		t.Errorf("README lists %d endpoints, the spec (v1.13) has 195", len(listed))
	}
	s := New(Config{MaxBodyBytes: 1024}, nil, nil, nil, slog.New(slog.DiscardHandler))
	routed := map[string]bool{}
	for _, r := range s.echo.Routes() {
		// Echo writes path parameters as :name; the spec as {name}.
		path := regexp.MustCompile(`:([A-Za-z]+)`).ReplaceAllString(r.Path, "{$1}")
		path = strings.Replace(path, "/state/{eventType}/*", "/state/{eventType}/{stateKey}", 1)
		routed[r.Method+" "+path] = true
	}
	for ep, status := range listed {
		// The spec lists a second operation of one route with a trailing space (the
		// third-party form of /invite); the route is the same.
		ep := strings.TrimSpace(ep)
		if status == "done" && !routed[ep] {
			t.Errorf("README marks %s done, but it is not routed", ep)
		}
		if status != "done" && status != "partial" && routed[ep] {
			t.Errorf("%s is routed, but README says %q", ep, status)
		}
		if status == "partial" && !routed[ep] {
			t.Errorf("README marks %s partial, but it is not routed", ep)
		}
	}
}
