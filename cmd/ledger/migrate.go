package main

import (
	"context"
	"errors"
	"fmt"

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
	fs := newFlags(env, "verify", "verify", "Walks every stream's hash chain in constant memory. Exits 0 when every chain is intact;\notherwise exits 1 naming the first broken event.")
	if err := parse(fs, args); err != nil {
		return err
	}
	_, pool, _, err := connect(ctx, env)
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
	return nil
}
