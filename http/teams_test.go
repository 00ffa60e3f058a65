package http_test

import (
	"fmt"
	"slices"
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

// SetTeam: the profile's toggles and one Save. The team becomes exactly
// user_ids in one append of the differences, judged on the resulting team.
func TestSetTeam(t *testing.T) {
	b := setup(t)
	u1, u2, u3 := b.createUser(t, "Uma One", "member"), b.createUser(t, "Ulf Two", "member"), b.createUser(t, "Ute Three", "member")
	m := b.createUser(t, "Mia Member", "member")
	gone := b.createUser(t, "Gil Gone", "member")
	b.admin.must(200, "POST", "/v1/users/"+gone.userID+"/deactivate", nil)
	b.setPolicy(t, 3, false, true, true)
	cust := b.createCustomer(t, "Sally")
	path := "/v1/customers/" + cust + "/assignees"
	b.admin.must(200, "POST", path, map[string]string{"user_id": u1.userID})

	type teamView struct {
		Version   int64 `json:"version"`
		Position  int64 `json:"position"`
		Assignees []struct {
			UserID string `json:"user_id"`
			Lead   bool   `json:"lead"`
		} `json:"assignees"`
	}
	team := func(r response) (ids []string, lead string) {
		var v teamView
		r.decode(t, &v)
		for _, a := range v.Assignees {
			ids = append(ids, a.UserID)
			if a.Lead {
				lead = a.UserID
			}
		}
		return ids, lead
	}
	// appended returns the types of the events after position before, and
	// how many correlation IDs they carry.
	appended := func(before int) (types []string, correlations int) {
		rows, err := b.pool.Query(t.Context(), `SELECT type FROM events WHERE position > $1 ORDER BY position`, before)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var typ string
			_ = rows.Scan(&typ)
			types = append(types, typ)
		}
		rows.Close()
		_ = b.pool.QueryRow(t.Context(), `SELECT count(DISTINCT metadata->>'correlation_id') FROM events WHERE position > $1`, before).Scan(&correlations)
		return types, correlations
	}
	lastPosition := func() int {
		var p int
		_ = b.pool.QueryRow(t.Context(), `SELECT max(position) FROM events`).Scan(&p)
		return p
	}

	// Two toggles on, one Save: two UserAssigned in one append.
	before := lastPosition()
	r := b.admin.must(200, "PUT", path, map[string]any{"user_ids": []string{u1.userID, u2.userID, u3.userID}})
	if ids, lead := team(r); len(ids) != 3 || lead != u1.userID {
		t.Fatalf("team %v lead %s", ids, lead)
	}
	if types, corr := appended(before); !slices.Equal(types, []string{"UserAssigned", "UserAssigned"}) || corr != 1 {
		t.Fatalf("appended %v with %d correlation ids", types, corr)
	}
	if r.header.Get("ETag") == "" || r.header.Get("X-Ledger-Position") == "" {
		t.Fatalf("answer lacks ETag or position: %v", r.header)
	}

	// The lead leaves and another is named: the lead passes first.
	before = lastPosition()
	r = b.admin.must(200, "PUT", path, map[string]any{"user_ids": []string{u2.userID, u3.userID}, "lead": u3.userID})
	if ids, lead := team(r); len(ids) != 2 || lead != u3.userID {
		t.Fatalf("team %v lead %s", ids, lead)
	}
	if types, _ := appended(before); !slices.Equal(types, []string{"TeamLeadChanged", "UserUnassigned"}) {
		t.Fatalf("appended %v", types)
	}

	// Refusals append nothing.
	refused := func(status int, code string, c *client, body any, headers ...hdr) {
		t.Helper()
		n := b.countEvents(t)
		r := c.do("PUT", path, body, headers...)
		if r.status != status || r.code() != code {
			t.Fatalf("PUT %v: %d %s, want %d %s", body, r.status, r.body, status, code)
		}
		if b.countEvents(t) != n {
			t.Fatalf("refused SetTeam %v appended", body)
		}
	}
	refused(409, "max_assignees_reached", b.admin, map[string]any{"user_ids": []string{u1.userID, u2.userID, u3.userID, m.userID}})
	refused(409, "lead_cannot_be_removed", b.admin, map[string]any{"user_ids": []string{}})
	refused(409, "user_deactivated", b.admin, map[string]any{"user_ids": []string{u2.userID, u3.userID, gone.userID}})
	refused(409, "user_not_assigned", b.admin, map[string]any{"user_ids": []string{u2.userID, u3.userID}, "lead": u1.userID})
	refused(400, "invalid_input", b.admin, map[string]any{"lead": u3.userID})
	refused(400, "invalid_input", b.admin, map[string]any{"user_ids": []string{u2.userID, u2.userID}})
	refused(404, "not_found", b.admin, map[string]any{"user_ids": []string{u2.userID, "0190c1f2-0000-7000-8000-000000000000"}})
	refused(412, "version_mismatch", b.admin, map[string]any{"user_ids": []string{u2.userID}}, hdr{"If-Match": `"1"`})

	// Members add or remove only themselves.
	refused(403, "forbidden", m, map[string]any{"user_ids": []string{u3.userID, m.userID}})
	refused(403, "forbidden", m, map[string]any{"user_ids": []string{u2.userID, u3.userID, m.userID}, "lead": m.userID})
	r = m.must(200, "PUT", path, map[string]any{"user_ids": []string{u2.userID, u3.userID, "me"}})
	if ids, _ := team(r); !slices.Contains(ids, m.userID) {
		t.Fatalf("member did not join: %v", ids)
	}
	r = m.must(200, "PUT", path, map[string]any{"user_ids": []string{u2.userID, u3.userID}})
	if ids, _ := team(r); slices.Contains(ids, m.userID) {
		t.Fatalf("member did not leave: %v", ids)
	}

	// An unchanged team appends nothing; a keyed retry replays the answer.
	n := b.countEvents(t)
	b.admin.must(200, "PUT", path, map[string]any{"user_ids": []string{u3.userID, u2.userID}})
	if b.countEvents(t) != n {
		t.Fatal("an unchanged team appended")
	}
	key := hdr{"Idempotency-Key": "set-team-1"}
	first := b.admin.must(200, "PUT", path, map[string]any{"user_ids": []string{u3.userID}}, key)
	n = b.countEvents(t)
	again := b.admin.must(200, "PUT", path, map[string]any{"user_ids": []string{u3.userID}}, key)
	if string(again.body) != string(first.body) || b.countEvents(t) != n {
		t.Fatalf("replay: %s vs %s", again.body, first.body)
	}
}
