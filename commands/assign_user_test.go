package commands_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

func TestAssignUser(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	b.policy(t, domain.Policy{MaxAssignees: ptr(2), RequireLead: true, MembersCanSelfAssign: true})
	c := b.customer(t)
	u1, u2, u3 := b.user(t), b.user(t), b.user(t)

	res, err := cmd.AssignUser(ctx, b.admin, c, u1)
	wantErr(t, err, "")
	if ids, lead := teamOf(res.CustomerView); !slices.Equal(ids, []string{u1}) || lead != u1 {
		t.Fatalf("team %v lead %s", ids, lead)
	}
	if res.Version != 2 || res.Position == 0 || res.Assignees[0].Name == "" || res.Assignees[0].AssignedAt.IsZero() {
		t.Fatalf("result %+v", res)
	}
	got, err := cmd.GetCustomer(ctx, b.tenantID, c)
	wantErr(t, err, "")
	if !slices.Equal(got.Assignees, res.Assignees) || got.Version != res.Version {
		t.Fatalf("GetCustomer %+v, command answered %+v", got, res.CustomerView)
	}

	_, err = cmd.AssignUser(ctx, b.admin, c, u1)
	wantErr(t, err, domain.CodeAlreadyAssigned)
	res, err = cmd.AssignUser(ctx, b.admin, c, u2)
	wantErr(t, err, "")
	if _, lead := teamOf(res.CustomerView); lead != u1 {
		t.Fatalf("lead changed to %s", lead)
	}
	_, err = cmd.AssignUser(ctx, b.admin, c, u3)
	wantErr(t, err, domain.CodeMaxAssigneesReached)

	// A deactivated user cannot be assigned.
	c2 := b.customer(t)
	_, err = cmd.DeactivateUser(ctx, b.admin, u3, "")
	wantErr(t, err, "")
	_, err = cmd.AssignUser(ctx, b.admin, c2, u3)
	wantErr(t, err, domain.CodeUserDeactivated)

	// Unknown and malformed IDs.
	_, err = cmd.AssignUser(ctx, b.admin, "0190c1f2-0000-7000-8000-000000000000", u1)
	wantErr(t, err, "not_found")
	_, err = cmd.AssignUser(ctx, b.admin, c2, "0190c1f2-0000-7000-8000-000000000000")
	wantErr(t, err, "not_found")
	_, err = cmd.AssignUser(ctx, b.admin, "not-a-uuid", u1)
	wantErr(t, err, "not_found")
	// A user ID is not a customer ID.
	_, err = cmd.AssignUser(ctx, b.admin, u2, u1)
	wantErr(t, err, "not_found")
}

func TestAssignUserOtherTenant(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	other := b.otherTenant(t)
	theirCustomer := b.customerIn(t, other)
	theirUser := b.userIn(t, other, domain.RoleMember)
	mine, myUser := b.customer(t), b.user(t)
	before := b.eventCount(t)

	_, err := cmd.AssignUser(ctx, b.admin, theirCustomer, myUser)
	wantErr(t, err, "not_found")
	_, err = cmd.AssignUser(ctx, b.admin, mine, theirUser)
	wantErr(t, err, "not_found")
	_, err = cmd.GetCustomer(ctx, b.tenantID, theirCustomer)
	wantErr(t, err, "not_found")
	_, err = cmd.GetUser(ctx, b.tenantID, theirUser)
	wantErr(t, err, "not_found")
	_, err = cmd.BlockCustomer(ctx, b.admin, theirCustomer)
	wantErr(t, err, "not_found")
	_, err = cmd.DeactivateUser(ctx, b.admin, theirUser, "")
	wantErr(t, err, "not_found")
	_, err = cmd.IssueAPIKey(ctx, b.admin, theirUser)
	wantErr(t, err, "not_found")
	if n := b.eventCount(t); n != before {
		t.Fatalf("refused commands appended %d events", n-before)
	}
}

func TestAssignUserMembers(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	c := b.customer(t)
	me, other := b.user(t), b.user(t)
	m := b.memberMeta(me)

	_, err := cmd.AssignUser(ctx, m, c, other)
	wantErr(t, err, "forbidden")
	_, err = cmd.AssignUser(ctx, m, c, me)
	wantErr(t, err, "")
	_, err = cmd.UnassignUser(ctx, m, c, me)
	wantErr(t, err, "")

	b.policy(t, domain.Policy{MembersCanSelfAssign: false})
	_, err = cmd.AssignUser(ctx, m, c, me)
	wantErr(t, err, "forbidden")
	b.assign(t, c, me)
	_, err = cmd.UnassignUser(ctx, m, c, me)
	wantErr(t, err, "forbidden")
	_, err = cmd.MakeTeamLead(ctx, m, c, me)
	wantErr(t, err, "forbidden")
	_, err = cmd.BlockCustomer(ctx, m, c)
	wantErr(t, err, "forbidden")
}

func TestAssignUserIfMatch(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	c := b.customer(t)
	u1, u2 := b.user(t), b.user(t)
	before := b.eventCount(t)

	m := b.admin
	m.IfMatch = []int64{5}
	_, err := cmd.AssignUser(ctx, m, c, u1)
	wantErr(t, err, "precondition")
	if b.eventCount(t) != before {
		t.Fatal("412 appended")
	}
	m.IfMatch = []int64{1}
	res, err := cmd.AssignUser(ctx, m, c, u1)
	wantErr(t, err, "")
	if res.Version != 2 {
		t.Fatalf("version %d", res.Version)
	}
	_, err = cmd.AssignUser(ctx, m, c, u2) // still If-Match 1
	wantErr(t, err, "precondition")
}

func TestAssignUserIdempotent(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	c := b.customer(t)
	u1, u2 := b.user(t), b.user(t)

	m := keyed(b.admin, "k1", "assign u1")
	first, err := cmd.AssignUser(ctx, m, c, u1)
	wantErr(t, err, "")
	n := b.eventCount(t)
	again, err := cmd.AssignUser(ctx, m, c, u1)
	wantErr(t, err, "") // not already_assigned: the first answer, replayed
	if again.Position != first.Position || again.Version != first.Version || !slices.Equal(again.Assignees, first.Assignees) {
		t.Fatalf("replay %+v, first %+v", again, first)
	}
	if b.eventCount(t) != n {
		t.Fatal("replay appended")
	}
	_, err = cmd.AssignUser(ctx, keyed(b.admin, "k1", "assign u2"), c, u2)
	wantErr(t, err, "key_reused")

	// A refusal is the key's first answer too: a retry gets it even after
	// the team changed, and runs nothing; another body is a reused key.
	_, err = cmd.AssignUser(ctx, keyed(b.admin, "k2", "assign u1 again"), c, u1)
	wantErr(t, err, domain.CodeAlreadyAssigned)
	_, err = cmd.UnassignUser(ctx, b.admin, c, u1)
	wantErr(t, err, "")
	n = b.eventCount(t)
	_, err = cmd.AssignUser(ctx, keyed(b.admin, "k2", "assign u1 again"), c, u1)
	wantErr(t, err, domain.CodeAlreadyAssigned)
	_, err = cmd.AssignUser(ctx, keyed(b.admin, "k2", "assign u2"), c, u2)
	wantErr(t, err, "key_reused")
	if b.eventCount(t) != n {
		t.Fatal("a retry of a refused command appended")
	}
	// The refusal names the customer: its erasure leaves the key used, with
	// nothing to replay.
	if _, err := cmd.EraseCustomer(ctx, b.admin, c); err != nil {
		t.Fatal(err)
	}
	_, err = cmd.AssignUser(ctx, keyed(b.admin, "k2", "assign u1 again"), c, u1)
	if !errors.Is(err, eventstore.ErrReplayUnavailable) {
		t.Fatalf("retry after erasure: %v, want replay unavailable", err)
	}
}

// A refusal by a rule of a command that is not single-customer (a
// transaction of its own) is the key's answer too, and names the customers
// the command found.
func TestRefusedCommandOutsideTheUnitIsTheKeysAnswer(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()

	gold, err := cmd.CreateGroup(ctx, b.admin, "Gold")
	wantErr(t, err, "")
	_, err = cmd.CreateGroup(ctx, keyed(b.admin, "g", "Gold"), "Gold")
	wantErr(t, err, commands.CodeNameTaken)
	if _, err := cmd.RenameGroup(ctx, b.admin, gold.ID, "Silver"); err != nil {
		t.Fatal(err)
	}
	n := b.eventCount(t)
	_, err = cmd.CreateGroup(ctx, keyed(b.admin, "g", "Gold"), "Gold")
	wantErr(t, err, commands.CodeNameTaken) // the first answer, though the name is free now
	_, err = cmd.CreateGroup(ctx, keyed(b.admin, "g", "Platinum"), "Platinum")
	wantErr(t, err, "key_reused")
	if b.eventCount(t) != n {
		t.Fatal("a retry of a refused command appended")
	}

	// UpdateCustomer refused (another customer's e-mail): erasing the
	// customer it decided on scrubs the refusal.
	c1, c2 := b.customer(t), b.customer(t)
	taken := "c-taken@client.example"
	if _, err := cmd.UpdateCustomer(ctx, b.admin, c1, commands.ProfilePatch{Email: &taken}); err != nil {
		t.Fatal(err)
	}
	m := keyed(b.admin, "u", "c2 gets c1's e-mail")
	_, err = cmd.UpdateCustomer(ctx, m, c2, commands.ProfilePatch{Email: &taken})
	wantErr(t, err, domain.CodeEmailTaken)
	_, err = cmd.UpdateCustomer(ctx, m, c2, commands.ProfilePatch{Email: &taken})
	wantErr(t, err, domain.CodeEmailTaken)
	if _, err := cmd.EraseCustomer(ctx, b.admin, c2); err != nil {
		t.Fatal(err)
	}
	_, err = cmd.UpdateCustomer(ctx, m, c2, commands.ProfilePatch{Email: &taken})
	if !errors.Is(err, eventstore.ErrReplayUnavailable) {
		t.Fatalf("retry after erasure: %v, want replay unavailable", err)
	}
}
