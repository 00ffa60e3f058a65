package domain_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

func TestSetTeam(t *testing.T) {
	none := domain.DefaultPolicy()
	lead := domain.Policy{RequireLead: true}
	keep := domain.Policy{RequireAssignee: true, RequireLead: true}
	two := domain.Policy{MaxAssignees: ptr(2), RequireLead: true}
	one := domain.Policy{MaxAssignees: ptr(1), RequireLead: true}
	for _, tc := range []struct {
		name     string
		c        domain.Customer
		users    []domain.User
		lead     string
		pol      domain.Policy
		want     string
		team     []string // resulting team, sorted
		wantLead string
		events   []domain.Event // when not nil, exactly these
	}{
		{"unchanged", withTeam("a", "a", "b"), []domain.User{active("b"), active("a")}, "", lead, "", []string{"a", "b"}, "a",
			[]domain.Event{}},
		{"first team: first listed leads", withTeam(""), []domain.User{active("b"), active("a")}, "", lead, "", []string{"a", "b"}, "b",
			[]domain.Event{
				domain.UserAssigned{CustomerID: "c1", UserID: "b", Lead: true},
				domain.UserAssigned{CustomerID: "c1", UserID: "a"},
			}},
		{"no lead without require_lead", withTeam(""), []domain.User{active("a")}, "", none, "", []string{"a"}, "", nil},
		{"toggles: one in, one out, lead kept", withTeam("a", "a", "b"), []domain.User{active("a"), active("c")}, "", lead, "",
			[]string{"a", "c"}, "a", []domain.Event{
				domain.UserUnassigned{CustomerID: "c1", UserID: "b"},
				domain.UserAssigned{CustomerID: "c1", UserID: "c"},
			}},
		{"named lead among the kept", withTeam("a", "a", "b"), []domain.User{active("a"), active("b")}, "b", lead, "", []string{"a", "b"}, "b",
			[]domain.Event{domain.TeamLeadChanged{CustomerID: "c1", UserID: "b", PreviousUserID: "a"}}},
		{"lead leaves: first listed takes over before it goes", withTeam("a", "a", "b"), []domain.User{active("c"), active("b")}, "", lead, "",
			[]string{"b", "c"}, "c", []domain.Event{
				domain.UserAssigned{CustomerID: "c1", UserID: "c"},
				domain.TeamLeadChanged{CustomerID: "c1", UserID: "c", PreviousUserID: "a"},
				domain.UserUnassigned{CustomerID: "c1", UserID: "a"},
			}},
		{"one owner reassigned", withTeam("a", "a"), []domain.User{active("b")}, "", one, "", []string{"b"}, "b", []domain.Event{
			domain.UserAssigned{CustomerID: "c1", UserID: "b"},
			domain.TeamLeadChanged{CustomerID: "c1", UserID: "b", PreviousUserID: "a"},
			domain.UserUnassigned{CustomerID: "c1", UserID: "a"},
		}},
		{"lead leaves without require_lead", withTeam("a", "a", "b"), []domain.User{active("b")}, "", none, "", []string{"b"}, "", nil},
		{"over max", withTeam("a", "a"), []domain.User{active("a"), active("b"), active("c")}, "", two, domain.CodeMaxAssigneesReached, nil, "", nil},
		{"over a lowered max, same size", withTeam("a", "a", "b", "c"), []domain.User{active("a"), active("b"), active("d")}, "", two, "",
			[]string{"a", "b", "d"}, "a", nil},
		{"deactivated newcomer", withTeam("a", "a"), []domain.User{active("a"), deactivated("b")}, "", lead, domain.CodeUserDeactivated, nil, "", nil},
		{"deactivated member kept", withTeam("b", "b"), []domain.User{deactivated("b"), active("a")}, "", lead, "", []string{"a", "b"}, "b", nil},
		{"emptied under require_assignee", withTeam("a", "a", "b"), nil, "", keep, domain.CodeCustomerMustKeepAnAssignee, nil, "", nil},
		{"emptied under require_lead", withTeam("a", "a"), nil, "", lead, domain.CodeLeadCannotBeRemoved, nil, "", nil},
		{"emptied without rules", withTeam("a", "a", "b"), nil, "", none, "", nil, "", nil},
		{"lead not on the team", withTeam("a", "a"), []domain.User{active("a")}, "z", lead, domain.CodeUserNotAssigned, nil, "", nil},
		{"listed twice", withTeam(""), []domain.User{active("a"), active("a")}, "", lead, "validation", nil, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := tc.c.SetTeam(tc.users, tc.lead, tc.pol)
			wantErr(t, err, tc.want)
			if err != nil {
				if evs != nil {
					t.Fatalf("refusal returned events %+v", evs)
				}
				return
			}
			if tc.events != nil && !reflect.DeepEqual(append([]domain.Event{}, evs...), tc.events) {
				t.Fatalf("events %+v, want %+v", evs, tc.events)
			}
			c := tc.c
			for _, e := range evs {
				c.Apply(e, t0)
			}
			var team []string
			for _, m := range c.Team {
				team = append(team, m.UserID)
			}
			slices.Sort(team)
			if !slices.Equal(team, tc.team) || leadID(c) != tc.wantLead {
				t.Fatalf("team %v lead %q, want %v %q", team, leadID(c), tc.team, tc.wantLead)
			}
			// Every prefix of the events keeps a lead while the team is
			// not empty, under require_lead.
			if tc.pol.RequireLead {
				p := tc.c
				for i, e := range evs {
					p.Apply(e, t0)
					if len(p.Team) > 0 && leadID(p) == "" && leadID(tc.c) != "" {
						t.Fatalf("after event %d the team has no lead: %+v", i, p.Team)
					}
				}
			}
		})
	}
}

func TestSetTeamByMember(t *testing.T) {
	me := domain.Actor{UserID: "m", Role: domain.RoleMember}
	self := domain.Policy{RequireLead: true, MembersCanSelfAssign: true}
	for _, tc := range []struct {
		name  string
		c     domain.Customer
		users []string
		lead  string
		pol   domain.Policy
		want  string
	}{
		{"adds themselves", withTeam("a", "a"), []string{"a", "m"}, "", self, ""},
		{"leaves", withTeam("a", "a", "m"), []string{"a"}, "", self, ""},
		{"adds someone else", withTeam("a", "a"), []string{"a", "b"}, "", self, "forbidden"},
		{"removes someone else", withTeam("a", "a", "b"), []string{"a"}, "", self, "forbidden"},
		{"adds themselves and removes another", withTeam("a", "a", "b"), []string{"a", "m"}, "", self, "forbidden"},
		{"policy forbids self-assignment", withTeam("a", "a"), []string{"a", "m"}, "", domain.Policy{RequireLead: true}, "forbidden"},
		{"chooses the lead", withTeam("a", "a", "m"), []string{"a", "m"}, "m", self, "forbidden"},
		{"names the current lead", withTeam("a", "a"), []string{"a", "m"}, "a", self, ""},
		{"the lead leaves a team", withTeam("m", "m", "a"), []string{"a"}, "", self, domain.CodeLeadCannotBeRemoved},
		{"the lone lead leaves", withTeam("m", "m"), nil, "", self, domain.CodeLeadCannotBeRemoved},
		{"nothing changes", withTeam("a", "a"), []string{"a"}, "", domain.Policy{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var users []domain.User
			for _, id := range tc.users {
				users = append(users, active(id))
			}
			_, err := tc.c.SetTeamBy(me, users, tc.lead, tc.pol)
			wantErr(t, err, tc.want)
		})
	}
	// Admins may do all of it.
	admin := domain.Actor{UserID: "x", Role: domain.RoleAdmin}
	evs, err := withTeam("m", "m", "a").SetTeamBy(admin, []domain.User{active("a"), active("b")}, "b", self)
	wantErr(t, err, "")
	if len(evs) != 3 {
		t.Fatalf("admin events %+v", evs)
	}
}
