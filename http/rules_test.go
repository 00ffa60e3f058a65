package http_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// newClient registers a customer with an e-mail (and optional fields) and
// answers its JSON.
func (b *testBundle) newClient(t *testing.T, email string, extra map[string]any) map[string]any {
	t.Helper()
	body := map[string]any{"first_name": "C", "email": email}
	for k, v := range extra {
		body[k] = v
	}
	return b.admin.must(201, "POST", "/v1/customers", body).json(t)
}

func soleAssignee(t *testing.T, c map[string]any) string {
	t.Helper()
	as := c["assignees"].([]any)
	if len(as) != 1 {
		t.Fatalf("team of %v: %v", c["id"], as)
	}
	return as[0].(map[string]any)["user_id"].(string)
}

// ruleIDsOf reads the rule_id of every UserAssigned of the tenant, in
// order (the audit contract: UserAssigned by a rule carries rule_id).
func (b *testBundle) ruleIDsOf(t *testing.T) []string {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT coalesce(data->>'rule_id', '') FROM events WHERE type = 'UserAssigned' ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestAssignmentRulesCRUD: create, list in order, get, change, delete, and
// bad input refused (400, nothing written).
func TestAssignmentRulesCRUD(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Una", "member")
	aud := b.createUser(t, "Aldo", "auditor")
	second := b.admin.must(201, "POST", "/v1/assignment-rules", map[string]any{"name": "Second", "order": 20,
		"match": map[string]any{"email_domain": "Acme.Example"}, "assign": map[string]any{"user_ids": []string{u.userID}, "strategy": "round_robin"}}).json(t)
	first := b.admin.must(201, "POST", "/v1/assignment-rules", map[string]any{"name": "First", "order": 10,
		"match":  map[string]any{"email_domain": []string{"a.example", "@b.example"}, "title_contains": "CEO"},
		"assign": map[string]any{"user_ids": []string{u.userID, b.admin.userID}, "strategy": "weighted", "weights": map[string]int{u.userID: 2, b.admin.userID: 1}}}).json(t)
	if d := second["match"].(map[string]any)["email_domain"].([]any); len(d) != 1 || d[0] != "acme.example" {
		t.Fatalf("normalized domain: %v", second)
	}
	list := aud.must(200, "GET", "/v1/assignment-rules", nil).json(t)["items"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["id"] != first["id"] || list[1].(map[string]any)["id"] != second["id"] {
		t.Fatalf("list: %v", list)
	}
	id := second["id"].(string)
	b.admin.must(200, "GET", "/v1/assignment-rules/"+id, nil)
	ch := b.admin.must(200, "PUT", "/v1/assignment-rules/"+id, map[string]any{"name": "Second!", "order": 5,
		"assign": map[string]any{"user_ids": []string{u.userID}, "strategy": "least_loaded"}}).json(t)
	if ch["name"] != "Second!" || ch["order"] != float64(5) {
		t.Fatalf("changed: %v", ch)
	}
	list = b.admin.must(200, "GET", "/v1/assignment-rules", nil).json(t)["items"].([]any)
	if list[0].(map[string]any)["id"] != id {
		t.Fatalf("reordered: %v", list)
	}
	before := b.countEvents(t)
	for _, bad := range []map[string]any{
		{"name": "x", "assign": map[string]any{"user_ids": []string{u.userID}, "strategy": "random"}},
		{"name": "x", "assign": map[string]any{"user_ids": []string{u.userID}, "strategy": "weighted"}},
		{"name": "x", "assign": map[string]any{"user_ids": []string{}, "strategy": "round_robin"}},
		{"name": "x", "assign": map[string]any{"user_ids": []string{"0193f7c2-0000-7000-8000-000000000001"}, "strategy": "round_robin"}},
		{"name": "", "assign": map[string]any{"user_ids": []string{u.userID}, "strategy": "round_robin"}},
		{"name": "x", "match": map[string]any{"email_domain": 5}, "assign": map[string]any{"user_ids": []string{u.userID}, "strategy": "round_robin"}},
		// A group the tenant does not have (found by hostile testing: the
		// rule was stored and never matched).
		{"name": "x", "match": map[string]any{"group": "0193f7c2-0000-7000-8000-000000000002"}, "assign": map[string]any{"user_ids": []string{u.userID}, "strategy": "round_robin"}},
	} {
		if r := b.admin.do("POST", "/v1/assignment-rules", bad); r.status != 400 {
			t.Fatalf("%v: %d %s", bad, r.status, r.body)
		}
	}
	// A value of the wrong type names its whole path, as other refusals do
	// (found by hostile testing: a string weight named "weights").
	badInput(t, b.admin.do("POST", "/v1/assignment-rules", map[string]any{"name": "x",
		"assign": map[string]any{"user_ids": []string{u.userID}, "strategy": "weighted", "weights": map[string]any{u.userID: "x"}}}), "assign.weights", "a string weight")
	badInput(t, b.admin.do("POST", "/v1/assignment-rules", map[string]any{"name": "x", "match": map[string]any{"title_contains": 5},
		"assign": map[string]any{"user_ids": []string{u.userID}, "strategy": "round_robin"}}), "match.title_contains", "a number for a title")
	if r := b.admin.do("POST", "/v1/assignment-rules", map[string]any{"name": "x", "assign": map[string]any{"user_ids": []string{aud.userID}, "strategy": "round_robin"}}); r.status != 409 {
		t.Fatalf("auditor in a rule: %d %s", r.status, r.body)
	}
	if r := u.do("POST", "/v1/assignment-rules", map[string]any{"name": "x", "assign": map[string]any{"user_ids": []string{u.userID}, "strategy": "round_robin"}}); r.status != 403 {
		t.Fatalf("member: %d", r.status)
	}
	if b.countEvents(t) != before {
		t.Fatal("refused rule commands wrote events")
	}
	// "me" stands for the caller here as wherever a user ID goes; a group
	// of the tenant is taken.
	g := b.admin.must(201, "POST", "/v1/groups", map[string]any{"name": "Ruled"}).json(t)["id"].(string)
	mine := b.admin.must(201, "POST", "/v1/assignment-rules", map[string]any{"name": "Mine", "match": map[string]any{"group": g},
		"assign": map[string]any{"user_ids": []string{"me"}, "strategy": "weighted", "weights": map[string]int{"me": 3}}}).json(t)
	if ids := mine["assign"].(map[string]any)["user_ids"].([]any); len(ids) != 1 || ids[0] != b.admin.userID ||
		mine["assign"].(map[string]any)["weights"].(map[string]any)[b.admin.userID] != float64(3) {
		t.Fatalf("a rule of me: %v", mine)
	}
	b.admin.must(204, "DELETE", "/v1/assignment-rules/"+mine["id"].(string), nil)
	b.admin.must(204, "DELETE", "/v1/assignment-rules/"+id, nil)
	b.admin.must(404, "GET", "/v1/assignment-rules/"+id, nil)
	b.admin.must(404, "PUT", "/v1/assignment-rules/"+id, map[string]any{"name": "x", "assign": map[string]any{"user_ids": []string{u.userID}, "strategy": "round_robin"}})
	if n := len(b.admin.must(200, "GET", "/v1/assignment-rules", nil).json(t)["items"].([]any)); n != 1 {
		t.Fatalf("after delete: %d rules", n)
	}
}

// TestAssignmentRulesAssignNewCustomers: register, invite and import
// without a team go through the first matching rule; round_robin cycles
// and skips away, deactivated and at-capacity users; weighted follows the
// weights; least_loaded picks the fewest; UserAssigned carries rule_id; no
// one eligible leaves the customer unassigned and tells the admins, or
// under require_assignee is 422 no_eligible_assignee.
func TestAssignmentRulesAssignNewCustomers(t *testing.T) {
	b := setup(t, setupOpts{smtpURL: "smtp://127.0.0.1:1"})
	u1, u2, u3 := b.createUser(t, "U1", "member"), b.createUser(t, "U2", "member"), b.createUser(t, "U3", "member")
	rr := b.admin.must(201, "POST", "/v1/assignment-rules", map[string]any{"name": "Acme round robin", "order": 1,
		"match":  map[string]any{"email_domain": "acme.example"},
		"assign": map[string]any{"user_ids": []string{u1.userID, u2.userID, u3.userID}, "strategy": "round_robin"}}).json(t)["id"].(string)
	wt := b.admin.must(201, "POST", "/v1/assignment-rules", map[string]any{"name": "VIP weighted", "order": 2,
		"match":  map[string]any{"title_contains": "vip", "external_id_prefix": "V-"},
		"assign": map[string]any{"user_ids": []string{u1.userID, u2.userID}, "strategy": "weighted", "weights": map[string]int{u1.userID: 2, u2.userID: 1}}}).json(t)["id"].(string)
	ll := b.admin.must(201, "POST", "/v1/assignment-rules", map[string]any{"name": "Everyone else", "order": 3,
		"assign": map[string]any{"user_ids": []string{u2.userID, u3.userID}, "strategy": "least_loaded"}}).json(t)["id"].(string)

	var got []string
	for i := range 4 {
		got = append(got, soleAssignee(t, b.newClient(t, fmt.Sprintf("c%d@acme.example", i), nil)))
	}
	if want := []string{u1.userID, u2.userID, u3.userID, u1.userID}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("round robin gave %v, want %v", got, want)
	}
	// Away and deactivated users are skipped; the turn goes on from them.
	u2.must(200, "PATCH", "/v1/users/me", map[string]any{"away_until": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	if a := soleAssignee(t, b.newClient(t, "d1@acme.example", nil)); a != u3.userID {
		t.Fatalf("u2 away: got %s", a)
	}
	u2.must(200, "PATCH", "/v1/users/me", map[string]any{"away_until": nil})
	if a := soleAssignee(t, b.newClient(t, "d2@acme.example", nil)); a != u1.userID {
		t.Fatalf("after u3: got %s", a)
	}
	// Weighted 2:1 interleaves: u1, u2, u1.
	got = nil
	for i := range 3 {
		got = append(got, soleAssignee(t, b.newClient(t, fmt.Sprintf("v%d@vip.example", i), map[string]any{"title": "The VIP", "external_id": fmt.Sprintf("V-%d", i)})))
	}
	if want := []string{u1.userID, u2.userID, u1.userID}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("weighted gave %v, want %v", got, want)
	}
	// least_loaded: u2 serves 2 (c1, v1), u3 3 (c2, d1) -> u2, then equal.
	if a := soleAssignee(t, b.newClient(t, "x1@other.example", nil)); a != u2.userID {
		t.Fatalf("least loaded: %s", a)
	}
	// An invitation and an import take the rules too.
	inv := b.admin.must(201, "POST", "/v1/clients/invitations", map[string]any{"first_name": "I", "email": "inv@acme.example"}).json(t)
	if a := soleAssignee(t, inv["customer"].(map[string]any)); a != u2.userID {
		t.Fatalf("invitation: %s", a)
	}
	imp := b.admin.csv("POST", "/v1/clients/import", "First Name,Last Name,Email,Phone Number,Team\nA,B,imp1@acme.example,,\nC,D,imp2@acme.example,,\n")
	if imp.status != 200 {
		t.Fatalf("import: %d %s", imp.status, imp.body)
	}
	ids := b.ruleIDsOf(t)
	want := []string{rr, rr, rr, rr, rr, rr, wt, wt, wt, ll, rr, rr, rr}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("rule_ids %v\nwant     %v", ids, want)
	}

	// Capacity: everyone at the cap -> nobody eligible; admins told.
	b.admin.must(200, "PUT", "/v1/policy", map[string]any{"max_assignees": nil, "require_assignee": false,
		"require_lead": false, "members_can_self_assign": true, "max_customers_per_user": 1})
	c := b.newClient(t, "none@acme.example", nil)
	if len(c["assignees"].([]any)) != 0 {
		t.Fatalf("assigned past the cap: %v", c)
	}
	r := b.admin.must(200, "GET", "/v1/customers/"+c["id"].(string), nil)
	_ = r
	waitFor(t, 10*time.Second, func() bool {
		n := b.admin.must(200, "GET", "/v1/users/me/notifications", nil).json(t)["items"].([]any)
		for _, it := range n {
			if m := it.(map[string]any); m["type"] == "rule_found_no_one" && m["customer_id"] == c["id"] {
				return true
			}
		}
		return false
	})
	// Under require_assignee: refused, nothing written.
	b.admin.must(200, "PUT", "/v1/policy", map[string]any{"max_assignees": nil, "require_assignee": true,
		"require_lead": false, "members_can_self_assign": true})
	before := b.countEvents(t)
	if r := b.admin.do("POST", "/v1/customers", map[string]any{"first_name": "N", "email": "n2@acme.example"}); r.status != 422 || r.code() != "no_eligible_assignee" {
		t.Fatalf("require_assignee: %d %s", r.status, r.body)
	}
	imp = b.admin.csv("POST", "/v1/clients/import", "First Name,Last Name,Email,Phone Number,Team\nA,B,imp3@acme.example,,\n")
	if imp.status != 422 || !strings.Contains(string(imp.body), "no_eligible_assignee") {
		t.Fatalf("import under require_assignee: %d %s", imp.status, imp.body)
	}
	if b.countEvents(t) != before {
		t.Fatal("refusals wrote events")
	}
}
