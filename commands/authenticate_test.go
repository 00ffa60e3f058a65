package commands_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// Authenticate asks the database once per KeyLease for a key: a command's
// request costs no round trip of its own for it. A deactivation or a role
// change through another process (a second Commands) answers only once the
// first process's lease has run out, so its next request sees the change.
func TestAuthenticateLeasesKeysAndChangesOutliveTheLeases(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	other := commands.New(eventstore.New(b.pool), testdb.Keyring(t), slog.New(slog.DiscardHandler))
	id := b.userIn(t, b.admin, domain.RoleAdmin)
	member := b.user(t)
	key, err := cmd.IssueAPIKey(ctx, b.admin, id)
	wantErr(t, err, "")
	mkey, err := cmd.IssueAPIKey(ctx, b.admin, member)
	wantErr(t, err, "")

	p, err := cmd.Authenticate(ctx, key.APIKey)
	if err != nil || p.UserID != id || p.TenantID != b.tenantID || p.Role != domain.RoleAdmin {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	if _, err := cmd.Authenticate(ctx, mkey.APIKey); err != nil {
		t.Fatal(err)
	}
	acquired := b.pool.Stat().AcquireCount()
	for range 5 {
		if _, err := cmd.Authenticate(ctx, key.APIKey); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.pool.Stat().AcquireCount() - acquired; n != 0 {
		t.Errorf("a leased key was looked up %d times", n)
	}
	if _, err := cmd.Authenticate(ctx, "lk_unknown"); !errors.Is(err, commands.ErrUnauthenticated) {
		t.Fatalf("unknown key: %v", err)
	}

	if _, err := other.UpdateUser(ctx, b.admin, id, nil, ptr(domain.RoleMember)); err != nil {
		t.Fatal(err)
	}
	if p, err := cmd.Authenticate(ctx, key.APIKey); err != nil || p.Role != domain.RoleMember {
		t.Fatalf("after a demotion through another process: %+v, %v", p, err)
	}
	if _, err := other.DeactivateUser(ctx, b.admin, member, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Authenticate(ctx, mkey.APIKey); !errors.Is(err, commands.ErrUnauthenticated) {
		t.Fatalf("after a deactivation through another process: %v", err)
	}
}
