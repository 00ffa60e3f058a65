package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/eventstore"
)

func runEncryptLegacy(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "encrypt-legacy", "encrypt-legacy",
		"One-off migration of customer events written in clear before erasure existed: seals the\n"+
			"personal fields of every plaintext CustomerRegistered, ClientInvited and CustomerUpdated\n"+
			"with the customer's data key (made under LEDGER_KEK), recomputes each rewritten stream's\n"+
			"hash chain, replaces plaintext e-mail and external-ID claims with their HMAC, then rebuilds\n"+
			"every read model. Stop `ledger serve` first. Checks every chain before and after. Hashes\n"+
			"recorded outside the database no longer match the rewritten events. Needs a database role\n"+
			"that may SET session_replication_role (a superuser).")
	if err := parse(fs, args); err != nil {
		return err
	}
	_, pool, keys, log, err := connectMigrated(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := eventstore.New(pool)
	if _, err := store.Verify(ctx, nil); err != nil {
		return fmt.Errorf("before encrypting: %w", err)
	}
	rep, err := commands.New(store, keys, log).EncryptLegacy(ctx)
	if err != nil {
		return err
	}
	if _, err := store.Verify(ctx, nil); err != nil {
		return fmt.Errorf("after encrypting: %w", err)
	}
	if err := rebuildAll(ctx, pool, store, keys, log); err != nil {
		return err
	}
	return json.NewEncoder(env.stdout).Encode(rep)
}

func runErase(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "erase", "erase --list | --reapply [--ids FILE]",
		"--list prints every erased customer's ID (IDs only), one JSON object a line: keep that list\n"+
			"outside the database's backups, beside the KEK.\n"+
			"--reapply, after restoring a backup, makes every erased customer erased again: those with a\n"+
			"CustomerErased event in the restored event store, and those listed in FILE (the output of\n"+
			"--list, or one ID a line) for a backup older than some erasures. Keys are destroyed, claims,\n"+
			"invitations, outbox rows and idempotency records deleted, CustomerErased appended where\n"+
			"missing, then every read model is rebuilt. Run it before serving the restored database.")
	list := fs.Bool("list", false, "print the erased customers' IDs")
	reapply := fs.Bool("reapply", false, "apply every erasure again after a restore")
	idsFile := fs.String("ids", "", "with --reapply: a file of erased customer IDs from --list")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *list == *reapply {
		fmt.Fprintln(env.stderr, "give exactly one of --list and --reapply")
		return errUsage
	}
	_, pool, keys, log, err := connectMigrated(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := eventstore.New(pool)
	cmds := commands.New(store, keys, log)
	if *list {
		erased, err := cmds.ErasedCustomers(ctx)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(env.stdout)
		for _, e := range erased {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	var listed []string
	if *idsFile != "" {
		if listed, err = readIDs(*idsFile); err != nil {
			return err
		}
	}
	rep, err := cmds.ReapplyErasures(ctx, listed)
	if err != nil {
		return err
	}
	if err := rebuildAll(ctx, pool, store, keys, log); err != nil {
		return err
	}
	if err := json.NewEncoder(env.stdout).Encode(rep); err != nil {
		return err
	}
	if len(rep.Unknown) > 0 {
		return fmt.Errorf("%d listed IDs name no customer of this database: %s", len(rep.Unknown), strings.Join(rep.Unknown, ", "))
	}
	return nil
}

// readIDs reads customer IDs, one a line, bare or as --list's JSON objects.
func readIDs(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--ids: %w", err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "{") {
			var e commands.ErasedCustomer
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				return nil, fmt.Errorf("--ids: %w", err)
			}
			line = e.CustomerID
		}
		ids = append(ids, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--ids: %w", err)
	}
	if len(ids) == 0 {
		return nil, errors.New("--ids: the file lists no customer")
	}
	return ids, nil
}
