package commands_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// warm runs one command through cmd so its cache knows the customer, the
// users and the policy, and returns cmd's stats after it.
func warm(t *testing.T, cmd *commands.Commands, b *testBundle, customerID string, userIDs ...string) {
	t.Helper()
	for _, u := range userIDs {
		if _, err := cmd.AssignUser(context.Background(), b.admin, customerID, u); err != nil {
			t.Fatalf("warm up: assign %s: %v", u, err)
		}
		if _, err := cmd.UnassignUser(context.Background(), b.admin, customerID, u); err != nil {
			t.Fatalf("warm up: unassign %s: %v", u, err)
		}
	}
}

// Commands on a customer the unit has cached read only the events past
// the cache, and their events chain and replay like any others.
func TestCachedCommandsAppendInOneRoundTrip(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	c := b.customer(t)
	users := b.users(t, 3)
	warm(t, cmd, b, c, users...)
	before := cmd.GroupStats()
	res, err := cmd.AssignUser(ctx, b.admin, c, users[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.MakeTeamLead(ctx, b.admin, c, users[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.AssignUser(ctx, b.admin, c, users[1]); err != nil {
		t.Fatal(err)
	}
	last, err := cmd.ReplaceTeamMember(ctx, b.admin, c, users[1], users[2])
	if err != nil {
		t.Fatal(err)
	}
	if got := cmd.GroupStats().Sub(before).Commands(); got != 4 {
		t.Fatalf("%d of 4 commands went through the group committer", got)
	}
	if res.Position == 0 || last.Position <= res.Position {
		t.Fatalf("positions %d then %d", res.Position, last.Position)
	}
	// The answer equals the stream's own replay.
	states := b.states(t, c)
	final := states[len(states)-1]
	if last.Version != final.Version || len(last.Assignees) != len(final.Team) {
		t.Fatalf("answer %+v, replay %+v", last.CustomerView, final)
	}
	for i, m := range final.Team {
		a := last.Assignees[i]
		if a.UserID != m.UserID || a.Lead != m.Lead || !a.AssignedAt.Equal(m.AssignedAt) || a.Name == "" {
			t.Fatalf("assignee %d: answer %+v, replay %+v", i, a, m)
		}
	}
	rep, err := b.store.Verify(ctx, nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if rep.Events == 0 {
		t.Fatal("verify saw no events")
	}
}

// Another process (a second Commands over the same database) changes what
// the first has cached: the first must decide on the database's state, not
// its cache.
func TestCachedStateNeverDecidesAgainstTheDatabase(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	other := commands.New(b.store, testdb.Keyring(t), slog.New(slog.DiscardHandler))
	c := b.customer(t)
	users := b.users(t, 4)
	warm(t, cmd, b, c, users...)
	b.assign(t, c, users[0])

	t.Run("customer changed elsewhere", func(t *testing.T) {
		if _, err := other.UnassignUser(ctx, b.admin, c, users[0]); err != nil {
			t.Fatal(err)
		}
		// The cache still has users[0] on the team: only the database
		// knows the assignment is allowed again.
		if _, err := cmd.AssignUser(ctx, b.admin, c, users[0]); err != nil {
			t.Fatalf("assign after another process unassigned: %v", err)
		}
		if _, err := other.AssignUser(ctx, b.admin, c, users[1]); err != nil {
			t.Fatal(err)
		}
		// The cache does not know users[1] is on the team.
		_, err := cmd.AssignUser(ctx, b.admin, c, users[1])
		wantErr(t, err, domain.CodeAlreadyAssigned)
	})

	t.Run("policy changed elsewhere", func(t *testing.T) {
		pol := domain.Policy{MaxAssignees: ptr(2), MembersCanSelfAssign: true}
		if _, err := other.ChangePolicy(ctx, b.admin, pol); err != nil {
			t.Fatal(err)
		}
		_, err := cmd.AssignUser(ctx, b.admin, c, users[2])
		wantErr(t, err, domain.CodeMaxAssigneesReached)
		if _, err := other.ChangePolicy(ctx, b.admin, domain.Policy{MembersCanSelfAssign: true}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("user deactivated elsewhere", func(t *testing.T) {
		if _, err := other.DeactivateUser(ctx, b.admin, users[3], ""); err != nil {
			t.Fatal(err)
		}
		_, err := cmd.AssignUser(ctx, b.admin, c, users[3])
		wantErr(t, err, domain.CodeUserDeactivated)
	})

	t.Run("If-Match against the database", func(t *testing.T) {
		states := b.states(t, c)
		v := states[len(states)-1].Version
		if _, err := other.UnassignUser(ctx, b.admin, c, users[0]); err != nil {
			t.Fatal(err)
		}
		m := b.admin
		m.IfMatch = []int64{v}
		_, err := cmd.AssignUser(ctx, m, c, users[2])
		if err == nil {
			t.Fatal("a stale If-Match was accepted")
		}
		m.IfMatch = []int64{v + 1}
		if _, err := cmd.AssignUser(ctx, m, c, users[2]); err != nil {
			t.Fatalf("current If-Match: %v", err)
		}
	})

	t.Run("another tenant's customer", func(t *testing.T) {
		olga := b.otherTenant(t)
		_, err := cmd.AssignUser(ctx, olga, c, users[0])
		if err == nil {
			t.Fatal("another tenant assigned through a cached customer")
		}
	})
	if n := len(b.states(t, c)); n == 0 {
		t.Fatal("no events")
	}
}

// Two processes race on one customer under max_assignees, both with warm
// caches: the rules hold in every state the stream passes through.
func TestCachedRacesAcrossProcessesKeepTheRules(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	other := commands.New(b.store, testdb.Keyring(t), slog.New(slog.DiscardHandler))
	pol := domain.Policy{MaxAssignees: ptr(3), RequireLead: true, RequireAssignee: true, MembersCanSelfAssign: true}
	c := b.customer(t) // before require_assignee, which would want a team
	b.policy(t, pol)
	users := b.users(t, 12)
	b.assign(t, c, users[0])
	for _, p := range []*commands.Commands{cmd, other} {
		if _, err := p.ReplaceTeamMember(ctx, b.admin, c, users[0], users[1]); err != nil {
			t.Fatal(err)
		}
		if _, err := p.ReplaceTeamMember(ctx, b.admin, c, users[1], users[0]); err != nil {
			t.Fatal(err)
		}
	}
	procs := []*commands.Commands{cmd, other}
	for _, p := range procs {
		warm(t, p, b, c, users[1:]...)
	}
	var wg sync.WaitGroup
	for round := range 6 {
		for i, u := range users[1:] {
			p := procs[(i+round)%2]
			wg.Go(func() {
				var err error
				switch (i + round) % 3 {
				case 0:
					_, err = p.AssignUser(ctx, b.admin, c, u)
				case 1:
					_, err = p.UnassignUser(ctx, b.admin, c, u)
				default:
					_, err = p.MakeTeamLead(ctx, b.admin, c, u)
				}
				ruleOnly(t, err)
			})
		}
		wg.Wait()
	}
	checkInvariants(t, b, c, pol)
	s1, s2 := cmd.GroupStats(), other.GroupStats()
	if s1.Commands()+s2.Commands() == 0 {
		t.Fatal("no command went through the group committer")
	}
	t.Logf("groups/commands: %d/%d, %d/%d", s1.Groups(), s1.Commands(), s2.Groups(), s2.Commands())
}
