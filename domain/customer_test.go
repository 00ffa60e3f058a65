package domain_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/domain"
)

func TestCustomerApplyTeam(t *testing.T) {
	c := customer("c1",
		domain.UserAssigned{CustomerID: "c1", UserID: "a", Lead: true},
		domain.UserAssigned{CustomerID: "c1", UserID: "b"},
		domain.UserAssigned{CustomerID: "c1", UserID: "c"},
	)
	snapshot := slices.Clone(c.Team)
	before := c // a copy must not see later changes

	c.Apply(domain.TeamLeadChanged{CustomerID: "c1", UserID: "b", PreviousUserID: "a"}, t0.Add(10*time.Second))
	c.Apply(domain.TeamMemberReplaced{CustomerID: "c1", UserID: "b", WithUserID: "d", Lead: true}, t0.Add(11*time.Second))
	c.Apply(domain.UserUnassigned{CustomerID: "c1", UserID: "a"}, t0.Add(12*time.Second))

	want := domain.Team{
		{UserID: "c", AssignedAt: t0.Add(3 * time.Second)},
		{UserID: "d", Lead: true, AssignedAt: t0.Add(11 * time.Second)},
	}
	if !reflect.DeepEqual(c.Team, want) {
		t.Fatalf("team = %+v", c.Team)
	}
	if c.Version != 7 {
		t.Fatalf("version = %d", c.Version)
	}
	if !reflect.DeepEqual(before.Team, snapshot) || before.Version != 4 {
		t.Fatalf("copy changed: %+v", before.Team)
	}
	if m, ok := c.Member("d"); !ok || !m.Lead {
		t.Fatalf("Member(d) = %+v, %v", m, ok)
	}
	if _, ok := c.Member("a"); ok {
		t.Fatal("a still on team")
	}
	if l, ok := c.Lead(); !ok || l.UserID != "d" {
		t.Fatalf("Lead() = %+v, %v", l, ok)
	}
	if _, ok := withTeam("", "a").Lead(); ok {
		t.Fatal("team without lead has a lead")
	}
}

func TestCustomerApplyStatus(t *testing.T) {
	var c domain.Customer
	c.Apply(domain.ClientInvited{CustomerID: "c1", Profile: prof}, t0)
	if c.ID != "c1" || c.Status != domain.CustomerStatusInvited || c.Profile != prof || !c.CreatedAt.Equal(t0) {
		t.Fatalf("invited: %+v", c)
	}
	c.Apply(domain.CustomerBlocked{CustomerID: "c1"}, t0)
	c.Apply(domain.CustomerUnblocked{CustomerID: "c1"}, t0)
	if c.Status != domain.CustomerStatusInvited {
		t.Fatalf("unblocking an invited client gave %q", c.Status)
	}
	c.Apply(domain.InvitationAccepted{CustomerID: "c1"}, t0)
	c.Apply(domain.CustomerBlocked{CustomerID: "c1"}, t0)
	if c.Status != domain.CustomerStatusBlocked {
		t.Fatalf("status %q", c.Status)
	}
	c.Apply(domain.CustomerUnblocked{CustomerID: "c1"}, t0)
	if c.Status != domain.CustomerStatusActive || c.Version != 6 {
		t.Fatalf("status %q version %d", c.Status, c.Version)
	}
	p := prof
	p.Phone = "+2"
	c.Apply(domain.CustomerUpdated{CustomerID: "c1", Profile: p}, t0)
	if c.Profile != p {
		t.Fatalf("profile %+v", c.Profile)
	}
}

func TestRegisterCustomer(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    domain.Profile
		want string
	}{
		{"first name only", domain.Profile{FirstName: "Ann"}, ""},
		{"last name only", domain.Profile{LastName: "Lee"}, ""},
		{"email only", domain.Profile{Email: "Ann@X.io"}, ""},
		{"nothing to tell apart", domain.Profile{Phone: "+1", ExternalID: "x"}, "validation"},
		{"blanks", domain.Profile{FirstName: " ", Email: " "}, "validation"},
		{"bad email", domain.Profile{FirstName: "Ann", Email: "ann"}, "validation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := domain.RegisterCustomer("c1", "t1", tc.p, nil, domain.DefaultPolicy())
			wantErr(t, err, tc.want)
		})
	}
	evs, err := domain.RegisterCustomer("c1", "t1", domain.Profile{FirstName: " Ann ", Email: " ANN@x.io ", Phone: " +1 "}, nil, domain.DefaultPolicy())
	wantErr(t, err, "")
	want := domain.CustomerRegistered{CustomerID: "c1", Profile: domain.Profile{FirstName: "Ann", Email: "ann@x.io", Phone: "+1"}}
	if len(evs) != 1 || evs[0] != want {
		t.Fatalf("got %+v", evs)
	}
	_, err = domain.RegisterCustomer("", "t1", prof, nil, domain.DefaultPolicy())
	wantErr(t, err, "validation")
	_, err = domain.RegisterCustomer("c1", "", prof, nil, domain.DefaultPolicy())
	wantErr(t, err, "validation")
}

// Under require_assignee a customer is never created without a team, and
// its first team is decided as an invitation's is.
func TestRegisterCustomerTeam(t *testing.T) {
	p := domain.Profile{FirstName: "Ann"}
	keep := domain.Policy{RequireAssignee: true, RequireLead: true}
	_, err := domain.RegisterCustomer("c1", "t1", p, nil, keep)
	wantErr(t, err, domain.CodeTeamRequired)
	if !(&domain.RuleError{Code: domain.CodeTeamRequired}).Unprocessable() {
		t.Fatal("team_required must be a 422")
	}
	_, err = domain.RegisterCustomer("c1", "t1", p, []domain.User{deactivated("a")}, keep)
	wantErr(t, err, domain.CodeUserDeactivated)
	_, err = domain.RegisterCustomer("c1", "t1", p, []domain.User{active("a"), active("a")}, keep)
	wantErr(t, err, "validation")
	evs, err := domain.RegisterCustomer("c1", "t1", p, []domain.User{active("a"), active("b")}, keep)
	wantErr(t, err, "")
	want := []domain.Event{
		domain.CustomerRegistered{CustomerID: "c1", Profile: p},
		domain.UserAssigned{CustomerID: "c1", UserID: "a", Lead: true},
		domain.UserAssigned{CustomerID: "c1", UserID: "b"},
	}
	if !reflect.DeepEqual(evs, want) {
		t.Fatalf("events %+v", evs)
	}
	wantErr(t, domain.RequireTeam(domain.DefaultPolicy(), 0), "")
	wantErr(t, domain.RequireTeam(keep, 1), "")
	// A first team past max_assignees is said of the team given, not of
	// the new customer's ID (an import's dry run never writes it).
	_, err = domain.RegisterCustomer("c1", "t1", p, []domain.User{active("a"), active("b")}, domain.Policy{MaxAssignees: ptr(1)})
	wantErr(t, err, domain.CodeMaxAssigneesReached)
	if strings.Contains(err.Error(), "c1") || !strings.Contains(err.Error(), "a team of 2 is more than the 1") {
		t.Fatalf("the refusal says %q", err)
	}
}

func TestInviteClient(t *testing.T) {
	p := domain.Profile{FirstName: "Ann", Email: "ann@x.io"}
	lead := domain.Policy{RequireLead: true}
	two := domain.Policy{MaxAssignees: ptr(2)}
	for _, tc := range []struct {
		name  string
		p     domain.Profile
		team  []domain.User
		pol   domain.Policy
		want  string
		leads []bool
	}{
		{"no team", p, nil, lead, "", nil},
		{"no team under require_assignee", p, nil, domain.Policy{RequireAssignee: true}, domain.CodeTeamRequired, nil},
		{"a team under require_assignee", p, []domain.User{active("a")}, domain.Policy{RequireAssignee: true}, "", []bool{false}},
		{"first is lead", p, []domain.User{active("a"), active("b")}, lead, "", []bool{true, false}},
		{"no lead without require_lead", p, []domain.User{active("a"), active("b")}, domain.DefaultPolicy(), "", []bool{false, false}},
		{"at max", p, []domain.User{active("a"), active("b")}, two, "", []bool{false, false}},
		{"over max", p, []domain.User{active("a"), active("b"), active("c")}, two, domain.CodeMaxAssigneesReached, nil},
		{"deactivated member", p, []domain.User{active("a"), deactivated("b")}, lead, domain.CodeUserDeactivated, nil},
		{"duplicate member", p, []domain.User{active("a"), active("a")}, lead, "validation", nil},
		{"email required", domain.Profile{FirstName: "Ann"}, nil, lead, "validation", nil},
		{"bad email", domain.Profile{FirstName: "Ann", Email: "x"}, nil, lead, "validation", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := domain.InviteClient("c1", tc.p, tc.team, tc.pol)
			wantErr(t, err, tc.want)
			if err != nil {
				if evs != nil {
					t.Fatalf("refused invitation returned events %+v", evs)
				}
				return
			}
			if evs[0] != (domain.ClientInvited{CustomerID: "c1", Profile: tc.p}) {
				t.Fatalf("first event %+v", evs[0])
			}
			if len(evs) != 1+len(tc.team) {
				t.Fatalf("got %d events", len(evs))
			}
			for i, u := range tc.team {
				want := domain.UserAssigned{CustomerID: "c1", UserID: u.ID, Lead: tc.leads[i]}
				if evs[i+1] != want {
					t.Fatalf("event %d = %+v, want %+v", i+1, evs[i+1], want)
				}
			}
		})
	}
}

func TestAcceptBlockUnblock(t *testing.T) {
	invited := func() domain.Customer {
		var c domain.Customer
		c.Apply(domain.ClientInvited{CustomerID: "c1", Profile: prof}, t0)
		return c
	}
	blocked := func(c domain.Customer) domain.Customer {
		c.Apply(domain.CustomerBlocked{CustomerID: c.ID}, t0)
		return c
	}
	act := customer("c1")

	_, err := invited().AcceptInvitation()
	wantErr(t, err, "")
	_, err = act.AcceptInvitation()
	wantErr(t, err, domain.CodeNotInvited)
	_, err = blocked(invited()).AcceptInvitation()
	wantErr(t, err, domain.CodeNotInvited)

	evs, err := act.Block()
	wantErr(t, err, "")
	if evs[0] != (domain.CustomerBlocked{CustomerID: "c1"}) {
		t.Fatalf("got %+v", evs)
	}
	_, err = invited().Block()
	wantErr(t, err, "")
	_, err = blocked(act).Block()
	wantErr(t, err, domain.CodeAlreadyBlocked)

	evs, err = blocked(act).Unblock()
	wantErr(t, err, "")
	if evs[0] != (domain.CustomerUnblocked{CustomerID: "c1"}) {
		t.Fatalf("got %+v", evs)
	}
	_, err = act.Unblock()
	wantErr(t, err, domain.CodeNotBlocked)
}

func TestBlockedCustomerKeepsTeamAndCommands(t *testing.T) {
	c := withTeam("a", "a")
	c.Apply(domain.CustomerBlocked{CustomerID: "c1"}, t0)
	if len(c.Team) != 1 {
		t.Fatal("blocking changed the team")
	}
	_, err := c.Assign(active("b"), domain.DefaultPolicy())
	wantErr(t, err, "")
	_, err = c.Unassign("a", domain.DefaultPolicy())
	wantErr(t, err, "")
}

func TestUpdateProfile(t *testing.T) {
	c := customer("c1") // FirstName "Ann"
	evs, err := c.UpdateProfile(domain.Profile{FirstName: " Ann "})
	if err != nil || evs != nil {
		t.Fatalf("unchanged profile: %v %v", evs, err)
	}
	evs, err = c.UpdateProfile(domain.Profile{FirstName: "Ann", LastName: "Lee"})
	wantErr(t, err, "")
	if evs[0] != (domain.CustomerUpdated{CustomerID: "c1", Profile: domain.Profile{FirstName: "Ann", LastName: "Lee"}}) {
		t.Fatalf("got %+v", evs)
	}
	_, err = c.UpdateProfile(domain.Profile{})
	wantErr(t, err, "validation")

	var inv domain.Customer
	inv.Apply(domain.ClientInvited{CustomerID: "c2", Profile: prof}, t0)
	_, err = inv.UpdateProfile(domain.Profile{FirstName: "Ann"})
	wantErr(t, err, "validation")
}

func TestAssign(t *testing.T) {
	lead := domain.Policy{RequireLead: true}
	for _, tc := range []struct {
		name     string
		c        domain.Customer
		u        domain.User
		pol      domain.Policy
		want     string
		wantLead bool
	}{
		{"first member", withTeam(""), active("a"), domain.DefaultPolicy(), "", false},
		{"first member is lead under require_lead", withTeam(""), active("a"), lead, "", true},
		{"second member is not lead", withTeam("a", "a"), active("b"), lead, "", false},
		{"lead-less team gets a lead", withTeam("", "a"), active("b"), lead, "", true},
		{"already assigned", withTeam("", "a"), active("a"), domain.DefaultPolicy(), domain.CodeAlreadyAssigned, false},
		{"deactivated", withTeam(""), deactivated("a"), domain.DefaultPolicy(), domain.CodeUserDeactivated, false},
		{"never loaded user", withTeam(""), domain.User{ID: "a"}, domain.DefaultPolicy(), domain.CodeUserDeactivated, false},
		{"below max", withTeam("", "a"), active("b"), domain.Policy{MaxAssignees: ptr(2)}, "", false},
		{"at max", withTeam("", "a", "b"), active("c"), domain.Policy{MaxAssignees: ptr(2)}, domain.CodeMaxAssigneesReached, false},
		{"one owner", withTeam("", "a"), active("b"), domain.Policy{MaxAssignees: ptr(1)}, domain.CodeMaxAssigneesReached, false},
		{"above a lowered max", withTeam("", "a", "b", "c"), active("d"), domain.Policy{MaxAssignees: ptr(2)}, domain.CodeMaxAssigneesReached, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.c.Team)
			evs, err := tc.c.Assign(tc.u, tc.pol)
			wantErr(t, err, tc.want)
			if !reflect.DeepEqual(before, tc.c.Team) {
				t.Fatal("Assign mutated the customer")
			}
			if err != nil {
				return
			}
			want := domain.UserAssigned{CustomerID: "c1", UserID: tc.u.ID, Lead: tc.wantLead}
			if len(evs) != 1 || evs[0] != want {
				t.Fatalf("got %+v, want %+v", evs, want)
			}
		})
	}
}

func TestUnassign(t *testing.T) {
	keep := domain.Policy{RequireAssignee: true}
	lead := domain.Policy{RequireLead: true}
	both := domain.Policy{RequireAssignee: true, RequireLead: true}
	for _, tc := range []struct {
		name string
		c    domain.Customer
		user string
		pol  domain.Policy
		want string
	}{
		{"member", withTeam("", "a", "b"), "b", domain.DefaultPolicy(), ""},
		{"not on team", withTeam("", "a"), "b", domain.DefaultPolicy(), domain.CodeUserNotAssigned},
		{"empty team", withTeam(""), "a", domain.DefaultPolicy(), domain.CodeUserNotAssigned},
		{"last member without require_assignee", withTeam("", "a"), "a", domain.DefaultPolicy(), ""},
		{"last member under require_assignee", withTeam("", "a"), "a", keep, domain.CodeCustomerMustKeepAnAssignee},
		{"one of two under require_assignee", withTeam("", "a", "b"), "a", keep, ""},
		{"lead of a team under require_lead", withTeam("a", "a", "b"), "a", lead, domain.CodeLeadCannotBeRemoved},
		{"non-lead under require_lead", withTeam("a", "a", "b"), "b", lead, ""},
		{"lone lead under require_lead", withTeam("a", "a"), "a", lead, domain.CodeLeadCannotBeRemoved},
		{"lone lead under both", withTeam("a", "a"), "a", both, domain.CodeCustomerMustKeepAnAssignee},
		{"lead without require_lead", withTeam("a", "a", "b"), "a", domain.DefaultPolicy(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := tc.c.Unassign(tc.user, tc.pol)
			wantErr(t, err, tc.want)
			if err != nil {
				return
			}
			if len(evs) != 1 || evs[0] != (domain.UserUnassigned{CustomerID: "c1", UserID: tc.user}) {
				t.Fatalf("got %+v", evs)
			}
		})
	}
}

func TestMakeLead(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    domain.Customer
		user string
		want string
		prev string
		noop bool
	}{
		{"replaces lead", withTeam("a", "a", "b"), "b", "", "a", false},
		{"first lead", withTeam("", "a", "b"), "b", "", "", false},
		{"already lead", withTeam("a", "a", "b"), "a", "", "", true},
		{"not on team", withTeam("a", "a"), "b", domain.CodeUserNotAssigned, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := tc.c.MakeLead(tc.user)
			wantErr(t, err, tc.want)
			if err != nil {
				return
			}
			if tc.noop {
				if evs != nil {
					t.Fatalf("no-op returned %+v", evs)
				}
				return
			}
			want := domain.TeamLeadChanged{CustomerID: "c1", UserID: tc.user, PreviousUserID: tc.prev}
			if len(evs) != 1 || evs[0] != want {
				t.Fatalf("got %+v", evs)
			}
			c := tc.c
			c.Apply(evs[0], t0)
			if leadID(c) != tc.user {
				t.Fatalf("lead after apply = %q", leadID(c))
			}
		})
	}
}

func TestReplace(t *testing.T) {
	full := domain.Policy{MaxAssignees: ptr(2), RequireAssignee: true, RequireLead: true}
	for _, tc := range []struct {
		name     string
		c        domain.Customer
		user     string
		with     domain.User
		want     string
		wantLead bool
	}{
		{"lead keeps lead", withTeam("a", "a", "b"), "a", active("c"), "", true},
		{"member stays member", withTeam("a", "a", "b"), "b", active("c"), "", false},
		{"last member of a full team", withTeam("a", "a"), "a", active("c"), "", true},
		{"not on team", withTeam("a", "a"), "x", active("c"), domain.CodeUserNotAssigned, false},
		{"with already on team", withTeam("a", "a", "b"), "a", active("b"), domain.CodeAlreadyAssigned, false},
		{"with self", withTeam("a", "a"), "a", active("a"), domain.CodeAlreadyAssigned, false},
		{"with deactivated", withTeam("a", "a"), "a", deactivated("c"), domain.CodeUserDeactivated, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := tc.c.Replace(tc.user, tc.with, full)
			wantErr(t, err, tc.want)
			if err != nil {
				return
			}
			want := domain.TeamMemberReplaced{CustomerID: "c1", UserID: tc.user, WithUserID: tc.with.ID, Lead: tc.wantLead}
			if len(evs) != 1 || evs[0] != want {
				t.Fatalf("got %+v", evs)
			}
			c := tc.c
			size := len(c.Team)
			c.Apply(evs[0], t0.Add(time.Hour))
			m, ok := c.Member(tc.with.ID)
			if _, still := c.Member(tc.user); still || !ok || m.Lead != tc.wantLead || !m.AssignedAt.Equal(t0.Add(time.Hour)) || len(c.Team) != size {
				t.Fatalf("team after apply = %+v", c.Team)
			}
		})
	}
}

func TestEraseCustomer(t *testing.T) {
	c := domain.Customer{}
	c.Apply(domain.CustomerRegistered{CustomerID: "c1", Profile: domain.Profile{FirstName: "Ada", Email: "ada@example.org"}}, time.Now())
	events, err := domain.DecideCustomerAction(c, domain.CustomerActionDelete, "")
	if err != nil || len(events) != 1 || events[0] != (domain.CustomerErased{CustomerID: "c1"}) {
		t.Fatalf("delete: %v %v", events, err)
	}
	c.Apply(events[0], time.Now())
	if !c.Erased || c.Profile.Email != "" || !c.Profile.Erased {
		t.Fatalf("after CustomerErased: %+v", c)
	}
	if events, err := domain.DecideCustomerAction(c, domain.CustomerActionDelete, ""); err != nil || len(events) != 0 {
		t.Fatalf("deleting again: %v %v", events, err)
	}
	if _, err := domain.DecideCustomerAction(c, domain.CustomerActionBlock, ""); !domain.IsRule(err, domain.CodeErased) {
		t.Fatalf("blocking an erased customer: %v", err)
	}
	if id, ok := domain.CustomerIDOf(domain.CustomerErased{CustomerID: "c1"}); !ok || id != "c1" {
		t.Fatal("domain.CustomerIDOf(CustomerErased)")
	}
}
