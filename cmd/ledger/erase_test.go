package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	commandspkg "github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// dumpText is every row of the tables that hold events or their copies, as
// text, lower-cased.
func dumpText(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var text string
	err := pool.QueryRow(context.Background(), `SELECT lower(concat_ws(E'\n',
		(SELECT string_agg(t::text, E'\n') FROM events t), (SELECT string_agg(t::text, E'\n') FROM unique_claims t),
		(SELECT string_agg(t::text, E'\n') FROM audit_log t), (SELECT string_agg(t::text, E'\n') FROM idempotency_keys t)))`).Scan(&text)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// TestEncryptLegacyAndReapplyErasures is the migration path of plaintext
// customer events (`ledger encrypt-legacy`) and the restore procedure
// (`ledger erase --list`, `--reapply`), through the CLI.
func TestEncryptLegacyAndReapplyErasures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.NewURL(t)
	vars := map[string]string{"DATABASE_URL": dsn}
	env, out, errOut := testEnv(vars)
	if code := run(ctx, env, []string{"bootstrap", "--tenant", "Acme", "--admin-name", "Ann Admin", "--admin-email", "ann@acme.example"}); code != 0 {
		t.Fatalf("bootstrap exit %d: %s", code, errOut.String())
	}
	var boot struct {
		TenantID string `json:"tenant_id"`
		UserID   string `json:"user_id"`
	}
	if err := json.Unmarshal([]byte(out.String()), &boot); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := eventstore.New(pool)
	cmds := commandspkg.New(store, testdb.Keyring(t), slog.New(slog.DiscardHandler))
	admin := commandspkg.Meta{TenantID: boot.TenantID, Actor: domain.Actor{UserID: boot.UserID, Name: "Ann Admin", Role: domain.RoleAdmin}}

	// Two customers written as before erasure existed: version 1 events in
	// clear, claims holding the values. The second is erased while still
	// in clear.
	legacy := func(id, first, email string, events ...domain.Event) {
		var data []eventstore.EventData
		for _, e := range append([]domain.Event{domain.CustomerRegistered{CustomerID: id,
			Profile: domain.Profile{FirstName: first, LastName: "Legacy", Email: email, ExternalID: "X-" + first}}}, events...) {
			typ, schema, d, err := domain.EncodeEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, eventstore.EventData{Type: typ, SchemaVersion: schema, Data: d})
		}
		if _, err := store.Append(ctx, eventstore.AppendRequest{TenantID: boot.TenantID,
			Streams: []eventstore.StreamWrite{{StreamID: id, StreamType: "customer", ExpectedVersion: eventstore.NoStream, Events: data}},
			Claims:  []eventstore.Claim{{Kind: "customer_email", Value: email, OwnerID: id}, {Kind: "customer_external_id", Value: "X-" + first, OwnerID: id}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	kept, gone := "01a00000-0000-7000-8000-00000000aaaa", "01a00000-0000-7000-8000-00000000bbbb"
	legacy(kept, "Oldfellow", "oldfellow@legacy.example", domain.CustomerUpdated{CustomerID: kept,
		Profile: domain.Profile{FirstName: "Oldfellow", LastName: "Renamed", Email: "oldfellow@legacy.example", ExternalID: "X-Oldfellow"}})
	legacy(gone, "Goneaway", "goneaway@legacy.example")
	if _, err := cmds.EraseCustomer(ctx, admin, gone); err != nil {
		t.Fatal(err)
	}
	env, _, errOut = testEnv(vars)
	if code := run(ctx, env, []string{"rebuild", "all"}); code != 0 {
		t.Fatalf("rebuild: %s", errOut.String())
	}
	if text := dumpText(t, pool); !strings.Contains(text, "oldfellow@legacy.example") || !strings.Contains(text, "goneaway") {
		t.Fatal("the legacy data should be in clear before the migration")
	}

	env, out, errOut = testEnv(vars)
	if code := run(ctx, env, []string{"encrypt-legacy"}); code != 0 {
		t.Fatalf("encrypt-legacy exit %d: %s", code, errOut.String())
	}
	var rep commandspkg.LegacyReport
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil || rep.Customers != 2 || rep.Events != 3 || rep.Erased != 1 || rep.Claims != 2 {
		t.Fatalf("encrypt-legacy reported %q (%v)", out.String(), err)
	}
	for _, leak := range []string{"oldfellow", "goneaway", "x-oldfellow", "legacy.example"} {
		if strings.Contains(dumpText(t, pool), leak) {
			t.Fatalf("%q is still readable after encrypt-legacy", leak)
		}
	}
	env, out, errOut = testEnv(vars)
	if code := run(ctx, env, []string{"verify"}); code != 0 || !strings.Contains(out.String(), "OK") {
		t.Fatalf("verify after encrypt-legacy: exit %d, %s %s", code, out.String(), errOut.String())
	}
	// The kept customer reads as before, its claims still hold, a second
	// run has nothing to do.
	v, err := cmds.GetCustomer(ctx, boot.TenantID, kept)
	if err != nil || v.LastName != "Renamed" || v.Email != "oldfellow@legacy.example" {
		t.Fatalf("kept customer after encrypt-legacy: %+v, %v", v, err)
	}
	if _, err := cmds.RegisterCustomer(ctx, admin, domain.Profile{FirstName: "Dup", Email: "oldfellow@legacy.example"}); !domain.IsRule(err, domain.CodeEmailTaken) {
		t.Fatalf("a duplicate of a migrated e-mail: %v", err)
	}
	if _, err := cmds.GetCustomer(ctx, boot.TenantID, gone); err == nil {
		t.Fatal("the erased customer reads again")
	}
	env, out, errOut = testEnv(vars)
	if code := run(ctx, env, []string{"encrypt-legacy"}); code != 0 || !strings.Contains(out.String(), `"customers":0`) {
		t.Fatalf("second encrypt-legacy: exit %d, %s %s", code, out.String(), errOut.String())
	}

	// A restore from a backup made before kept's erasure holds its key:
	// --list (kept outside backups) and --reapply make it erased again.
	var wrapped []byte
	if err := pool.QueryRow(ctx, `SELECT wrapped_key FROM customer_keys WHERE customer_id = $1`, kept).Scan(&wrapped); err != nil || wrapped == nil {
		t.Fatalf("kept's key: %v", err)
	}
	if _, err := cmds.EraseCustomer(ctx, admin, kept); err != nil {
		t.Fatal(err)
	}
	env, out, errOut = testEnv(vars)
	if code := run(ctx, env, []string{"erase", "--list"}); code != 0 || strings.Count(out.String(), "\n") != 2 || !strings.Contains(out.String(), kept) {
		t.Fatalf("erase --list: exit %d, %q %s", code, out.String(), errOut.String())
	}
	list := filepath.Join(t.TempDir(), "erased.jsonl")
	if err := os.WriteFile(list, []byte(out.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// The "restore": the key and a claim are back, and one more customer
	// was erased after the backup (the list names it, its event is not in
	// the restored store).
	if _, err := pool.Exec(ctx, `UPDATE customer_keys SET wrapped_key = $2, erased_at = NULL WHERE customer_id = $1`, kept, wrapped); err != nil {
		t.Fatal(err)
	}
	late, err := cmds.RegisterCustomer(ctx, admin, domain.Profile{FirstName: "Latecomer", Email: "late@restore.example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(list, []byte(out.String()+late.ID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env, out, errOut = testEnv(vars)
	if code := run(ctx, env, []string{"erase", "--reapply", "--ids", list}); code != 0 {
		t.Fatalf("erase --reapply: exit %d, %s", code, errOut.String())
	}
	var re commandspkg.ReapplyReport
	if err := json.Unmarshal([]byte(out.String()), &re); err != nil || len(re.Erased) != 2 || len(re.Appended) != 1 || re.Appended[0] != late.ID {
		t.Fatalf("erase --reapply reported %q (%v)", out.String(), err)
	}
	var live int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM customer_keys WHERE wrapped_key IS NOT NULL`).Scan(&live); err != nil || live != 0 {
		t.Fatalf("keys left after --reapply: %d (%v)", live, err)
	}
	for _, leak := range []string{"oldfellow", "latecomer", "late@restore.example"} {
		if strings.Contains(dumpText(t, pool), leak) {
			t.Fatalf("%q is readable after erase --reapply", leak)
		}
	}
	env, out, errOut = testEnv(vars)
	if code := run(ctx, env, []string{"verify"}); code != 0 {
		t.Fatalf("verify after --reapply: exit %d, %s %s", code, out.String(), errOut.String())
	}
	// ledger history still replays the erased customer, without its name.
	env, out, errOut = testEnv(vars)
	if code := run(ctx, env, []string{"history", "--tenant", boot.TenantID, "--customer", kept}); code != 0 ||
		!strings.Contains(out.String(), "registered (erased)") || !strings.Contains(out.String(), "erased (personal data destroyed)") ||
		strings.Contains(strings.ToLower(out.String()), "oldfellow") {
		t.Fatalf("history of an erased customer: exit %d, %q %s", code, out.String(), errOut.String())
	}
}
