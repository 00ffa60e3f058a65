package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/migrations"
)

func runMigrate(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "migrate", "migrate", "Applies pending database migrations (embedded in the binary) and exits.\nSafe to run from several processes at once.")
	if err := parse(fs, args); err != nil {
		return err
	}
	_, pool, log, err := connect(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrations.Apply(ctx, pool, log); err != nil {
		return err
	}
	fmt.Fprintln(env.stderr, "migrations: up to date")
	return nil
}

func runVerify(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "verify", "verify [--checkpoint FILE... [--key KEY]]",
		"Walks every stream's hash chain, each tenant's events in commit order. Exits 0 when every\nchain is intact; otherwise exits 1 naming the first broken event.\n\n"+
			"With --checkpoint (repeatable; further arguments are more checkpoint files), also checks each\n"+
			"signed checkpoint of the ledger log: its signature, and that the tenant's tree recomputed from\n"+
			"the events themselves (never from stored tree nodes) has the checkpoint's root at its size, so\n"+
			"today's log extends it. Exits 1 naming the first event (position, stream, version) that differs.")
	var cps stringList
	fs.Var(&cps, "checkpoint", "a `FILE` holding a signed checkpoint kept from ledger checkpoint or GET /v1/ledger/checkpoint (repeatable)")
	key := fs.String("key", "", "the verifier `KEY` (or a file holding it) from GET /v1/ledger/public-key;\ndefault: the service's own signing key's")
	// Further checkpoint files may come between flags, as the synopsis
	// writes them (--checkpoint A B --key KEY): the flag package stops at
	// the first argument that is not one.
	var files []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errUsage
		}
		rest = fs.Args()
		for len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			files, rest = append(files, rest[0]), rest[1:]
		}
		if len(rest) == 0 {
			break
		}
	}
	if len(cps) > 0 {
		cps = append(cps, files...)
	} else if len(files) > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", files)
		return errUsage
	} else if *key != "" {
		fmt.Fprintln(fs.Output(), "--key checks checkpoints: give them with --checkpoint")
		return errUsage
	}
	cfg, pool, _, err := connect(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := eventstore.New(pool)
	progress := newProgress(env, "verify", "events", -1)
	rep, err := store.Verify(ctx, func(n int64) { progress.set(n) })
	progress.done()
	var broken *eventstore.BrokenChainError
	if errors.As(err, &broken) {
		return fmt.Errorf("FAILED: %w", broken)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "OK: %d events in %d streams, every hash chain intact\n", rep.Events, rep.Streams)
	if len(cps) > 0 {
		return verifyCheckpoints(ctx, env, cfg, pool, *key, cps)
	}
	return nil
}
