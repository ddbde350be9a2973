// Command spelt is the Spelt Matrix homeserver: the server, and the operator's tools
// for the database and the event log. It is the composition root: it reads the
// configuration and builds every part by hand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type subcommand struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func subcommands() map[string]subcommand {
	return map[string]subcommand{
		"serve":   {"run the homeserver in the foreground", runServe},
		"migrate": {"apply pending database migrations", runMigrate},
		"replay":  {"rebuild read models (and the write model) from the event log", runReplay},
		"verify":  {"check the event log's hash chains and signed seals", runVerify},
		"version": {"print the version", runVersion},
		"admin":   {"operator commands: registration-token create|list|revoke", runAdmin},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage means the command line was wrong; the usage has been printed.
var errUsage = errors.New("usage")

// errFailed means the command ran and reported its failure itself.
var errFailed = errors.New("failed")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := subcommands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "spelt: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	err := c.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errFailed):
		return 1
	default:
		fmt.Fprintf(stderr, "spelt %s: %v\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer, cmds map[string]subcommand) {
	fmt.Fprintln(w, "Usage: spelt <command> [--config PATH] [options]")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'spelt <command> --help' for a command's options.")
	fmt.Fprintln(w, "The configuration file is --config PATH, else $SPELT_CONFIG, else ./spelt.toml if present;")
	fmt.Fprintln(w, "every key can be overridden by SPELT_<SECTION>_<KEY> (see config/spelt.example.toml).")
}

// newFlags returns a flag set with the --config flag every subcommand takes.
func newFlags(name, synopsis string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("spelt "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (default: $SPELT_CONFIG, else ./spelt.toml if present)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: spelt %s %s\n\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs, cfgPath
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		fs.Usage()
		return errUsage
	}
	return nil
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("version", "", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "spelt %s (Matrix spec v1.13)\n", version)
	return nil
}
