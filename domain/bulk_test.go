package domain_test

import (
	"reflect"
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

func pairs(cid string, uids ...string) []domain.Pair {
	var ps []domain.Pair
	for _, u := range uids {
		ps = append(ps, domain.Pair{CustomerID: cid, UserID: u})
	}
	return ps
}

func customerWithTeam(id, lead string, ids ...string) domain.Customer {
	var evs []domain.Event
	for _, u := range ids {
		evs = append(evs, domain.UserAssigned{CustomerID: id, UserID: u, Lead: u == lead})
	}
	return customer(id, evs...)
}

func TestPlanBulkAddProgressiveMax(t *testing.T) {
	pol := domain.Policy{MaxAssignees: ptr(2), RequireLead: true}
	c1 := customerWithTeam("c1", "")
	c2 := customerWithTeam("c2", "b", "b")
	users := []domain.User{active("a"), active("b"), active("c"), deactivated("d")}
	plan := domain.PlanBulk(domain.BulkAdd, []domain.Customer{c1, c2}, users, pol)

	if want := append(pairs("c1", "a", "b"), pairs("c2", "a")...); !reflect.DeepEqual(plan.ToBeAssigned, want) {
		t.Errorf("ToBeAssigned = %+v", plan.ToBeAssigned)
	}
	if want := pairs("c2", "b"); !reflect.DeepEqual(plan.Unchanged, want) {
		t.Errorf("Unchanged = %+v", plan.Unchanged)
	}
	var got []string
	for _, e := range plan.Errors {
		got = append(got, e.CustomerID+"/"+e.UserID+"/"+e.Code)
	}
	want := []string{
		"c1/c/" + domain.CodeMaxAssigneesReached, "c1/d/" + domain.CodeUserDeactivated,
		"c2/c/" + domain.CodeMaxAssigneesReached, "c2/d/" + domain.CodeUserDeactivated,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Errors = %v, want %v", got, want)
	}
	if plan.ToBeDeassigned != nil {
		t.Errorf("ToBeDeassigned = %+v", plan.ToBeDeassigned)
	}
	wantEvents := map[string][]domain.Event{
		"c1": {domain.UserAssigned{CustomerID: "c1", UserID: "a", Lead: true}, domain.UserAssigned{CustomerID: "c1", UserID: "b"}},
		"c2": {domain.UserAssigned{CustomerID: "c2", UserID: "a"}},
	}
	if !reflect.DeepEqual(plan.Events, wantEvents) {
		t.Errorf("Events = %+v", plan.Events)
	}
	if len(c1.Team) != 0 || len(c2.Team) != 1 {
		t.Error("PlanBulk mutated its input")
	}
}

func TestPlanBulkAddNoErrors(t *testing.T) {
	plan := domain.PlanBulk(domain.BulkAdd,
		[]domain.Customer{customerWithTeam("c1", ""), customerWithTeam("c1", "")}, // duplicate customer
		[]domain.User{active("a"), active("a")}, domain.DefaultPolicy())           // duplicate user
	if len(plan.Errors) != 0 || !reflect.DeepEqual(plan.ToBeAssigned, pairs("c1", "a")) || len(plan.Unchanged) != 0 {
		t.Fatalf("plan = %+v", plan)
	}
}

func TestPlanBulkRemove(t *testing.T) {
	keep := domain.Policy{RequireAssignee: true}
	lead := domain.Policy{RequireLead: true}
	for _, tc := range []struct {
		name      string
		c         domain.Customer
		users     []string
		pol       domain.Policy
		removed   []string
		unchanged []string
		errs      []string
	}{
		{"not on team is unchanged", customerWithTeam("c1", "", "a"), []string{"a", "x"}, domain.DefaultPolicy(),
			[]string{"a"}, []string{"x"}, nil},
		{"whole team under require_assignee", customerWithTeam("c1", "", "a", "b"), []string{"a", "b"}, keep,
			[]string{"a"}, nil, []string{"b/" + domain.CodeCustomerMustKeepAnAssignee}},
		{"whole team under require_lead, lead listed first", customerWithTeam("c1", "a", "a", "b"), []string{"a", "b"}, lead,
			[]string{"b"}, nil, []string{"a/" + domain.CodeLeadCannotBeRemoved}},
		{"whole team without rules, lead listed first", customerWithTeam("c1", "a", "a", "b"), []string{"a", "b"}, domain.DefaultPolicy(),
			[]string{"b", "a"}, nil, nil},
		{"lead of a remaining team", customerWithTeam("c1", "a", "a", "b", "c"), []string{"a", "b"}, lead,
			[]string{"b"}, nil, []string{"a/" + domain.CodeLeadCannotBeRemoved}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var users []domain.User
			for _, id := range tc.users {
				users = append(users, active(id))
			}
			plan := domain.PlanBulk(domain.BulkRemove, []domain.Customer{tc.c}, users, tc.pol)
			if !reflect.DeepEqual(plan.ToBeDeassigned, pairs("c1", tc.removed...)) {
				t.Errorf("ToBeDeassigned = %+v", plan.ToBeDeassigned)
			}
			if !reflect.DeepEqual(plan.Unchanged, pairs("c1", tc.unchanged...)) {
				t.Errorf("Unchanged = %+v", plan.Unchanged)
			}
			var errs []string
			for _, e := range plan.Errors {
				errs = append(errs, e.UserID+"/"+e.Code)
			}
			if !reflect.DeepEqual(errs, tc.errs) {
				t.Errorf("Errors = %v", errs)
			}
			var evs []domain.Event
			for _, u := range tc.removed {
				evs = append(evs, domain.UserUnassigned{CustomerID: "c1", UserID: u})
			}
			if !reflect.DeepEqual(plan.Events["c1"], evs) {
				t.Errorf("Events = %+v", plan.Events)
			}
		})
	}
}

func TestPlanBulkInvalidAction(t *testing.T) {
	if domain.BulkAction("move").Valid() || !domain.BulkAdd.Valid() || !domain.BulkRemove.Valid() {
		t.Fatal("Valid() wrong")
	}
	plan := domain.PlanBulk("move", []domain.Customer{customerWithTeam("c1", "")}, []domain.User{active("a")}, domain.DefaultPolicy())
	if len(plan.Errors) != 1 || plan.Errors[0].Code != domain.CodeInvalidBulkAction || len(plan.Events) != 0 {
		t.Fatalf("plan = %+v", plan)
	}
}

// set with one user under max_assignees 1 is the one-owner reassignment:
// owned customers change hands (the lead passing first), others get the
// owner, the owner's own customers are unchanged.
func TestPlanBulkSetOneOwner(t *testing.T) {
	pol := domain.Policy{MaxAssignees: ptr(1), RequireLead: true}
	owned := customerWithTeam("c1", "a", "a")
	free := customerWithTeam("c2", "")
	mine := customerWithTeam("c3", "b", "b")
	plan := domain.PlanBulk(domain.BulkSet, []domain.Customer{owned, free, mine}, []domain.User{active("b")}, pol)
	if len(plan.Errors) != 0 {
		t.Fatalf("errors %+v", plan.Errors)
	}
	if want := append(pairs("c1", "b"), pairs("c2", "b")...); !reflect.DeepEqual(plan.ToBeAssigned, want) {
		t.Errorf("ToBeAssigned = %+v", plan.ToBeAssigned)
	}
	if !reflect.DeepEqual(plan.ToBeDeassigned, pairs("c1", "a")) || !reflect.DeepEqual(plan.Unchanged, pairs("c3", "b")) {
		t.Errorf("ToBeDeassigned = %+v, Unchanged = %+v", plan.ToBeDeassigned, plan.Unchanged)
	}
	want := []domain.Event{
		domain.UserAssigned{CustomerID: "c1", UserID: "b"},
		domain.TeamLeadChanged{CustomerID: "c1", UserID: "b", PreviousUserID: "a"},
		domain.UserUnassigned{CustomerID: "c1", UserID: "a"},
	}
	if !reflect.DeepEqual(plan.Events["c1"], want) || len(plan.Events["c2"]) != 1 || plan.Events["c3"] != nil {
		t.Fatalf("events %+v", plan.Events)
	}
}

func TestPlanBulkSetBlamesTheUserAtFault(t *testing.T) {
	pol := domain.Policy{MaxAssignees: ptr(1), RequireLead: true}
	plan := domain.PlanBulk(domain.BulkSet, []domain.Customer{customerWithTeam("c1", "a", "a")},
		[]domain.User{active("a"), active("b")}, pol)
	if len(plan.Errors) != 1 || plan.Errors[0].UserID != "b" || plan.Errors[0].Code != domain.CodeMaxAssigneesReached {
		t.Fatalf("over max: %+v", plan.Errors)
	}
	plan = domain.PlanBulk(domain.BulkSet, []domain.Customer{customerWithTeam("c1", "a", "a")}, []domain.User{deactivated("d")}, pol)
	if len(plan.Errors) != 1 || plan.Errors[0].UserID != "d" || plan.Errors[0].Code != domain.CodeUserDeactivated || len(plan.Events) != 0 {
		t.Fatalf("deactivated: %+v", plan)
	}
}

func TestAuthorizeBulk(t *testing.T) {
	admin := domain.Actor{UserID: "x", Role: domain.RoleAdmin}
	me := domain.Actor{UserID: "m", Role: domain.RoleMember}
	self := domain.Policy{MembersCanSelfAssign: true}
	wantErr(t, domain.AuthorizeBulk(admin, domain.Policy{}, domain.BulkSet, []string{"a", "b"}), "")
	wantErr(t, domain.AuthorizeBulk(me, self, domain.BulkAdd, []string{"m"}), "")
	wantErr(t, domain.AuthorizeBulk(me, self, domain.BulkRemove, []string{"m"}), "")
	wantErr(t, domain.AuthorizeBulk(me, self, domain.BulkAdd, []string{"m", "a"}), "forbidden")
	wantErr(t, domain.AuthorizeBulk(me, self, domain.BulkSet, []string{"m"}), "forbidden")
	wantErr(t, domain.AuthorizeBulk(me, domain.Policy{}, domain.BulkAdd, []string{"m"}), "forbidden")
}
