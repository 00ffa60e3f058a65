package commands_test

import (
	"context"
	"slices"
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

func TestUnassignUser(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	c := b.customer(t) // before require_assignee, which would want a team
	b.policy(t, domain.Policy{RequireLead: true, RequireAssignee: true, MembersCanSelfAssign: true})
	u1, u2, u3 := b.user(t), b.user(t), b.user(t)
	b.assign(t, c, u1, u2)

	_, err := cmd.UnassignUser(ctx, b.admin, c, u3)
	wantErr(t, err, domain.CodeUserNotAssigned)
	_, err = cmd.UnassignUser(ctx, b.admin, c, u1)
	wantErr(t, err, domain.CodeLeadCannotBeRemoved)
	res, err := cmd.UnassignUser(ctx, b.admin, c, u2)
	wantErr(t, err, "")
	if ids, _ := teamOf(res.CustomerView); !slices.Equal(ids, []string{u1}) {
		t.Fatalf("team %v", ids)
	}
	_, err = cmd.UnassignUser(ctx, b.admin, c, u1)
	wantErr(t, err, domain.CodeCustomerMustKeepAnAssignee)
	_, err = cmd.UnassignUser(ctx, b.admin, c, "0190c1f2-0000-7000-8000-000000000000")
	wantErr(t, err, "not_found")

	m := b.admin
	m.IfMatch = []int64{res.Version - 1}
	_, err = cmd.UnassignUser(ctx, m, c, u1)
	wantErr(t, err, "precondition")

	// Idempotent replay of a successful unassign.
	b.assign(t, c, u3)
	k := keyed(b.admin, "unassign-u3", "x")
	first, err := cmd.UnassignUser(ctx, k, c, u3)
	wantErr(t, err, "")
	n := b.eventCount(t)
	again, err := cmd.UnassignUser(ctx, k, c, u3)
	wantErr(t, err, "")
	if again.Position != first.Position || b.eventCount(t) != n {
		t.Fatalf("replay %+v first %+v", again, first)
	}
}

func TestMakeTeamLead(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	b.policy(t, domain.Policy{RequireLead: true, MembersCanSelfAssign: true})
	c := b.customer(t)
	u1, u2, u3 := b.user(t), b.user(t), b.user(t)
	b.assign(t, c, u1, u2)

	res, err := cmd.MakeTeamLead(ctx, b.admin, c, u2)
	wantErr(t, err, "")
	if _, lead := teamOf(res.CustomerView); lead != u2 {
		t.Fatalf("lead %s", lead)
	}
	n := b.eventCount(t)
	again, err := cmd.MakeTeamLead(ctx, b.admin, c, u2) // already lead: nothing to append
	wantErr(t, err, "")
	if b.eventCount(t) != n || again.Version != res.Version || again.Position != res.Position {
		t.Fatalf("no-op lead change: %+v vs %+v", again, res)
	}
	_, err = cmd.MakeTeamLead(ctx, b.admin, c, u3)
	wantErr(t, err, domain.CodeUserNotAssigned)
	_, err = cmd.MakeTeamLead(ctx, b.memberMeta(u1), c, u1)
	wantErr(t, err, "forbidden")
	m := b.admin
	m.IfMatch = []int64{1}
	_, err = cmd.MakeTeamLead(ctx, m, c, u1)
	wantErr(t, err, "precondition")
	// Now u1 may go: it is no longer lead.
	_, err = cmd.UnassignUser(ctx, b.admin, c, u1)
	wantErr(t, err, "")
}

func TestReplaceTeamMember(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	c := b.customer(t) // before require_assignee, which would want a team
	b.policy(t, domain.Policy{MaxAssignees: ptr(2), RequireLead: true, RequireAssignee: true, MembersCanSelfAssign: true})
	u1, u2, u3, u4 := b.user(t), b.user(t), b.user(t), b.user(t)
	b.assign(t, c, u1, u2)

	res, err := cmd.ReplaceTeamMember(ctx, b.admin, c, u1, u3) // full team, lead replaced
	wantErr(t, err, "")
	ids, lead := teamOf(res.CustomerView)
	if lead != u3 || !slices.Contains(ids, u2) || slices.Contains(ids, u1) {
		t.Fatalf("team %v lead %s", ids, lead)
	}
	_, err = cmd.ReplaceTeamMember(ctx, b.admin, c, u1, u4)
	wantErr(t, err, domain.CodeUserNotAssigned)
	_, err = cmd.ReplaceTeamMember(ctx, b.admin, c, u2, u3)
	wantErr(t, err, domain.CodeAlreadyAssigned)
	_, err = cmd.DeactivateUser(ctx, b.admin, u4, "")
	wantErr(t, err, "")
	_, err = cmd.ReplaceTeamMember(ctx, b.admin, c, u2, u4)
	wantErr(t, err, domain.CodeUserDeactivated)
	_, err = cmd.ReplaceTeamMember(ctx, b.memberMeta(u2), c, u2, u1)
	wantErr(t, err, "forbidden")
	_, err = cmd.ReplaceTeamMember(ctx, b.admin, c, u2, "0190c1f2-0000-7000-8000-000000000000")
	wantErr(t, err, "not_found")
}

func TestBlockCustomer(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	c := b.customer(t)
	u := b.user(t)
	b.assign(t, c, u)

	res, err := cmd.BlockCustomer(ctx, b.admin, c)
	wantErr(t, err, "")
	if res.Status != "blocked" || len(res.Assignees) != 1 {
		t.Fatalf("blocked customer %+v", res)
	}
	_, err = cmd.BlockCustomer(ctx, b.admin, c)
	wantErr(t, err, domain.CodeAlreadyBlocked)
	res, err = cmd.UnblockCustomer(ctx, b.admin, c)
	wantErr(t, err, "")
	if res.Status != "active" {
		t.Fatalf("status %s", res.Status)
	}
	_, err = cmd.UnblockCustomer(ctx, b.admin, c)
	wantErr(t, err, domain.CodeNotBlocked)
	_, err = cmd.BlockCustomer(ctx, b.memberMeta(u), c)
	wantErr(t, err, "forbidden")
}
