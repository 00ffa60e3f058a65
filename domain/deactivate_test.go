package domain_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

func TestDeactivateUserWithTransfer(t *testing.T) {
	u, to := active("u"), active("t")
	customers := []domain.Customer{
		customerWithTeam("c1", "u", "u", "x"), // u leads, t absent: replaced, lead kept
		customerWithTeam("c2", "x", "x", "u"), // u member, t absent: replaced as member
		customerWithTeam("c3", "u", "u", "t"), // u leads, t present: lead handed over, then unassigned
		customerWithTeam("c4", "", "t", "u"),  // u member, t present: unassigned
		customerWithTeam("c5", "", "x"),       // u absent: ignored
	}
	strict := domain.Policy{MaxAssignees: ptr(2), RequireAssignee: true, RequireLead: true}
	userEvs, custEvs, err := domain.DeactivateUser(u, &to, customers, strict)
	wantErr(t, err, "")
	if len(userEvs) != 1 || userEvs[0].(domain.UserDeactivated).TransferTo != "t" {
		t.Fatalf("user events %+v", userEvs)
	}
	want := map[string][]domain.Event{
		"c1": {domain.TeamMemberReplaced{CustomerID: "c1", UserID: "u", WithUserID: "t", Lead: true}},
		"c2": {domain.TeamMemberReplaced{CustomerID: "c2", UserID: "u", WithUserID: "t", Lead: false}},
		"c3": {domain.TeamLeadChanged{CustomerID: "c3", UserID: "t", PreviousUserID: "u"}, domain.UserUnassigned{CustomerID: "c3", UserID: "u"}},
		"c4": {domain.UserUnassigned{CustomerID: "c4", UserID: "u"}},
	}
	if !reflect.DeepEqual(custEvs, want) {
		t.Fatalf("customer events %+v", custEvs)
	}
	for _, c := range customers[:4] {
		for _, e := range custEvs[c.ID] {
			c.Apply(e, t0)
		}
		if _, ok := c.Member("u"); ok {
			t.Errorf("%s still has u", c.ID)
		}
		if leadID(c) == "" && c.ID != "c4" {
			t.Errorf("%s lost its lead", c.ID)
		}
	}
}

func TestDeactivateUserWithoutTransfer(t *testing.T) {
	keep := domain.Policy{RequireAssignee: true}
	lead := domain.Policy{RequireLead: true}
	for _, tc := range []struct {
		name      string
		customers []domain.Customer
		pol       domain.Policy
		want      string
		blame     string
	}{
		{"unassigned everywhere", []domain.Customer{customerWithTeam("c1", "", "u", "x"), customerWithTeam("c2", "", "u")},
			domain.DefaultPolicy(), "", ""},
		{"last member under require_assignee", []domain.Customer{customerWithTeam("c1", "", "u", "x"), customerWithTeam("c2", "", "u")},
			keep, domain.CodeCustomerMustKeepAnAssignee, "c2"},
		{"lead of a team under require_lead", []domain.Customer{customerWithTeam("c1", "u", "u", "x")},
			lead, domain.CodeLeadCannotBeRemoved, "c1"},
		{"lone lead under require_lead", []domain.Customer{customerWithTeam("c1", "u", "u")}, lead, domain.CodeLeadCannotBeRemoved, "c1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			userEvs, custEvs, err := domain.DeactivateUser(active("u"), nil, tc.customers, tc.pol)
			wantErr(t, err, tc.want)
			if err != nil {
				if userEvs != nil || custEvs != nil {
					t.Fatal("refused deactivation returned events")
				}
				if !strings.Contains(err.Error(), tc.blame) {
					t.Fatalf("error %q does not name %s", err, tc.blame)
				}
				return
			}
			if len(userEvs) != 1 || len(custEvs) != len(tc.customers) {
				t.Fatalf("events %+v %+v", userEvs, custEvs)
			}
			for _, c := range tc.customers {
				if !reflect.DeepEqual(custEvs[c.ID], []domain.Event{domain.UserUnassigned{CustomerID: c.ID, UserID: "u"}}) {
					t.Fatalf("%s: %+v", c.ID, custEvs[c.ID])
				}
			}
		})
	}
}

func TestDeactivateUserRefusals(t *testing.T) {
	self, gone := active("u"), deactivated("t")
	c := []domain.Customer{customerWithTeam("c1", "", "u")}
	_, _, err := domain.DeactivateUser(deactivated("u"), nil, c, domain.DefaultPolicy())
	wantErr(t, err, domain.CodeAlreadyDeactivated)
	_, _, err = domain.DeactivateUser(active("u"), &self, c, domain.DefaultPolicy())
	wantErr(t, err, domain.CodeTransferToSelf)
	_, _, err = domain.DeactivateUser(active("u"), &gone, c, domain.DefaultPolicy())
	wantErr(t, err, domain.CodeUserDeactivated)
}

func TestPlanDeactivationReportsEveryRefusal(t *testing.T) {
	keep := domain.Policy{RequireAssignee: true}
	customers := []domain.Customer{customerWithTeam("c1", "", "u"), customerWithTeam("c2", "", "u", "x"), customerWithTeam("c3", "", "u")}
	plan, err := domain.PlanDeactivation(active("u"), nil, customers, keep)
	wantErr(t, err, "")
	if len(plan.Errors) != 2 || plan.Errors[0].CustomerID != "c1" || plan.Errors[1].CustomerID != "c3" ||
		plan.Errors[0].Code != domain.CodeCustomerMustKeepAnAssignee || !reflect.DeepEqual(plan.Leaving, []string{"c2"}) {
		t.Fatalf("plan %+v", plan)
	}
	heir := active("h")
	plan, err = domain.PlanDeactivation(active("u"), &heir, customers, keep)
	wantErr(t, err, "")
	if len(plan.Errors) != 0 || len(plan.Leaving) != 3 {
		t.Fatalf("plan with transfer %+v", plan)
	}
}

func TestPlanTransfer(t *testing.T) {
	from, to := active("u"), active("h")
	customers := []domain.Customer{customerWithTeam("c1", "u", "u"), customerWithTeam("c2", "u", "u", "h"), customerWithTeam("c3", "", "x")}
	plan, err := domain.PlanTransfer(from, to, customers, false)
	wantErr(t, err, "")
	if !reflect.DeepEqual(plan.ToBeAssigned, pairs("c1", "h")) || !reflect.DeepEqual(plan.Unchanged, pairs("c2", "h")) ||
		!reflect.DeepEqual(plan.ToBeDeassigned, append(pairs("c1", "u"), pairs("c2", "u")...)) || len(plan.Errors) != 0 {
		t.Fatalf("plan %+v", plan)
	}
	if !reflect.DeepEqual(plan.Events["c1"], []domain.Event{domain.TeamMemberReplaced{CustomerID: "c1", UserID: "u", WithUserID: "h", Lead: true}}) ||
		!reflect.DeepEqual(plan.Events["c2"], []domain.Event{
			domain.TeamLeadChanged{CustomerID: "c2", UserID: "h", PreviousUserID: "u"},
			domain.UserUnassigned{CustomerID: "c2", UserID: "u"},
		}) || plan.Events["c3"] != nil {
		t.Fatalf("events %+v", plan.Events)
	}
	// Listed customers the user is not on are errors.
	plan, err = domain.PlanTransfer(from, to, customers, true)
	wantErr(t, err, "")
	if len(plan.Errors) != 1 || plan.Errors[0].CustomerID != "c3" || plan.Errors[0].Code != domain.CodeUserNotAssigned {
		t.Fatalf("listed: %+v", plan.Errors)
	}
	_, err = domain.PlanTransfer(from, from, customers, false)
	wantErr(t, err, domain.CodeTransferToSelf)
	_, err = domain.PlanTransfer(from, deactivated("h"), customers, false)
	wantErr(t, err, domain.CodeUserDeactivated)
}
