package commands_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// TestRenameThroughAnotherProcessIsAnswered is issue 25 item 11: a user
// renamed through one `serve` process kept its old name in another
// process's command answers until that one restarted (a per-process name
// cache). Two Commands on one database stand for the two processes; the
// second answers the new name on the cached path, the locking path (a
// keyed command) and reads.
func TestRenameThroughAnotherProcessIsAnswered(t *testing.T) {
	ctx := context.Background()
	one, b := setup(t)
	two := commands.New(b.store, testdb.Keyring(t), slog.New(slog.DiscardHandler))
	uma, ulf, ute := b.user(t), b.user(t), b.user(t)
	cust := b.customer(t)
	name := func(r commands.CustomerView, id string) string {
		for _, a := range r.Assignees {
			if a.UserID == id {
				return a.Name
			}
		}
		t.Fatalf("user %s is not on the team: %+v", id, r.Assignees)
		return ""
	}
	// The second process learns Uma's name and caches the customer.
	r, err := two.AssignUser(ctx, b.admin, cust, uma)
	wantErr(t, err, "")
	old := name(r.CustomerView, uma)

	renamed := "Uma Renamed"
	if _, err := one.UpdateUser(ctx, b.admin, uma, &renamed, nil); err != nil {
		t.Fatal(err)
	}
	// Decided on the second process's cached state.
	r, err = two.AssignUser(ctx, b.admin, cust, ulf)
	wantErr(t, err, "")
	if got := name(r.CustomerView, uma); got != renamed {
		t.Fatalf("answer of the other process names the renamed user %q (was %q), want %q", got, old, renamed)
	}
	renamed = "Uma Renamed Twice"
	if _, err := one.UpdateUser(ctx, b.admin, uma, &renamed, nil); err != nil {
		t.Fatal(err)
	}
	// On the locking path (a keyed command).
	keyed := b.admin
	keyed.IdempotencyKey, keyed.RequestHash = "assign-ute", []byte("assign-ute")
	r, err = two.AssignUser(ctx, keyed, cust, ute)
	wantErr(t, err, "")
	if got := name(r.CustomerView, uma); got != renamed {
		t.Fatalf("keyed answer of the other process names %q, want %q", got, renamed)
	}
	renamed = "Uma Renamed Thrice"
	if _, err := one.UpdateUser(ctx, b.admin, uma, &renamed, nil); err != nil {
		t.Fatal(err)
	}
	v, err := two.GetCustomer(ctx, b.tenantID, cust)
	wantErr(t, err, "")
	if got := name(v, uma); got != renamed {
		t.Fatalf("the other process reads %q, want %q", got, renamed)
	}
}
