package http_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Issue 13: teams as the seed products run them.

// Under require_assignee a client is never created without a team:
// registering, inviting or importing one with no team member is a 422
// team_required that writes nothing; with a team it works.
func TestTeamRequiredUnderRequireAssignee(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma Member", "member")
	b.setPolicy(t, nil, true, true, true)
	before := b.countEvents(t)

	email := func(s string) string { return fmt.Sprintf("%s.%d@client.example", s, time.Now().UnixNano()) }
	r := b.admin.do("POST", "/v1/customers", map[string]any{"first_name": "Nat", "email": email("nat")})
	if r.status != 422 || r.code() != "team_required" {
		t.Fatalf("register without a team: %d %s", r.status, r.body)
	}
	r = b.admin.do("POST", "/v1/customers", map[string]any{"first_name": "Nat", "email": email("nat"), "team": []string{}})
	if r.status != 422 || r.code() != "team_required" {
		t.Fatalf("register with an empty team: %d %s", r.status, r.body)
	}
	r = b.admin.do("POST", "/v1/clients/invitations", map[string]any{"first_name": "Ivy", "email": email("ivy"), "team": []string{}})
	if r.status != 422 || r.code() != "team_required" {
		t.Fatalf("invite without a team: %d %s", r.status, r.body)
	}
	r = b.admin.csv("POST", "/v1/clients/import", "First Name,Last Name,Email,Phone Number,Team\nIma,Port,"+email("ima")+",,\n")
	var rep struct {
		Created int `json:"created"`
		Errors  []struct {
			Row   int    `json:"row"`
			Error string `json:"error"`
		} `json:"errors"`
	}
	r.decode(t, &rep)
	if r.status != 422 || len(rep.Errors) != 1 || rep.Errors[0].Row != 1 || !strings.Contains(rep.Errors[0].Error, "team_required") {
		t.Fatalf("import without a team: %d %s", r.status, r.body)
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("refused creations appended %d events", n-before)
	}

	// With a team, each works; the first member leads under require_lead.
	c := b.admin.must(201, "POST", "/v1/customers", map[string]any{"first_name": "Nat", "email": email("nat"), "team": []string{u.userID}})
	if as := assignees(t, c); len(as) != 1 || as[0]["user_id"] != u.userID || as[0]["lead"] != true {
		t.Fatalf("registered team %v", as)
	}
	inv := b.admin.must(201, "POST", "/v1/clients/invitations", map[string]any{"first_name": "Ivy", "email": email("ivy"), "team": []string{u.userID}}).json(t)
	if as := inv["customer"].(map[string]any)["assignees"].([]any); len(as) != 1 {
		t.Fatalf("invited team %v", as)
	}
	var me struct {
		Email string `json:"email"`
	}
	b.admin.must(200, "GET", "/v1/users/"+u.userID, nil).decode(t, &me)
	b.admin.csv("POST", "/v1/clients/import", "First Name,Last Name,Email,Phone Number,Team\nIma,Port,"+email("ima")+",,"+me.Email+"\n").decode(t, &rep)
	if rep.Created != 1 {
		t.Fatalf("import with a team: %+v", rep)
	}
	// A member of another tenant or an unknown user is a 404, as for invitations.
	r = b.admin.do("POST", "/v1/customers", map[string]any{"first_name": "Nat", "team": []string{"0190c1f2-0000-7000-8000-000000000000"}})
	if r.status != 404 {
		t.Fatalf("unknown team member: %d %s", r.status, r.body)
	}
}

// Under require_lead the lead cannot be removed, also when alone: it is
// replaced instead.
func TestLoneLeadCannotBeRemoved(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma Member", "member")
	w := b.createUser(t, "Wes Member", "member")
	b.setPolicy(t, nil, false, true, true)
	cust := b.createCustomer(t, "Lena")
	b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID})
	before := b.countEvents(t)
	if r := b.admin.do("DELETE", "/v1/customers/"+cust+"/assignees/"+u.userID, nil); r.status != 409 || r.code() != "lead_cannot_be_removed" {
		t.Fatalf("removing a lone lead: %d %s", r.status, r.body)
	}
	if r := u.do("DELETE", "/v1/customers/"+cust+"/assignees/me", nil); r.status != 409 || r.code() != "lead_cannot_be_removed" {
		t.Fatalf("a lone lead removing themselves: %d %s", r.status, r.body)
	}
	if b.countEvents(t) != before {
		t.Fatal("a refused unassign appended")
	}
	r := b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees/"+u.userID+"/replace", map[string]string{"with_user_id": w.userID})
	if as := assignees(t, r); len(as) != 1 || as[0]["user_id"] != w.userID || as[0]["lead"] != true {
		t.Fatalf("after replacing the lone lead: %v", as)
	}
}
