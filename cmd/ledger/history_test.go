package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	commandspkg "github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// TestHistoryEscapesControlCharactersForTerminals: names stored before
// control characters were refused (a customer's, a team member's, an
// actor's) are printed with their controls escaped, in the table and in
// --json, so a crafted name cannot set the terminal's title or clear it.
func TestHistoryEscapesControlCharactersForTerminals(t *testing.T) {
	t.Parallel()
	dsn := testdb.NewURL(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := eventstore.New(pool)
	boot, err := commandspkg.New(store, testdb.Keyring(t), slog.New(slog.NewTextHandler(io.Discard, nil))).Bootstrap(ctx, "Acme", "Ann Admin", "ann@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	// Legacy events, appended as an older version stored them.
	encode := func(e domain.Event) eventstore.EventData {
		typ, schema, data, err := domain.EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		return eventstore.EventData{Type: typ, SchemaVersion: schema, Data: data}
	}
	userID, custID := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	_, err = store.Append(ctx, eventstore.AppendRequest{
		TenantID: boot.TenantID,
		Metadata: eventstore.Metadata{Actor: eventstore.Actor{UserID: boot.UserID, Name: "Ann\u009b2J\x7fAdmin"}},
		Streams: []eventstore.StreamWrite{
			{StreamID: userID, StreamType: "user", ExpectedVersion: eventstore.NoStream, Events: []eventstore.EventData{
				encode(domain.UserCreated{UserID: userID, Name: "Bob\x1b[2J\tBaker\u202e", Email: "bob@acme.example", Role: domain.RoleMember})}},
			{StreamID: custID, StreamType: "customer", ExpectedVersion: eventstore.NoStream, Events: []eventstore.EventData{
				encode(domain.CustomerRegistered{CustomerID: custID, Profile: domain.Profile{FirstName: "Eve\x1b]0;pwned\x07", LastName: "C\\x1bR\rLF\n"}}),
				encode(domain.UserAssigned{CustomerID: custID, UserID: userID, Lead: true})}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"DATABASE_URL": dsn}
	for _, args := range [][]string{nil, {"--json"}} {
		env, out, errOut := testEnv(vars)
		if code := run(ctx, env, append([]string{"history", "--tenant", boot.TenantID, "--customer", custID}, args...)); code != 0 {
			t.Fatalf("history %v: exit %d: %s", args, code, errOut.String())
		}
		got := out.String()
		if i := strings.IndexFunc(got, func(r rune) bool {
			return (r < 0x20 && r != '\n' && r != ' ') || (r >= 0x7f && r <= 0x9f) || domain.BidiControl(r)
		}); i >= 0 {
			t.Fatalf("history %v prints the control character %U raw:\n%q", args, []rune(got[i:])[0], got)
		}
		if args == nil {
			for _, want := range []string{`Eve\x1b]0;pwned\x07 C\\x1bR\x0dLF\x0a`, `Bob\x1b[2J\x09Baker\u202e assigned as lead`, `Ann\u009b2J\x7fAdmin`} {
				if !strings.Contains(got, want) {
					t.Errorf("history does not show %s:\n%s", want, got)
				}
			}
			continue
		}
		var h history
		if err := json.Unmarshal([]byte(got), &h); err != nil {
			t.Fatal(err)
		}
		if len(h.Events) != 2 || h.Events[0].ActorName != "Ann\u009b2J\x7fAdmin" || h.Team[0].Name != "Bob\x1b[2J\tBaker\u202e" {
			t.Fatalf("--json does not keep the names as stored: %+v", h)
		}
	}
}
