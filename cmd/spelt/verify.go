package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/signingkey"
)

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("verify", "[--config PATH]", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	e, err := open(ctx, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.requireSchema(ctx); err != nil {
		return err
	}
	key, err := signingkey.Load(e.cfg.SigningKeyPath())
	if err != nil {
		return err
	}
	total, err := eventlog.Count(ctx, e.pool, eventlog.Position{}, eventlog.Bound{})
	if err != nil {
		return err
	}
	p := newProgress(stderr, "verify", total)
	last := int64(0)
	rep, err := eventlog.Verify(ctx, e.pool, map[string]ed25519.PublicKey{key.ID: key.Public()}, func(n int64) {
		p.add(int(n - last))
		last = n
	})
	p.add(int(rep.Events - last))
	p.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d events in %d streams, %d seals, %d events after the last seal\n",
		rep.Events, rep.Streams, rep.Seals, rep.Unsealed)
	if len(rep.Problems) == 0 {
		fmt.Fprintln(stdout, "OK: every hash chain and seal checks out")
		return nil
	}
	fmt.Fprintf(stdout, "FAILED: %d problem(s); the first:\n  %s\n", len(rep.Problems), rep.Problems[0])
	for _, pr := range rep.Problems[1:] {
		fmt.Fprintf(stdout, "  %s\n", pr)
	}
	return errFailed
}
