package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/internal/config"
	"github.com/assignment-ledger/ledger/ledgerlog"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func runCheckpoint(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "checkpoint", "checkpoint --tenant ID [--json]",
		"Prints the tenant's latest signed checkpoint of its ledger log (a signed note in the C2SP\n"+
			"tlog-checkpoint format), signing one first when the tree has grown since the last. Keep the\n"+
			"output: `ledger verify --checkpoint FILE` later proves the log still extends it.")
	tenant := fs.String("tenant", "", "the tenant's `ID` (ledger tenants lists them)")
	asJSON := fs.Bool("json", false, "print the checkpoint as JSON (origin, tree_size, root_hash, position, signed_at, note)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *tenant == "" {
		fmt.Fprintln(env.stderr, "--tenant is required")
		return errUsage
	}
	if !isUUIDText(*tenant) {
		// A usage error, as in ledger history, and found before connecting.
		fmt.Fprintf(env.stderr, "--tenant %q is not a tenant ID\n", *tenant)
		return errUsage
	}
	cfg, pool, _, log, err := connectMigrated(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	key, err := cfg.SigningKey(log)
	if err != nil {
		return err
	}
	var known bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM tenants WHERE id = $1::uuid)`, *tenant).Scan(&known); err != nil {
		return err
	}
	if !known {
		return fmt.Errorf("no tenant %s (`ledger tenants` lists them)", *tenant)
	}
	l := ledgerlog.New(pool, key, cfg.BaseURL, log)
	// Signed here rather than by Latest, which answers the last checkpoint
	// signed when the tree cannot be: asked for one, say why not.
	if _, err := l.Sign(ctx, *tenant); err != nil && !errors.Is(err, ledgerlog.ErrNoTree) {
		return err
	}
	cp, err := l.Latest(ctx, *tenant)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.stdout).Encode(cp)
	}
	_, err = fmt.Fprint(env.stdout, cp.Note)
	return err
}

func isUUIDText(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case !strings.ContainsRune("0123456789abcdefABCDEF", r):
			return false
		}
	}
	return true
}

// verifierKey is the key that checks checkpoints: --key (a verifier key,
// or a file holding one), else the service's own signing key's.
func verifierKey(cfg config.Config, flagValue string) (string, error) {
	if flagValue != "" {
		return keyArg(flagValue)
	}
	path := cfg.SigningKeyFile
	if path == "" {
		dir := filepath.Dir(cfg.KEKFile)
		if cfg.KEKFile == "" {
			kek, err := config.DefaultKEKFile()
			if err != nil {
				return "", fmt.Errorf("no --key and no signing key: %w", err)
			}
			dir = filepath.Dir(kek)
		}
		path = filepath.Join(dir, "signing-key")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("no --key, and the service's signing key cannot be read: %w", err)
	}
	k, err := ledgerlog.ParseKey(string(b))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return k.Verifier, nil
}

// keyArg is what --key gives: a verifier key, or a file holding one. A
// value that is neither (a mistyped path) is said so, rather than taken
// for a key that then fails every check it is used in.
func keyArg(value string) (string, error) {
	key := strings.TrimSpace(value)
	b, rerr := os.ReadFile(value)
	if rerr == nil {
		key = strings.TrimSpace(string(b))
	}
	if err := ledgerlog.CheckVerifierKey(key); err != nil {
		if rerr != nil {
			return "", fmt.Errorf("--key %q is neither a file that can be read (%v) nor a verifier key (GET /v1/ledger/public-key answers one)", value, rerr)
		}
		return "", fmt.Errorf("--key file %s holds no verifier key: %w", value, err)
	}
	return key, nil
}

// verifyCheckpoints checks each checkpoint file against the events.
func verifyCheckpoints(ctx context.Context, env *cliEnv, cfg config.Config, pool *pgxpool.Pool, key string, files []string) error {
	vkey, err := verifierKey(cfg, key)
	if err != nil {
		return err
	}
	notes := make([][]byte, len(files))
	for i, f := range files {
		if notes[i], err = os.ReadFile(f); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	done, err := ledgerlog.VerifyCheckpoints(ctx, pool, vkey, notes)
	for _, v := range done {
		fmt.Fprintf(env.stdout, "OK: tenant %s: its first %d events are the checkpoint's tree, and its %d events today extend it\n",
			v.TenantID, v.Size, v.Now)
	}
	var mismatch *ledgerlog.MismatchError
	var stored *ledgerlog.StoredTreeError
	if errors.As(err, &mismatch) || errors.As(err, &stored) {
		return fmt.Errorf("FAILED: %w", err)
	}
	return err
}

func runVerifyExport(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "verify-export", "verify-export FILE|- --key KEY",
		"Checks an audit export with proofs (GET /v1/audit?proofs=true, NDJSON) with no database: the\n"+
			"checkpoint's signature, every event's hash from its hashed bytes, its inclusion in the\n"+
			"checkpoint's tree, that its readable fields say what the hashed bytes say (its actor and\n"+
			"correlation ID too; events whose personal fields are sealed are checked on their customer ID,\n"+
			"and counted), that the header's origin, tree size and root hash are the signed checkpoint's,\n"+
			"and, for an export of the whole log, that no leaf is missing. A line's position and erased flag\n"+
			"are the store's, covered by no hash; the header's complete flag is not signed: an export asked\n"+
			"for unfiltered must report the whole log. FILE - reads the export from standard input.\n"+
			"Exits 1 naming the first line that does not verify.")
	key := fs.String("key", "", "the verifier key from GET /v1/ledger/public-key, or a file holding it (required)")
	// FILE may come before the flags, as the synopsis writes it.
	var file string
	if len(args) > 0 && (args[0] == "-" || !strings.HasPrefix(args[0], "-")) {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		return errUsage
	}
	if file == "" || *key == "" {
		fmt.Fprintln(env.stderr, "want an export FILE and --key")
		return errUsage
	}
	vkey, err := keyArg(*key)
	if err != nil {
		return err
	}
	in, name := env.stdin, "standard input"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, file
	}
	rep, err := ledgerlog.VerifyExport(in, vkey)
	if err != nil {
		return fmt.Errorf("FAILED: %s: %w", name, err)
	}
	whole := "not the whole log: a filtered or time-range export, and nothing signed says which leaves it should hold"
	if rep.Complete {
		whole = "the whole log, no leaf missing"
	}
	fmt.Fprintf(env.stdout, "OK: %d events of %s, in its signed tree of %d (%s); %d with sealed personal fields checked on their IDs\n",
		rep.Events, rep.Origin, rep.TreeSize, whole, rep.Sealed)
	return nil
}
