package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/projections"
)

func runRebuild(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "rebuild", "rebuild NAME|all",
		"Rebuilds a projection (or all) from the event store beside the live tables, then swaps\n"+
			"them in one short transaction; a running `ledger serve` keeps answering throughout.\n"+
			"Progress counts event reads: each derived projection reads every event and the customer\n"+
			"projections share one read, so rebuilding several counts an event more than once.\n"+
			"The customer projections (my_clients, customer_list, assignment_intervals) are rebuilt\n"+
			"together: naming one rebuilds all three.\n"+
			"Projections: "+strings.Join(projections.AllNames(), ", "))
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	target := fs.Arg(0)
	if target != "all" && !slices.Contains(projections.AllNames(), target) {
		fmt.Fprintf(env.stderr, "unknown projection %q; choose one of: %s, all\n",
			target, strings.Join(projections.AllNames(), ", "))
		return errUsage
	}
	cfg, pool, log, err := connect(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	keys, err := cfg.Keyring(log)
	if err != nil {
		return err
	}
	runner, err := projections.New(pool, eventstore.New(pool), keys, log)
	if err != nil {
		return err
	}
	// "all" is rebuilt in one pass over the events, not one pass each.
	start := time.Now()
	bar := newProgress(env, "rebuild "+target, "event reads", -1)
	err = runner.Rebuild(ctx, target, func(done, total int64) {
		if total > 0 && total != bar.total {
			bar.setTotal(total)
		}
		bar.set(done)
	})
	bar.done()
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", target, err)
	}
	fmt.Fprintf(env.stdout, "rebuilt %s in %s\n", target, time.Since(start).Round(time.Millisecond))
	return nil
}
