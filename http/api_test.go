package http_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestAuthentication(t *testing.T) {
	b := setup(t)
	anon := &client{t: t, base: b.base}
	if r := anon.do("GET", "/v1/users", nil); r.status != 401 || r.code() != "unauthenticated" ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("no key: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	bad := &client{t: t, base: b.base, key: "lk_not-a-key"}
	if r := bad.do("GET", "/v1/users", nil); r.status != 401 {
		t.Fatalf("bad key: %d", r.status)
	}
	basic := b.admin.do("GET", "/v1/users", nil, hdr{"Authorization": "Basic " + b.admin.key})
	if basic.status != 401 {
		t.Fatalf("basic auth: %d", basic.status)
	}
	m := b.createUser(t, "Mo Member", "member")
	m.must(200, "GET", "/v1/users", nil)
	b.admin.must(200, "POST", "/v1/users/"+m.userID+"/deactivate", nil)
	if r := m.do("GET", "/v1/users", nil); r.status != 401 {
		t.Fatalf("deactivated user's key still works: %d", r.status)
	}
}

func TestMembersMayReadButNotAdminister(t *testing.T) {
	b := setup(t)
	m := b.createUser(t, "Mo Member", "member")
	other := b.createUser(t, "Olga Other", "member")
	cust := b.createCustomer(t, "Carla")
	m.must(200, "GET", "/v1/customers", nil)
	m.must(200, "GET", "/v1/customers/"+cust, nil)
	m.must(200, "GET", "/v1/policy", nil)
	forbidden := []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/users", map[string]string{"name": "X", "email": "x@acme.example", "role": "member"}},
		{"POST", "/v1/customers", map[string]string{"first_name": "X"}},
		{"PUT", "/v1/policy", map[string]any{"max_assignees": nil, "require_assignee": false, "require_lead": false, "members_can_self_assign": true}},
		{"POST", "/v1/customers/" + cust + "/assignees", map[string]string{"user_id": other.userID}},
		{"PUT", "/v1/customers/" + cust + "/lead", map[string]string{"user_id": m.userID}},
		{"POST", "/v1/assignments/bulk", map[string]any{"action": "add", "customer_ids": []string{cust}, "user_ids": []string{other.userID}}},
		{"POST", "/v1/assignments/bulk", map[string]any{"action": "set", "customer_ids": []string{cust}, "user_ids": []string{m.userID}}},
		{"POST", "/v1/users/" + other.userID + "/api-keys", nil},
		{"POST", "/v1/users/" + other.userID + "/deactivate", nil},
		{"GET", "/v1/audit", nil},
		{"GET", "/v1/users/" + other.userID + "/notifications", nil},
		{"POST", "/v1/customers/" + cust + "/block", nil},
		{"GET", "/v1/clients/import/template", nil},
	}
	before := b.countEvents(t)
	for _, f := range forbidden {
		if r := m.do(f.method, f.path, f.body); r.status != 403 {
			t.Errorf("member %s %s: %d %s", f.method, f.path, r.status, r.body)
		}
	}
	if after := b.countEvents(t); after != before {
		t.Fatalf("refused requests appended %d events", after-before)
	}
	// A member may issue a key for itself.
	m.must(201, "POST", "/v1/users/me/api-keys", nil)
}

func TestMemberSelfAssignmentFollowsPolicy(t *testing.T) {
	b := setup(t)
	m := b.createUser(t, "Mo Member", "member")
	cust := b.createCustomer(t, "Carla")
	r := m.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": "me"})
	if a := assignees(t, r); len(a) != 1 || a[0]["user_id"] != m.userID {
		t.Fatalf("assignees %v", a)
	}
	m.must(200, "DELETE", "/v1/customers/"+cust+"/assignees/me", nil)
	b.setPolicy(t, nil, false, false, false)
	if r := m.do("POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": "me"}); r.status != 403 {
		t.Fatalf("self-assign against policy: %d %s", r.status, r.body)
	}
}

// Every route that takes an ID answers another tenant's ID exactly as an
// unknown one: 404, nothing written.
func TestOtherTenantsIDsAreNotFound(t *testing.T) {
	b := setup(t)
	cust := b.createCustomer(t, "Carla")
	member := b.createUser(t, "Mo Member", "member")
	b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": member.userID})

	boot, err := b.cmd.Bootstrap(t.Context(), "Globex", "Gus Admin", "gus@globex.example")
	if err != nil {
		t.Fatal(err)
	}
	intruder := &client{t: t, base: b.base, key: boot.APIKey, userID: boot.UserID}
	ownCust := (&testBundle{admin: intruder, base: b.base}).createCustomer(t, "Own")
	unknown := "0190a8f0-0000-7000-8000-000000000000"

	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/users/%s", nil},
		{"POST", "/v1/users/%s/api-keys", nil},
		{"POST", "/v1/users/%s/deactivate", nil},
		{"GET", "/v1/users/%s/clients", nil},
		{"GET", "/v1/users/%s/clients?as_of=2030-01-01T00:00:00Z", nil},
		{"GET", "/v1/users/%s/notifications", nil},
		{"POST", "/v1/users/%s/notifications/read", map[string]any{"ids": []string{}}},
		{"GET", "/v1/customers/%s", nil},
		{"POST", "/v1/customers/%s/block", nil},
		{"POST", "/v1/customers/%s/unblock", nil},
		{"GET", "/v1/customers/%s/history", nil},
		{"GET", "/v1/customers/%s/assignees", nil},
		{"GET", "/v1/customers/%s/assignees?as_of=2030-01-01T00:00:00Z", nil},
		{"POST", "/v1/customers/%s/assignees", map[string]string{"user_id": "me"}},
		{"DELETE", "/v1/customers/%s/assignees/" + boot.UserID, nil},
		{"PUT", "/v1/customers/%s/lead", map[string]string{"user_id": "me"}},
		{"POST", "/v1/customers/%s/assignees/" + boot.UserID + "/replace", map[string]string{"with_user_id": "me"}},
	}
	foreignUser, foreignCust := member.userID, cust
	before := b.countEvents(t)
	for _, rt := range routes {
		id := foreignCust
		if strings.HasPrefix(rt.path, "/v1/users") {
			id = foreignUser
		}
		for _, probe := range []string{id, unknown} {
			path := fmt.Sprintf(rt.path, probe)
			if r := intruder.do(rt.method, path, rt.body); r.status != 404 {
				t.Errorf("%s %s: %d %s", rt.method, path, r.status, r.body)
			}
		}
	}
	// IDs inside bodies too: the other tenant's user cannot be put on one's own customer.
	if r := intruder.do("POST", "/v1/customers/"+ownCust+"/assignees", map[string]string{"user_id": foreignUser}); r.status != 404 {
		t.Errorf("assign another tenant's user: %d %s", r.status, r.body)
	}
	if r := intruder.do("POST", "/v1/clients/invitations", map[string]any{"first_name": "I", "email": "i@x.example", "team": []string{foreignUser}}); r.status != 404 {
		t.Errorf("invite with another tenant's user: %d %s", r.status, r.body)
	}
	if r := intruder.do("POST", "/v1/users/me/deactivate", map[string]string{"transfer_to": foreignUser}); r.status != 404 {
		t.Errorf("transfer to another tenant's user: %d %s", r.status, r.body)
	}
	if r := intruder.do("GET", "/v1/audit?customer_id="+foreignCust, nil); r.status != 200 || strings.Contains(string(r.body), foreignCust) {
		t.Errorf("audit leaked: %d %s", r.status, r.body)
	}
	if r := intruder.do("GET", "/v1/customers?assigned_user="+foreignUser, nil); r.status != 200 || strings.Contains(string(r.body), foreignCust) {
		t.Errorf("customer list leaked: %d %s", r.status, r.body)
	}
	if after := b.countEvents(t); after != before {
		t.Fatalf("cross-tenant requests appended %d events", after-before)
	}
}

func TestMalformedInputIsA400AndChangesNothing(t *testing.T) {
	b := setup(t)
	cust := b.createCustomer(t, "Carla")
	before := b.countEvents(t)
	cases := []struct {
		name, method, path string
		body               any
		headers            hdr
		status             int
	}{
		{"malformed json", "POST", "/v1/customers", `{"first_name": `, nil, 400},
		{"unknown field", "POST", "/v1/customers", `{"first_name":"A","nickname":"B"}`, nil, 400},
		{"trailing data", "POST", "/v1/customers", `{"first_name":"A"} {}`, nil, 400},
		{"wrong type", "POST", "/v1/customers", `{"first_name":5}`, nil, 400},
		{"empty body", "POST", "/v1/customers", ``, nil, 400},
		{"bad email", "POST", "/v1/customers", `{"first_name":"A","email":"not-an-email"}`, nil, 400},
		{"bad user email", "POST", "/v1/users", `{"name":"A","email":"nope","role":"member"}`, nil, 400},
		{"bad role", "POST", "/v1/users", `{"name":"A","email":"a@b.example","role":"owner"}`, nil, 400},
		{"bad uuid in path", "GET", "/v1/customers/not-a-uuid", nil, nil, 400},
		{"bad uuid in body", "POST", "/v1/customers/" + cust + "/assignees", `{"user_id":"42"}`, nil, 400},
		{"missing user_id", "POST", "/v1/customers/" + cust + "/assignees", `{}`, nil, 400},
		{"limit too big", "GET", "/v1/customers?limit=501", nil, nil, 400},
		{"limit zero", "GET", "/v1/customers?limit=0", nil, nil, 400},
		{"limit text", "GET", "/v1/customers?limit=ten", nil, nil, 400},
		{"bad cursor", "GET", "/v1/customers?cursor=garbage", nil, nil, 400},
		{"bad status", "GET", "/v1/customers?status=gone", nil, nil, 400},
		{"bad as_of", "GET", "/v1/customers/" + cust + "/assignees?as_of=yesterday", nil, nil, 400},
		{"bad policy", "PUT", "/v1/policy", `{"max_assignees":0,"require_assignee":false,"require_lead":false,"members_can_self_assign":true}`, nil, 400},
		{"partial policy", "PUT", "/v1/policy", `{"max_assignees":2}`, nil, 400},
		{"bad bulk action", "POST", "/v1/assignments/bulk", `{"action":"toggle","customer_ids":["` + cust + `"],"user_ids":["me"]}`, nil, 400},
		{"bad If-Match", "POST", "/v1/customers/" + cust + "/assignees", `{"user_id":"me"}`, hdr{"If-Match": "yesterday"}, 400},
		{"bad X-Min-Position", "GET", "/v1/customers", nil, hdr{"X-Min-Position": "abc"}, 400},
		{"wrong content type", "POST", "/v1/customers", `{"first_name":"A"}`, hdr{"Content-Type": "text/plain"}, 415},
		{"no content type", "POST", "/v1/customers", `{"first_name":"A"}`, hdr{"Content-Type": ""}, 415},
		{"json to csv import", "POST", "/v1/clients/import", `{}`, nil, 415},
		{"too large", "POST", "/v1/customers", `{"first_name":"` + strings.Repeat("a", 1<<20) + `"}`, nil, 413},
	}
	for _, c := range cases {
		r := b.admin.do(c.method, c.path, c.body, c.headers)
		if r.status != c.status {
			t.Errorf("%s: %d, want %d: %.200s", c.name, r.status, c.status, r.body)
			continue
		}
		p := r.json(t)
		if !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") || p["status"] != float64(c.status) ||
			p["title"] == "" || p["type"] == "" {
			t.Errorf("%s: not a problem document: %s %s", c.name, r.header.Get("Content-Type"), r.body)
		}
	}
	if after := b.countEvents(t); after != before {
		t.Fatalf("bad input appended %d events", after-before)
	}
}

func TestAssignmentRulesThroughHTTP(t *testing.T) {
	b := setup(t)
	cust := b.createCustomer(t, "Carla") // before require_assignee, which would want a team
	b.setPolicy(t, 2, true, true, true)
	u1, u2, u3 := b.createUser(t, "Uma One", "member"), b.createUser(t, "Ulf Two", "member"), b.createUser(t, "Ute Three", "member")
	gone := b.createUser(t, "Gil Gone", "member")
	b.admin.must(200, "POST", "/v1/users/"+gone.userID+"/deactivate", nil)
	path := "/v1/customers/" + cust

	expect := func(status int, code, method, p string, body any) {
		t.Helper()
		before := b.countEvents(t)
		r := b.admin.do(method, p, body)
		if r.status != status || r.code() != code {
			t.Fatalf("%s %s: %d %q, want %d %q: %s", method, p, r.status, r.code(), status, code, r.body)
		}
		if status >= 400 && b.countEvents(t) != before {
			t.Fatalf("%s %s was refused but appended events", method, p)
		}
	}
	r := b.admin.must(200, "POST", path+"/assignees", map[string]string{"user_id": u1.userID})
	if a := assignees(t, r); len(a) != 1 || a[0]["lead"] != true || a[0]["name"] != "Uma One" {
		t.Fatalf("first assignee under require_lead must lead: %v", a)
	}
	if r.header.Get("X-Ledger-Position") == "" || r.json(t)["position"] == nil || r.header.Get("ETag") == "" {
		t.Fatalf("command answer lacks position or ETag: %v %s", r.header, r.body)
	}
	expect(409, "already_assigned", "POST", path+"/assignees", map[string]string{"user_id": u1.userID})
	expect(409, "user_deactivated", "POST", path+"/assignees", map[string]string{"user_id": gone.userID})
	b.admin.must(200, "POST", path+"/assignees", map[string]string{"user_id": u2.userID})
	expect(409, "max_assignees_reached", "POST", path+"/assignees", map[string]string{"user_id": u3.userID})
	expect(409, "lead_cannot_be_removed", "DELETE", path+"/assignees/"+u1.userID, nil)
	expect(409, "user_not_assigned", "DELETE", path+"/assignees/"+u3.userID, nil)
	expect(409, "user_not_assigned", "PUT", path+"/lead", map[string]string{"user_id": u3.userID})
	expect(409, "user_not_assigned", "POST", path+"/assignees/"+u3.userID+"/replace", map[string]string{"with_user_id": u1.userID})
	expect(409, "already_assigned", "POST", path+"/assignees/"+u1.userID+"/replace", map[string]string{"with_user_id": u2.userID})
	expect(409, "user_deactivated", "POST", path+"/assignees/"+u1.userID+"/replace", map[string]string{"with_user_id": gone.userID})

	r = b.admin.must(200, "PUT", path+"/lead", map[string]string{"user_id": u2.userID})
	for _, a := range assignees(t, r) {
		if (a["user_id"] == u2.userID) != (a["lead"] == true) {
			t.Fatalf("lead not moved: %v", assignees(t, r))
		}
	}
	b.admin.must(200, "DELETE", path+"/assignees/"+u1.userID, nil)
	expect(409, "customer_must_keep_an_assignee", "DELETE", path+"/assignees/"+u2.userID, nil)
	r = b.admin.must(200, "POST", path+"/assignees/"+u2.userID+"/replace", map[string]string{"with_user_id": u3.userID})
	if a := assignees(t, r); len(a) != 1 || a[0]["user_id"] != u3.userID || a[0]["lead"] != true {
		t.Fatalf("replacement must take the lead: %v", a)
	}
	// A blocked customer keeps its team.
	r = b.admin.must(200, "POST", path+"/block", nil)
	if r.json(t)["status"] != "blocked" || len(assignees(t, r)) != 1 {
		t.Fatalf("block: %s", r.body)
	}
	if r := b.admin.must(200, "POST", path+"/unblock", nil); r.json(t)["status"] != "active" {
		t.Fatalf("unblock: %s", r.body)
	}
}

func TestIfMatch(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma One", "member")
	cust := b.createCustomer(t, "Carla")
	got := b.admin.must(200, "GET", "/v1/customers/"+cust, nil)
	etag := got.header.Get("ETag")
	if etag != fmt.Sprintf(`"%v"`, got.json(t)["version"]) {
		t.Fatalf("ETag %q does not carry the version %v", etag, got.json(t)["version"])
	}
	stale := `"0"`
	before := b.countEvents(t)
	r := b.admin.do("POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID}, hdr{"If-Match": stale})
	if r.status != 412 || r.code() != "version_mismatch" || b.countEvents(t) != before {
		t.Fatalf("stale If-Match: %d %s", r.status, r.body)
	}
	r = b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID}, hdr{"If-Match": etag})
	if r.header.Get("ETag") == etag {
		t.Fatal("ETag did not change after a command")
	}
	// If-Match: * holds for any version of a customer that exists (found
	// by hostile testing: a 400).
	b.admin.must(200, "POST", "/v1/customers/"+cust+"/block", nil, hdr{"If-Match": "*"})
	b.admin.must(404, "POST", "/v1/customers/0193f7c2-0000-7000-8000-000000000001/block", nil, hdr{"If-Match": "*"})
	// A list of ETags (RFC 9110 13.1.1): any may match; none is a 412.
	cur := b.admin.must(200, "GET", "/v1/customers/"+cust, nil).header.Get("ETag")
	if r := b.admin.do("POST", "/v1/customers/"+cust+"/unblock", nil, hdr{"If-Match": `"0", "1"`}); r.status != 412 {
		t.Fatalf("a list without the version: %d %s", r.status, r.body)
	}
	b.admin.must(200, "POST", "/v1/customers/"+cust+"/unblock", nil, hdr{"If-Match": `"0", ` + cur})
	if r := b.admin.do("POST", "/v1/customers/"+cust+"/block", nil, hdr{"If-Match": `"0", x`}); r.status != 400 {
		t.Fatalf("a list with a bad ETag: %d %s", r.status, r.body)
	}
	// If-Match compares strongly (RFC 9110 13.1.1), octet for octet: a
	// weak ETag of the current version never matches, alone or beside
	// others, nor does its number written otherwise ("09", "+9"), and the
	// retry with the ETag itself still runs (found by hostile testing: W/
	// was stripped and matched, and the digits compared as numbers).
	cur = b.admin.must(200, "GET", "/v1/customers/"+cust, nil).header.Get("ETag")
	before = b.countEvents(t)
	curV := strings.Trim(cur, `"`)
	for _, im := range []string{"W/" + cur, `"0", W/` + cur, `"0` + curV + `"`, `"+` + curV + `"`} {
		if r := b.admin.do("POST", "/v1/customers/"+cust+"/block", nil, hdr{"If-Match": im}); r.status != 412 || r.code() != "version_mismatch" {
			t.Fatalf("If-Match %s: %d %s", im, r.status, r.body)
		}
		if r := b.admin.do("DELETE", "/v1/customers/"+cust, nil, hdr{"If-Match": im}); r.status != 412 {
			t.Fatalf("DELETE with If-Match %s: %d %s", im, r.status, r.body)
		}
	}
	if b.countEvents(t) != before {
		t.Fatal("a weak If-Match changed something")
	}
	b.admin.must(200, "POST", "/v1/customers/"+cust+"/block", nil, hdr{"If-Match": "W/" + cur + ", " + cur})
}

func TestIdempotencyKey(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma One", "member")
	cust := b.createCustomer(t, "Carla")
	key := hdr{"Idempotency-Key": "assign-uma-1"}
	first := b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID}, key)
	before := b.countEvents(t)
	// A retry would be already_assigned if it ran: the first answer is replayed.
	again := b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID}, key)
	if string(again.body) != string(first.body) || again.header.Get("X-Ledger-Position") != first.header.Get("X-Ledger-Position") {
		t.Fatalf("replay differs:\n%s\n%s", first.body, again.body)
	}
	if b.countEvents(t) != before {
		t.Fatal("a replay appended events")
	}
	other := b.createUser(t, "Ola Other", "member")
	r := b.admin.do("POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": other.userID}, key)
	if r.status != 422 || r.code() != "idempotency_key_reused" {
		t.Fatalf("same key, other body: %d %s", r.status, r.body)
	}
	// Without a key, the retry learns the truth.
	if r := b.admin.do("POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID}); r.status != 409 || r.code() != "already_assigned" {
		t.Fatalf("no key: %d %s", r.status, r.body)
	}

	// A refusal is a key's first answer too: replayed after Uma left the
	// team, and the key with another body is reused.
	refusedKey := hdr{"Idempotency-Key": "assign-uma-2"}
	refused := b.admin.do("POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID}, refusedKey)
	if refused.status != 409 || refused.code() != "already_assigned" {
		t.Fatalf("refused: %d %s", refused.status, refused.body)
	}
	b.admin.must(200, "DELETE", "/v1/customers/"+cust+"/assignees/"+u.userID, nil)
	before = b.countEvents(t)
	if r := b.admin.do("POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID}, refusedKey); r.status != 409 || string(r.body) != string(refused.body) {
		t.Fatalf("retry of a refusal: %d %s, want the first answer %s", r.status, r.body, refused.body)
	}
	if r := b.admin.do("POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": other.userID}, refusedKey); r.status != 422 || r.code() != "idempotency_key_reused" {
		t.Fatalf("refused key, other body: %d %s", r.status, r.body)
	}
	if b.countEvents(t) != before {
		t.Fatal("a retry of a refusal appended events")
	}
}

func TestConcurrentAssignsThroughHTTPRespectMax(t *testing.T) {
	b := setup(t)
	b.setPolicy(t, 3, false, true, true)
	cust := b.createCustomer(t, "Carla")
	var users []*client
	for i := range 12 {
		users = append(users, b.createUser(t, fmt.Sprintf("User %d", i), "member"))
	}
	var wg sync.WaitGroup
	statuses := make(chan int, len(users))
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- u.do("POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": "me"}).status
		}()
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for s := range statuses {
		switch s {
		case 200:
			ok++
		case 409:
		default:
			t.Errorf("unexpected status %d", s)
		}
	}
	r := b.admin.must(200, "GET", "/v1/customers/"+cust, nil)
	a := assignees(t, r)
	leads := 0
	for _, m := range a {
		if m["lead"] == true {
			leads++
		}
	}
	if ok != 3 || len(a) != 3 || leads != 1 {
		t.Fatalf("%d succeeded, team %d, leads %d; want 3, 3, 1", ok, len(a), leads)
	}
}
