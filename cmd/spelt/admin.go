package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/projections"
	"spelt.dev/spelt/queries"
)

const adminUsage = `registration-token create [--token T] [--uses N] [--expires RFC3339-TIME]
       spelt admin registration-token list
       spelt admin registration-token revoke TOKEN
       spelt admin reports list [--limit N]`

// runAdmin is `spelt admin`: operator commands that go through the same commands (and
// so the same events) as the admin HTTP API.
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// Words and flags may come in any order; every flag takes a value.
	var words, flags []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-h" || a == "--help" || a == "-help":
			fmt.Fprintf(stderr, "Usage: spelt admin %s\n\nEvery form takes --config PATH.\n", adminUsage)
			return nil
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			words = append(words, a)
		}
	}
	if len(words) == 2 && words[0] == "reports" && words[1] == "list" {
		return runAdminReports(ctx, flags, stdout, stderr)
	}
	if len(words) < 2 || words[0] != "registration-token" {
		fmt.Fprintf(stderr, "Usage: spelt admin %s\n", adminUsage)
		return errUsage
	}
	verb, positional := words[1], words[2:]
	fs, cfgPath := newFlags("admin registration-token "+verb, "", stderr)
	token := fs.String("token", "", "create: the token (default: random)")
	uses := fs.Int("uses", -1, "create: how many registrations it allows (default: unlimited)")
	expires := fs.String("expires", "", "create: when it expires (RFC 3339; default: never)")
	if err := parse(fs, flags); err != nil {
		return err
	}
	switch verb {
	case "create", "list":
		if len(positional) > 0 {
			fmt.Fprintf(stderr, "unexpected arguments: %v\n", positional)
			return errUsage
		}
	case "revoke":
		if len(positional) != 1 {
			fmt.Fprintln(stderr, "revoke needs the token: spelt admin registration-token revoke TOKEN")
			return errUsage
		}
	default:
		fmt.Fprintf(stderr, "unknown action %q\nUsage: spelt admin %s\n", verb, adminUsage)
		return errUsage
	}
	var expiry *time.Time
	if *expires != "" {
		t, err := time.Parse(time.RFC3339, *expires)
		if err != nil {
			fmt.Fprintf(stderr, "--expires %q is not an RFC 3339 time\n", *expires)
			return errUsage
		}
		expiry = &t
	}

	e, err := open(ctx, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.requireSchema(ctx); err != nil {
		return err
	}
	cmds := commands.New(e.pool, eventlog.New(e.logger, nil), commands.Config{ServerName: e.cfg.ServerName}, e.logger)
	runner := projections.NewRunner(e.pool, nil, e.logger, projections.All(e.cfg.ServerName)...)
	meta := eventlog.Metadata{Origin: eventlog.OriginAdmin, Actor: "spelt admin"}
	q := queries.New(e.pool)
	switch verb {
	case "create":
		var usesAllowed *int32
		if *uses >= 0 {
			n := int32(*uses)
			usesAllowed = &n
		}
		tok, _, err := cmds.CreateRegistrationToken(ctx, meta, *token, usesAllowed, expiry)
		if err != nil {
			return err
		}
		_ = eventlog.Announce(ctx, e.pool)
		fmt.Fprintln(stdout, tok)
		return nil
	case "revoke":
		if _, err := cmds.RevokeRegistrationToken(ctx, meta, positional[0]); err != nil {
			if errors.Is(err, commands.ErrNotFound) {
				return fmt.Errorf("no registration token %q", positional[0])
			}
			return err
		}
		_ = eventlog.Announce(ctx, e.pool)
		fmt.Fprintf(stdout, "revoked %s\n", positional[0])
		return nil
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := runner.CatchUp(waitCtx, "registration_tokens"); err != nil {
		return err
	}
	list, err := q.RegistrationTokens(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOKEN\tUSES ALLOWED\tPENDING\tCOMPLETED\tEXPIRES\tVALID")
	now := time.Now()
	for _, t := range list {
		allowed, exp := "unlimited", "never"
		if t.UsesAllowed != nil {
			allowed = strconv.Itoa(int(*t.UsesAllowed))
		}
		if t.ExpiryTime != nil {
			exp = t.ExpiryTime.UTC().Format(time.RFC3339)
		}
		valid := commands.RegistrationTokenUsable(t.Revoked, t.UsesAllowed, t.Pending, t.Completed, t.ExpiryTime, now)
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%v\n", t.Token, allowed, t.Pending, t.Completed, exp, valid)
	}
	return w.Flush()
}

// runAdminReports is `spelt admin reports list`: the reports users filed about rooms
// and events, newest first.
func runAdminReports(ctx context.Context, flags []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("admin reports list", "", stderr)
	limit := fs.Int("limit", 100, "how many reports to list, newest first")
	if err := parse(fs, flags); err != nil {
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
	runner := projections.NewRunner(e.pool, nil, e.logger, projections.All(e.cfg.ServerName)...)
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := runner.CatchUp(waitCtx, "rooms"); err != nil {
		return err
	}
	list, err := queries.New(e.pool).Reports(ctx, *limit)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tREPORTED\tREPORTER\tROOM\tEVENT\tSCORE\tREASON")
	for _, r := range list {
		score, event := "-", r.EventID
		if r.Score != nil {
			score = strconv.Itoa(int(*r.Score))
		}
		if event == "" {
			event = "(room)"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%q\n", r.ID, r.ReportedAt.UTC().Format(time.RFC3339), r.Reporter, r.RoomID, event, score, r.Reason)
	}
	return w.Flush()
}
