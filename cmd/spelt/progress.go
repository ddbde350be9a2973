package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progress reports a long operation: a bar with events/s and ETA on a terminal, a plain
// line every few seconds otherwise (logs, CI).
type progress struct {
	w     io.Writer
	tty   bool
	label string
	total int64
	done  int64
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer, label string, total int64) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	p := &progress{w: w, tty: tty, label: label, total: total, start: time.Now()}
	p.draw(false)
	return p
}

func (p *progress) add(n int) {
	p.done += int64(n)
	now := time.Now()
	interval := 2 * time.Second
	if p.tty {
		interval = 100 * time.Millisecond
	}
	if now.Sub(p.last) >= interval {
		p.last = now
		p.draw(false)
	}
}

// finish draws the final state and returns the rate achieved.
func (p *progress) finish() float64 {
	p.draw(true)
	return p.rate()
}

func (p *progress) rate() float64 {
	el := time.Since(p.start).Seconds()
	if el <= 0 {
		return 0
	}
	return float64(p.done) / el
}

func (p *progress) draw(final bool) {
	rate := p.rate()
	pct := 100.0
	if p.total > 0 {
		pct = min(100, 100*float64(p.done)/float64(p.total))
	}
	eta := "-"
	if rate > 0 && p.total > p.done {
		eta = time.Duration(float64(p.total-p.done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	if final {
		eta = time.Since(p.start).Round(time.Millisecond).String()
	}
	if p.tty {
		const width = 30
		filled := int(pct / 100 * width)
		bar := strings.Repeat("#", filled) + strings.Repeat("-", width-filled)
		what := "ETA"
		if final {
			what = "took"
		}
		fmt.Fprintf(p.w, "\r%-20s [%s] %5.1f%% %d/%d events  %.0f events/s  %s %s\x1b[K", p.label, bar, pct, p.done, p.total, rate, what, eta)
		if final {
			fmt.Fprintln(p.w)
		}
		return
	}
	if final {
		fmt.Fprintf(p.w, "%s: done, %d events in %s (%.0f events/s)\n", p.label, p.done, eta, rate)
		return
	}
	fmt.Fprintf(p.w, "%s: %d/%d events (%.1f%%), %.0f events/s, ETA %s\n", p.label, p.done, p.total, pct, rate, eta)
}

// phases shows one progress bar per phase (a projector of a rebuild), each finished
// when the next starts.
type phases struct {
	w     io.Writer
	total int64
	name  string
	bar   *progress
}

func newPhases(w io.Writer, total int64) *phases { return &phases{w: w, total: total} }

func (p *phases) add(name string, n int) {
	if p.bar == nil || name != p.name {
		p.finish()
		p.name, p.bar = name, newProgress(p.w, name, p.total)
	}
	p.bar.add(n)
}

func (p *phases) finish() {
	if p.bar != nil {
		p.bar.finish()
		p.bar = nil
	}
}
