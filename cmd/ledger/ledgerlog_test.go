package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	commandspkg "github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/ledgerlog"
)

// leafRow is one event of the tenant in commit order.
type leafRow struct {
	position int64
	stream   string
	version  int64
	txid     string
	hash     []byte
}

// insider is a tenant with a checkpoint kept outside the database, and a
// superuser's access to the database.
type insider struct {
	ctx      context.Context
	pool     *pgxpool.Pool
	store    *eventstore.Store
	vars     map[string]string
	tenant   string
	userID   string
	cust     []string
	cpFile   string
	keyFile  string
	original []leafRow
}

func newInsider(t *testing.T) *insider {
	t.Helper()
	dsn := testdb.NewURL(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := eventstore.New(pool)
	cmds := commandspkg.New(store, testdb.Keyring(t), log)
	boot, err := cmds.Bootstrap(ctx, "Acme", "Ann Admin", "ann@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	m := commandspkg.Meta{TenantID: boot.TenantID, Actor: domain.Actor{UserID: boot.UserID, Name: "Ann Admin", Role: domain.RoleAdmin}}
	bob, err := cmds.CreateUser(ctx, m, "Bob Baker", "bob@acme.example", domain.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	in := &insider{ctx: ctx, pool: pool, store: store, tenant: boot.TenantID, userID: boot.UserID}
	for i := range 3 {
		c, err := cmds.RegisterCustomer(ctx, m, domain.Profile{FirstName: fmt.Sprintf("C%d", i), Email: fmt.Sprintf("c%d@client.example", i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cmds.AssignUser(ctx, m, c.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		in.cust = append(in.cust, c.ID)
	}
	if _, err := cmds.AssignUser(ctx, m, in.cust[0], boot.UserID); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in.keyFile = filepath.Join(dir, "signing-key")
	if _, _, err := ledgerlog.LoadOrCreateKey(in.keyFile, "ledger.example"); err != nil {
		t.Fatal(err)
	}
	in.vars = map[string]string{"DATABASE_URL": dsn, "LEDGER_SIGNING_KEY_FILE": in.keyFile, "LEDGER_BASE_URL": "https://ledger.example"}
	in.buildTree(t)
	out, _ := in.mustRun(t, 0, "checkpoint", "--tenant", in.tenant)
	in.cpFile = filepath.Join(dir, "checkpoint")
	if err := os.WriteFile(in.cpFile, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	in.original = in.commitOrder(t)
	if !strings.HasPrefix(out, "https://ledger.example/tenants/"+in.tenant+"\n"+fmt.Sprint(len(in.original))+"\n") {
		t.Fatalf("checkpoint of %d events printed %q", len(in.original), out)
	}
	in.mustRun(t, 0, "verify", "--checkpoint", in.cpFile)
	return in
}

// commands are the service's commands over the insider's database, and the
// admin's meta.
func (in *insider) commands(t *testing.T) (*commandspkg.Commands, commandspkg.Meta) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return commandspkg.New(in.store, testdb.Keyring(t), log),
		commandspkg.Meta{TenantID: in.tenant, Actor: domain.Actor{UserID: in.userID, Name: "Ann Admin", Role: domain.RoleAdmin}}
}

// keepCheckpoint builds the tree over today's events and keeps a checkpoint
// of it in a file named name.
func (in *insider) keepCheckpoint(t *testing.T, name string) string {
	t.Helper()
	in.buildTree(t)
	out, _ := in.mustRun(t, 0, "checkpoint", "--tenant", in.tenant)
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// buildTree builds the tree as the projections keep it (no runner runs in
// this process): a rebuild takes the events committed below every open
// transaction of the cluster, which other tests' may hold back for a
// while, so it is repeated until every event of the tenant is a leaf.
func (in *insider) buildTree(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		in.mustRun(t, 0, "rebuild", "ledger_tree")
		var missing bool
		if err := in.pool.QueryRow(in.ctx, `SELECT EXISTS (SELECT FROM events e WHERE e.tenant_id = $1
			AND NOT EXISTS (SELECT FROM ledger_leaves l WHERE l.position = e.position))`, in.tenant).Scan(&missing); err != nil {
			t.Fatal(err)
		}
		if !missing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the tree never took in every event")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (in *insider) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	env, out, errOut := testEnv(in.vars)
	code := run(in.ctx, env, args)
	return code, out.String(), errOut.String()
}

func (in *insider) mustRun(t *testing.T, want int, args ...string) (string, string) {
	t.Helper()
	code, out, errOut := in.run(t, args...)
	if code != want {
		t.Fatalf("ledger %s: exit %d, want %d; out %q, err %q", strings.Join(args, " "), code, want, out, errOut)
	}
	return out, errOut
}

func (in *insider) commitOrder(t *testing.T) []leafRow {
	t.Helper()
	// ORDER BY e.transaction_id: the select list's transaction_id::text is
	// named transaction_id too, and an ORDER BY of that name sorts the
	// text, which puts 10000 before 9999.
	rows, err := in.pool.Query(in.ctx, `SELECT e.position, e.stream_id::text, e.stream_version, e.transaction_id::text, e.hash FROM events e
		WHERE e.tenant_id = $1 ORDER BY e.transaction_id, e.position`, in.tenant)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (leafRow, error) {
		var l leafRow
		return l, r.Scan(&l.position, &l.stream, &l.version, &l.txid, &l.hash)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// asSuperuser runs sql with the append-only trigger bypassed.
func (in *insider) asSuperuser(t *testing.T, sql string, args ...any) {
	t.Helper()
	err := pgx.BeginFunc(in.ctx, in.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(in.ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		_, err := tx.Exec(in.ctx, sql, args...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rechain recomputes a stream's hash chain and head, as RewriteStream does
// for `ledger encrypt-legacy`.
func (in *insider) rechain(t *testing.T, stream string) {
	t.Helper()
	n, err := in.store.RewriteStream(in.ctx, stream, func(e eventstore.Event) (eventstore.Rewrite, error) {
		return eventstore.Rewrite{SchemaVersion: e.SchemaVersion, Data: e.Data, Changed: e.Version == 1}, nil
	}, nil)
	if err != nil || n != 1 {
		t.Fatalf("rechain %s: %d, %v", stream, n, err)
	}
}

// renameUser rewrites the user's first event to name them Mallory and
// recomputes the stream's hash chain, as an insider with the database
// would: plain `ledger verify` then passes.
func (in *insider) renameUser(t *testing.T) {
	t.Helper()
	_, err := in.store.RewriteStream(in.ctx, in.userID, func(e eventstore.Event) (eventstore.Rewrite, error) {
		if e.Version != 1 {
			return eventstore.Rewrite{}, nil
		}
		var d map[string]any
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return eventstore.Rewrite{}, err
		}
		d["name"] = "Mallory"
		data, err := json.Marshal(d)
		return eventstore.Rewrite{SchemaVersion: e.SchemaVersion, Data: data, Changed: true}, err
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

// caught checks that plain `ledger verify` passes (every chain was
// recomputed) and `ledger verify --checkpoint` fails naming the first event
// that differs from the checkpointed log.
func (in *insider) caught(t *testing.T) {
	t.Helper()
	now := in.commitOrder(t)
	i := 0
	for i < len(now) && i < len(in.original) && now[i].position == in.original[i].position && bytes.Equal(now[i].hash, in.original[i].hash) {
		i++
	}
	if i == len(now) && i == len(in.original) {
		t.Fatal("the tampering changed nothing")
	}
	want := fmt.Sprintf("leaf %d", i)
	if i < len(now) {
		want = fmt.Sprintf("event position %d (stream %s, version %d), leaf %d", now[i].position, now[i].stream, now[i].version, i)
	}
	out, _ := in.mustRun(t, 0, "verify")
	if !strings.Contains(out, "every hash chain intact") {
		t.Fatalf("plain verify: %q", out)
	}
	_, errOut := in.mustRun(t, 1, "verify", "--checkpoint", in.cpFile)
	if !strings.Contains(errOut, "differ from the checkpoint") || !strings.Contains(errOut, want) {
		t.Fatalf("verify --checkpoint said %q, want it to name %s", errOut, want)
	}
}

func TestVerifyCheckpointCatchesARewrittenEvent(t *testing.T) {
	t.Parallel()
	in := newInsider(t)
	in.renameUser(t)
	in.caught(t)
}

func TestVerifyCheckpointCatchesADeletedEvent(t *testing.T) {
	t.Parallel()
	in := newInsider(t)
	// The second customer's last event (its assignment), not the tenant's last.
	in.asSuperuser(t, `DELETE FROM events WHERE stream_id = $1 AND stream_version = 2`, in.cust[1])
	in.asSuperuser(t, `UPDATE streams SET version = version - 1 WHERE stream_id = $1`, in.cust[1])
	in.rechain(t, in.cust[1])
	in.caught(t)
}

func TestVerifyCheckpointCatchesAnInsertedEvent(t *testing.T) {
	t.Parallel()
	in := newInsider(t)
	// A copy of the first customer's registration as a new last version,
	// dated back into the first customer's registration transaction.
	in.asSuperuser(t, `INSERT INTO events (tenant_id, stream_id, stream_version, type, schema_version, data, metadata, recorded_at,
			transaction_id, prev_hash, hash)
		SELECT e.tenant_id, e.stream_id, s.version + 1, e.type, e.schema_version, e.data, e.metadata, e.recorded_at,
			e.transaction_id, e.hash, e.hash
		FROM events e JOIN streams s USING (stream_id) WHERE e.stream_id = $1 AND e.stream_version = 1`, in.cust[0])
	in.asSuperuser(t, `UPDATE streams SET version = version + 1 WHERE stream_id = $1`, in.cust[0])
	in.rechain(t, in.cust[0])
	in.caught(t)
}

func TestVerifyCheckpointCatchesSwappedLeaves(t *testing.T) {
	t.Parallel()
	in := newInsider(t)
	a, b := in.original[2], in.original[len(in.original)-2]
	if a.txid == b.txid {
		t.Fatal("want events of two transactions")
	}
	// Each stream's chain is untouched: only the commit order changes.
	in.asSuperuser(t, `UPDATE events SET transaction_id = CASE position WHEN $1 THEN $4::text::xid8 ELSE $3::text::xid8 END
		WHERE position IN ($1, $2)`, a.position, b.position, a.txid, b.txid)
	in.caught(t)
}

func TestVerifyCheckpointTellsATamperedTreeFromTheEvents(t *testing.T) {
	t.Parallel()
	in := newInsider(t)
	// Stored hash 3 is leaf 2's hash: bytes 64 to 95 of the tile at level
	// 0, number 0.
	in.asSuperuser(t, `UPDATE ledger_tiles SET hashes = overlay(hashes placing sha256('forged') from 65 for 32)
		WHERE tenant_id = $1 AND level = 0 AND n = 0`, in.tenant)
	in.mustRun(t, 0, "verify")
	_, errOut := in.mustRun(t, 1, "verify", "--checkpoint", in.cpFile)
	if !strings.Contains(errOut, "the events match the checkpoints, but the stored tree") || !strings.Contains(errOut, "stored hash 3 ") {
		t.Fatalf("verify --checkpoint on a tampered tree said %q", errOut)
	}
	// Rebuilt from the events, the tree matches again.
	in.buildTree(t)
	in.mustRun(t, 0, "verify", "--checkpoint", in.cpFile)
}

// TestVerifyCheckpointsNameAnEventPastTheOlderOne: an event deleted after
// an older checkpoint but before a newer one is named by the newer one
// whatever the order the files are given in (found by hostile testing: the
// older one was checked, then the stored tree, which was blamed, and the
// advice was to rebuild it: the one record of the original event). Given
// the older checkpoint alone, nothing proves which of the events and the
// stored tree changed, and the message says so.
func TestVerifyCheckpointsNameAnEventPastTheOlderOne(t *testing.T) {
	t.Parallel()
	in := newInsider(t)
	cmds, m := in.commands(t)
	late, err := cmds.RegisterCustomer(in.ctx, m, domain.Profile{FirstName: "Late", Email: "late@client.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmds.AssignUser(in.ctx, m, late.ID, in.userID); err != nil {
		t.Fatal(err)
	}
	if _, err := cmds.RegisterCustomer(in.ctx, m, domain.Profile{FirstName: "Later", Email: "later@client.example"}); err != nil {
		t.Fatal(err)
	}
	newer := in.keepCheckpoint(t, "newer")
	in.original = in.commitOrder(t)
	in.asSuperuser(t, `DELETE FROM events WHERE stream_id = $1 AND stream_version = 2`, late.ID)
	in.asSuperuser(t, `UPDATE streams SET version = version - 1 WHERE stream_id = $1`, late.ID)
	in.rechain(t, late.ID)

	for _, files := range [][]string{{in.cpFile, newer}, {newer, in.cpFile}} {
		_, errOut := in.mustRun(t, 1, append([]string{"verify", "--checkpoint"}, files...)...)
		if !strings.Contains(errOut, "differ from the checkpoint") || strings.Contains(errOut, "rebuild") {
			t.Errorf("verify --checkpoint %v said %q, want the newer checkpoint's mismatch", files, errOut)
		}
	}
	// The older checkpoint alone proves the events only up to its size;
	// the stored tree, a leaf longer than the events, says one was removed.
	_, errOut := in.mustRun(t, 1, "verify", "--checkpoint", in.cpFile)
	if !strings.Contains(errOut, "the events only") || !strings.Contains(errOut, "were removed") || !strings.Contains(errOut, "Do not rebuild") {
		t.Errorf("verify --checkpoint with the older one alone said %q", errOut)
	}
	in.cpFile = newer
	in.caught(t)
}

// The newest events removed, past every checkpoint kept: the stored tree,
// built from the events, still holds their leaves, and never runs ahead of
// the events, so verify --checkpoint says events were removed.
func TestVerifyCheckpointCatchesTheNewestEventsRemoved(t *testing.T) {
	t.Parallel()
	in := newInsider(t)
	cmds, m := in.commands(t)
	late, err := cmds.RegisterCustomer(in.ctx, m, domain.Profile{FirstName: "Late", Email: "late@client.example"})
	if err != nil {
		t.Fatal(err)
	}
	in.buildTree(t)
	in.asSuperuser(t, `DELETE FROM events WHERE stream_id = $1`, late.ID)
	in.asSuperuser(t, `DELETE FROM streams WHERE stream_id = $1`, late.ID)
	out, _ := in.mustRun(t, 0, "verify")
	if !strings.Contains(out, "every hash chain intact") {
		t.Fatalf("plain verify: %q", out)
	}
	_, errOut := in.mustRun(t, 1, "verify", "--checkpoint", in.cpFile)
	n := len(in.original)
	if !strings.Contains(errOut, fmt.Sprintf("holds %d leaves, the events only %d, and they differ from leaf %d on", n+1, n, n)) || !strings.Contains(errOut, "Do not rebuild") {
		t.Fatalf("verify --checkpoint said %q", errOut)
	}
}

// An insider rewrites an event, recomputes its chain and rebuilds the
// stored tree from the forged events: the log must not sign a checkpoint
// that does not extend the one it signed before (two histories, both
// vouched for), whether asked by the CLI, the API's latest checkpoint or
// the periodic signer.
func TestNoCheckpointSignedThatContradictsAnEarlierOne(t *testing.T) {
	t.Parallel()
	in := newInsider(t)
	in.renameUser(t)
	cmds, m := in.commands(t)
	if _, err := cmds.RegisterCustomer(in.ctx, m, domain.Profile{FirstName: "Late", Email: "late@client.example"}); err != nil {
		t.Fatal(err)
	}
	in.buildTree(t) // from the forged events, one leaf more than the checkpoint
	_, errOut := in.mustRun(t, 1, "checkpoint", "--tenant", in.tenant)
	if !strings.Contains(errOut, "refusing to sign") {
		t.Fatalf("ledger checkpoint said %q", errOut)
	}
	key, created, err := ledgerlog.LoadOrCreateKey(in.keyFile, "ledger.example")
	if err != nil || created {
		t.Fatalf("signing key: created %v, %v", created, err)
	}
	l := ledgerlog.New(in.pool, key, "https://ledger.example", slog.New(slog.DiscardHandler))
	if n, err := l.SignGrown(in.ctx); !errors.Is(err, ledgerlog.ErrTreeStale) || n != 0 {
		t.Fatalf("periodic signing: %d signed, %v", n, err)
	}
	latest, err := l.Latest(in.ctx, in.tenant)
	if err != nil || latest.TreeSize != int64(len(in.original)) {
		t.Fatalf("latest checkpoint: size %d, %v; want the one signed before, of %d", latest.TreeSize, err, len(in.original))
	}
	var signed int
	if err := in.pool.QueryRow(in.ctx, `SELECT count(*) FROM ledger_checkpoints WHERE tenant_id = $1`, in.tenant).Scan(&signed); err != nil || signed != 1 {
		t.Fatalf("%d checkpoints stored (%v), want the one signed before", signed, err)
	}
}

// An event rewritten and the stored tree rebuilt from the forged events:
// nothing narrows the difference down, so no event is named as the one
// that differs, only the range of leaves it is in.
func TestVerifyCheckpointNamesNoEventItCannotLocate(t *testing.T) {
	t.Parallel()
	in := newInsider(t)
	in.renameUser(t)
	in.buildTree(t)
	_, errOut := in.mustRun(t, 1, "verify", "--checkpoint", in.cpFile)
	if want := fmt.Sprintf("somewhere in leaves 0 to %d", len(in.original)-1); !strings.Contains(errOut, want) || strings.Contains(errOut, "event position") {
		t.Fatalf("verify --checkpoint said %q, want %q and no event named", errOut, want)
	}
}

func TestVerifyCheckpointChecksTheSignatureAndLaterTrees(t *testing.T) {
	t.Parallel()
	in := newInsider(t)
	note, err := os.ReadFile(in.cpFile)
	if err != nil {
		t.Fatal(err)
	}
	// A forged checkpoint: another size, the same signature line.
	forged := filepath.Join(t.TempDir(), "forged")
	text, sig, _ := strings.Cut(string(note), "\n\n")
	lines := strings.Split(text, "\n")
	lines[1] = "1"
	if err := os.WriteFile(forged, []byte(strings.Join(lines, "\n")+"\n\n"+sig), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut := in.mustRun(t, 1, "verify", "--checkpoint", forged); !strings.Contains(errOut, "signature") {
		t.Fatalf("forged checkpoint: %q", errOut)
	}
	// Another key does not verify it either.
	other := filepath.Join(t.TempDir(), "other-key")
	k, _, err := ledgerlog.LoadOrCreateKey(other, "other.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut := in.mustRun(t, 1, "verify", "--checkpoint", in.cpFile, "--key", k.Verifier); !strings.Contains(errOut, "signature") {
		t.Fatalf("checkpoint with another key: %q", errOut)
	}
	// More events later: the old checkpoint and a new one both verify, as
	// positional files after the first.
	in.asSuperuser(t, `SELECT 1`)
	cmds, m := in.commands(t)
	if _, err := cmds.RegisterCustomer(in.ctx, m, domain.Profile{FirstName: "Late", Email: "late@client.example"}); err != nil {
		t.Fatal(err)
	}
	later := in.keepCheckpoint(t, "later")
	out, _ := in.mustRun(t, 0, "verify", "--checkpoint", in.cpFile, later)
	if strings.Count(out, "OK: tenant") != 2 {
		t.Fatalf("verify of two checkpoints: %q", out)
	}
	// --key after the files, as the synopsis writes it.
	own, _, err := ledgerlog.LoadOrCreateKey(in.keyFile, "ledger.example")
	if err != nil {
		t.Fatal(err)
	}
	if out, _ = in.mustRun(t, 0, "verify", "--checkpoint", in.cpFile, later, "--key", own.Verifier); strings.Count(out, "OK: tenant") != 2 {
		t.Fatalf("verify of two checkpoints with --key last: %q", out)
	}
	if _, errOut := in.mustRun(t, 1, "verify", "--checkpoint", in.cpFile, later, "--key", k.Verifier); !strings.Contains(errOut, "signature") {
		t.Fatalf("two checkpoints with another key last: %q", errOut)
	}
	in.mustRun(t, 2, "checkpoint")
	if _, errOut := in.mustRun(t, 1, "checkpoint", "--tenant", "00000000-0000-0000-0000-000000000000"); !strings.Contains(errOut, "no tenant") {
		t.Fatalf("checkpoint of an unknown tenant: %q", errOut)
	}
}

// TestVerifyExportNeedsNoDatabase: verify-export reads a file and a key
// only (no DATABASE_URL), and names what does not verify.
func TestVerifyExportNeedsNoDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k, _, err := ledgerlog.LoadOrCreateKey(filepath.Join(dir, "key"), "ledger.example")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "export.ndjson")
	if err := os.WriteFile(file, []byte(`{"origin":"x"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env, _, errOut := testEnv(map[string]string{})
	if code := run(context.Background(), env, []string{"verify-export", file}); code != 2 {
		t.Fatalf("without --key: exit %d (%s)", code, errOut.String())
	}
	env, _, errOut = testEnv(map[string]string{})
	if code := run(context.Background(), env, []string{"verify-export", file, "--key", k.Verifier}); code != 1 ||
		!strings.Contains(errOut.String(), "line 1: the first line is not a checkpoint") {
		t.Fatalf("a file that is no export: exit %d (%s)", code, errOut.String())
	}
	// A mistyped key file is said to be one, not taken for a key that then
	// fails the export's first line.
	env, _, errOut = testEnv(map[string]string{})
	if code := run(context.Background(), env, []string{"verify-export", file, "--key", filepath.Join(dir, "no-such-key")}); code != 1 ||
		!strings.Contains(errOut.String(), "neither a file that can be read") || strings.Contains(errOut.String(), "line 1") {
		t.Fatalf("a mistyped key file: exit %d (%s)", code, errOut.String())
	}
	keyFile := filepath.Join(dir, "vkey")
	if err := os.WriteFile(keyFile, []byte(k.Verifier+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env, _, errOut = testEnv(map[string]string{})
	if code := run(context.Background(), env, []string{"verify-export", file, "--key", keyFile}); code != 1 ||
		!strings.Contains(errOut.String(), "line 1: the first line is not a checkpoint") {
		t.Fatalf("a key file: exit %d (%s)", code, errOut.String())
	}
	// - reads the export from standard input, before the flags or after.
	for _, args := range [][]string{{"verify-export", "-", "--key", keyFile}, {"verify-export", "--key", keyFile, "-"}} {
		env, _, errOut = testEnv(map[string]string{})
		env.stdin = strings.NewReader(`{"origin":"from stdin"}` + "\n")
		if code := run(context.Background(), env, args); code != 1 ||
			!strings.Contains(errOut.String(), "standard input: line 1: the first line is not a checkpoint") {
			t.Fatalf("%v: exit %d (%s)", args, code, errOut.String())
		}
	}
	// A malformed tenant ID is a usage error, as in ledger history.
	env, _, errOut = testEnv(map[string]string{"DATABASE_URL": "postgres://unused"})
	if code := run(context.Background(), env, []string{"checkpoint", "--tenant", "bad"}); code != 2 || !strings.Contains(errOut.String(), "not a tenant ID") {
		t.Fatalf("checkpoint --tenant bad: exit %d (%s)", code, errOut.String())
	}
	// --key checks checkpoints: alone it is a usage error.
	env, _, errOut = testEnv(map[string]string{"DATABASE_URL": "postgres://unused"})
	if code := run(context.Background(), env, []string{"verify", "--key", k.Verifier}); code != 2 {
		t.Fatalf("verify --key alone: exit %d (%s)", code, errOut.String())
	}
}

// TestPeriodicSigningSignsGrownTreesOnly: the periodic signer (what
// `serve` runs every LEDGER_CHECKPOINT_INTERVAL) signs a tenant's tree once
// it has grown past its latest checkpoint, and nothing while it has not.
func TestPeriodicSigningSignsGrownTreesOnly(t *testing.T) {
	t.Parallel()
	in := newInsider(t)
	b, err := os.ReadFile(in.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ledgerlog.ParseKey(string(b))
	if err != nil {
		t.Fatal(err)
	}
	l := ledgerlog.New(in.pool, key, "https://ledger.example", nil)
	if n, err := l.SignGrown(in.ctx); err != nil || n != 0 {
		t.Fatalf("nothing new: signed %d (%v)", n, err)
	}
	cmds, m := in.commands(t)
	if _, err := cmds.RegisterCustomer(in.ctx, m, domain.Profile{FirstName: "Late", Email: "late@client.example"}); err != nil {
		t.Fatal(err)
	}
	in.buildTree(t)
	if n, err := l.SignGrown(in.ctx); err != nil || n != 1 {
		t.Fatalf("grown tree: signed %d (%v)", n, err)
	}
	if n, err := l.SignGrown(in.ctx); err != nil || n != 0 {
		t.Fatalf("again: signed %d (%v)", n, err)
	}
	list, err := l.List(in.ctx, in.tenant, time.Time{}, time.Now().Add(time.Hour), 0, 10)
	if err != nil || len(list) != 2 || list[1].TreeSize != int64(len(in.original))+1 {
		t.Fatalf("checkpoints %+v (%v)", list, err)
	}
}

// TestCheckpointKeepsTheLogsOrigin: a log's origin is fixed by its first
// checkpoint; a process configured with another base URL signs later ones
// under the same origin (found by hostile testing: a CLI run from a shell
// signed under LEDGER_ADDR's, mixing origins in one tenant's log).
func TestCheckpointKeepsTheLogsOrigin(t *testing.T) {
	t.Parallel()
	in := newInsider(t)
	cmds, m := in.commands(t)
	if _, err := cmds.RegisterCustomer(in.ctx, m, domain.Profile{FirstName: "Late", Email: "late@client.example"}); err != nil {
		t.Fatal(err)
	}
	in.vars["LEDGER_BASE_URL"] = "https://elsewhere.example"
	laterFile := in.keepCheckpoint(t, "later")
	later, err := os.ReadFile(laterFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://ledger.example/tenants/" + in.tenant + "\n"; !strings.HasPrefix(string(later), want) {
		t.Fatalf("a later checkpoint signed with another base URL: %q, want origin %q", later, want)
	}
	if out, _ := in.mustRun(t, 0, "verify", "--checkpoint", in.cpFile, laterFile); strings.Count(out, "OK: tenant") != 2 {
		t.Fatalf("verify of both checkpoints: %q", out)
	}
}
