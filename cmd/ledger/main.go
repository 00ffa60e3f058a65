// Command ledger is the assignment ledger's one binary: it serves the API,
// migrates the database, bootstraps tenants, rebuilds projections, verifies
// the hash chains and replays a customer's history for auditors.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv carries the process's outside world so commands stay testable.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
	// isTerminal reports whether stderr is a terminal (progress bars).
	isTerminal bool
}

// errUsage marks a usage error already explained to the user (exit 2).
var errUsage = errors.New("usage")

func subcommands() []command {
	return []command{
		{"serve", "serve the HTTP API (applies pending migrations first)", runServe},
		{"project", "run the projections and the outbox relay without serving the API", runProject},
		{"migrate", "apply pending database migrations and exit", runMigrate},
		{"bootstrap", "create a tenant, its first admin and an API key", runBootstrap},
		{"rebuild", "rebuild one projection or all of them while the service keeps serving", runRebuild},
		{"verify", "check every stream's hash chain, and the ledger log against kept checkpoints", runVerify},
		{"checkpoint", "print a tenant's latest signed checkpoint of its ledger log", runCheckpoint},
		{"verify-export", "check an audit export with proofs against the ledger log's key, with no database", runVerifyExport},
		{"erase", "list erased customers, or apply every erasure again after restoring a backup", runErase},
		{"encrypt-legacy", "seal customer events written in clear before erasure existed (one-off)", runEncryptLegacy},
		{"history", "replay a customer's assignment history from the event store", runHistory},
		{"tenants", "list the tenants and their IDs (the --tenant of history)", runTenants},
		{"mailsink", "a local SMTP server that writes e-mails to .eml files (make run)", runMailsink},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: ledger <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range subcommands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Environment: DATABASE_URL (required), LEDGER_ADDR (default 127.0.0.1:8080),")
	fmt.Fprintln(w, "LEDGER_BASE_URL (invitation links; default http://LEDGER_ADDR), LEDGER_LOG_LEVEL (debug|info|warn|error),")
	fmt.Fprintln(w, "LEDGER_SMTP_URL (smtp://user:pass@host:port or smtps://...) and LEDGER_MAIL_FROM (both turn e-mail on),")
	fmt.Fprintln(w, "LEDGER_SIGNING_KEY_FILE (the ledger log's signing key) and LEDGER_CHECKPOINT_INTERVAL (default 1h).")
	fmt.Fprintln(w, "Run 'ledger <command> --help' for a command's flags. `make run` prints the DATABASE_URL it uses;")
	fmt.Fprintln(w, "'ledger tenants' lists the tenant IDs that 'ledger history --tenant' takes.")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.LookupEnv, isTerminal: isTerminal(os.Stderr)}
	os.Exit(run(ctx, env, os.Args[1:]))
}

func run(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range subcommands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(env.stderr, "ledger %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(env.stderr, "ledger: unknown command %q\n\n", args[0])
	usage(env.stderr)
	return 2
}

// newFlags makes a flag set whose --help prints the command's usage.
func newFlags(env *cliEnv, name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		out := env.stdout
		fmt.Fprintf(out, "Usage: ledger %s\n\n%s\n", synopsis, description)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(out, "\nFlags:")
			printFlags(out, fs)
		}
	}
	return fs
}

// printFlags lists fs's flags as the usage lines spell them (--name; the
// flag package prints -name, though it takes both).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// parse parses flags, turning a parse error into errUsage (already printed).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		return errUsage
	}
	return nil
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: readableDurations}))
}

// readableDurations logs durations as "422.867ms" rather than JSON's raw
// nanoseconds ("took":422867324).
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
