package http_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
)

// noFormulaCells fails when any cell of a CSV export would start a formula
// in a spreadsheet.
func noFormulaCells(t *testing.T, what string, body []byte) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for i, rec := range recs {
		for j, cell := range rec {
			if cell != "" && strings.ContainsAny(cell[:1], "=+-@\t\r") {
				t.Fatalf("%s: row %d column %q begins a formula: %q", what, i, recs[0][j], cell)
			}
		}
	}
	return recs
}

func TestCorrelationIDsAreServerMade(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "=Uma One", "member")
	cust := b.admin.must(201, "POST", "/v1/customers", map[string]string{"first_name": "@Carla", "last_name": "-Client",
		"email": "carla@client.example", "phone": "+1 555 0100", "external_id": "=crm-42"}).json(t)["id"].(string)

	evil := `=HYPERLINK("http://evil.example/","x")`
	r := b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID}, hdr{"X-Request-ID": evil})
	if got := r.header.Get("X-Request-ID"); got == evil || got == "" {
		t.Fatalf("a request ID outside the allowed characters was echoed: %q", got)
	}
	// A well-formed client ID is echoed, but two commands sending it do not
	// share a correlation ID.
	first := b.admin.must(200, "POST", "/v1/customers/"+cust+"/block", nil, hdr{"X-Request-ID": "client-req:1"})
	if got := first.header.Get("X-Request-ID"); got != "client-req:1" {
		t.Fatalf("well-formed X-Request-ID not echoed: %q", got)
	}
	pos := b.admin.must(200, "POST", "/v1/customers/"+cust+"/unblock", nil, hdr{"X-Request-ID": "client-req:1"}).header.Get("X-Ledger-Position")

	var hist struct {
		Items []struct {
			Type          string `json:"type"`
			CorrelationID string `json:"correlation_id"`
		} `json:"items"`
	}
	b.admin.must(200, "GET", "/v1/customers/"+cust+"/history", nil).decode(t, &hist)
	seen := map[string]string{}
	for _, e := range hist.Items {
		if e.CorrelationID == "" || e.CorrelationID == evil || e.CorrelationID == "client-req:1" {
			t.Fatalf("%s carries a client-made correlation id %q", e.Type, e.CorrelationID)
		}
		if other, dup := seen[e.CorrelationID]; dup {
			t.Fatalf("%s and %s share correlation id %s", other, e.Type, e.CorrelationID)
		}
		seen[e.CorrelationID] = e.Type
	}
	if len(hist.Items) != 4 {
		t.Fatalf("history: %+v", hist)
	}

	audit := noFormulaCells(t, "audit CSV", b.admin.readAfter(pos, "/v1/audit", hdr{"Accept": "text/csv"}).body)
	customers := noFormulaCells(t, "customer CSV", b.admin.readAfter(pos, "/v1/customers", hdr{"Accept": "text/csv"}).body)
	if len(audit) < 5 || len(customers) != 2 || customers[1][5] != "'=crm-42" || customers[1][4] != "'+1 555 0100" {
		t.Fatalf("exports: audit %d rows, customers %q", len(audit), customers)
	}
}

// badInput fails unless r is a 400 naming field.
func badInput(t *testing.T, r response, field, what string) {
	t.Helper()
	var p struct{ Field, Detail string }
	r.decode(t, &p)
	if r.status != 400 || p.Field != field {
		t.Fatalf("%s: %d %s, want 400 naming %q", what, r.status, r.body, field)
	}
}

func TestTextPostgresCannotStoreIsA400NamingTheField(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma One", "member")
	before := b.countEvents(t)

	badInput(t, b.admin.do("POST", "/v1/users", map[string]string{"name": "A\x00Z", "email": "a@acme.example", "role": "member"}), "name", "NUL in a user's name")
	badInput(t, b.admin.do("POST", "/v1/users", []byte(`{"name":"A\u0000Z","email":"a@acme.example","role":"member"}`)), "name", "escaped NUL in a user's name")
	badInput(t, b.admin.do("POST", "/v1/users", []byte("{\"name\":\"A\xffZ\",\"email\":\"a@acme.example\",\"role\":\"member\"}")), "name", "invalid UTF-8 in a user's name")

	for _, field := range []string{"first_name", "last_name", "phone", "external_id"} {
		body := map[string]any{"first_name": "Carla", "last_name": "Client", "email": "c@client.example", field: "A\x00Z"}
		badInput(t, b.admin.do("POST", "/v1/customers", body), field, "NUL in a customer's "+field)
		body["team"] = []string{u.userID}
		badInput(t, b.admin.do("POST", "/v1/clients/invitations", body), field, "NUL in an invitation's "+field)
	}
	// A nested field is named by its path (found by hostile testing: only
	// its last key was).
	badInput(t, b.admin.do("POST", "/v1/assignment-rules", map[string]any{"name": "R", "match": map[string]any{"title_contains": "A\x00Z"},
		"assign": map[string]any{"user_ids": []string{u.userID}, "strategy": "round_robin"}}), "match.title_contains", "NUL in a rule's match")
	badInput(t, b.admin.do("POST", "/v1/views", map[string]any{"name": "V", "filter": map[string]any{"q": "A\x00Z"}}), "filter.q", "NUL in a view's filter")
	raw := "{\"first_name\":\"Carla\",\"last_name\":\"\xc3\x28\",\"email\":\"c@client.example\"}"
	badInput(t, b.admin.do("POST", "/v1/customers", []byte(raw)), "last_name", "invalid UTF-8 in a customer's last_name")

	header := "First Name,Last Name,Email,Phone Number,Team\n"
	r := b.admin.csv("POST", "/v1/clients/import", header+"Ada,Lovelace,ada@client.example,,\nA\x00Z,Turing,alan@client.example,,\n")
	badInput(t, r, "First Name", "NUL in an import row")
	if !strings.Contains(r.json(t)["detail"].(string), "row 2") {
		t.Fatalf("the import's refusal does not name the row: %s", r.body)
	}
	badInput(t, b.admin.csv("POST", "/v1/clients/import", header+"Ada,Love\xfflace,ada@client.example,,\n"), "Last Name", "invalid UTF-8 in an import row")

	for _, path := range []string{"/v1/customers?q=a%00b", "/v1/customers?q=%ff", "/v1/users/me/clients?q=a%00b",
		"/v1/audit?type=a%00b", "/v1/audit?type=%ff"} {
		field := "q"
		if strings.Contains(path, "type=") {
			field = "type"
		}
		badInput(t, b.admin.do("GET", path, nil), field, path)
		badInput(t, b.admin.do("GET", path, nil, hdr{"Accept": "text/csv"}), field, path+" as CSV")
	}
	r = b.admin.do("POST", "/v1/customers", map[string]any{"first_name": "Carla", "email": "c@client.example"}, hdr{"Idempotency-Key": "key-\xff"})
	if r.status != 400 || r.json(t)["field"] != "Idempotency-Key" {
		t.Fatalf("invalid UTF-8 in Idempotency-Key: %d %s", r.status, r.body)
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("refused requests appended %d events", n-before)
	}
}

// A query parameter given twice, or one the operation does not document,
// is refused, not read as its first value or ignored (found by hostile
// testing: ?assigned_user=a&assigned_user=b listed a's customers alone).
func TestRepeatedOrUnknownQueryParameterIsRefused(t *testing.T) {
	b := setup(t)
	before := b.countEvents(t)
	for path, field := range map[string]string{
		"/v1/customers?assigned_user=me&assigned_user=none": "assigned_user",
		"/v1/customers?limit=5&q=a&limit=500":               "limit",
		"/v1/audit?type=UserAssigned&type=UserUnassigned":   "type",
	} {
		badInput(t, b.admin.do("GET", path, nil), field, path)
	}
	header := "First Name,Last Name,Email,Phone Number,Team\n"
	badInput(t, b.admin.csv("POST", "/v1/clients/import?dry_run=true&dry_run=false", header+"Ada,Lovelace,ada@client.example,,\n"), "dry_run", "a repeated dry_run")
	// A command refuses a query parameter it does not take, rather than
	// run for real what the caller meant as a dry run (found by hostile
	// testing: ?dryrun=true imported).
	for path, field := range map[string]string{
		"/v1/clients/import?dryrun=true":              "dryrun",
		"/v1/clients/import?dry_run=true&update=true": "update",
	} {
		badInput(t, b.admin.csv("POST", path, header+"Ada,Lovelace,ada@client.example,,\n"), field, path)
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("refused imports appended %d events", n-before)
	}
	cust := b.createCustomer(t, "Quinn")
	before = b.countEvents(t)
	badInput(t, b.admin.do("POST", "/v1/customers/bulk?dry_run=true", map[string]any{"action": "block", "customer_ids": []string{cust}}), "dry_run", "a bulk call's dry_run in the query")
	badInput(t, b.admin.do("DELETE", "/v1/customers/"+cust+"?force=1", nil), "force", "a DELETE with a query")
	if n := b.countEvents(t); n != before {
		t.Fatalf("refused requests appended %d events", n-before)
	}
	if r := b.admin.csv("POST", "/v1/clients/import?dry_run=true&update_existing=false&invite=false", header+"Ada,Lovelace,ada@client.example,,\n"); r.status != 200 {
		t.Fatalf("the import's own parameters: %d %s", r.status, r.body)
	}
	// A query that does not parse is refused, not dropped: Go's parser
	// skips a pair holding ";" (found by hostile testing: ?dry_run=true;
	// imported for real).
	before = b.countEvents(t)
	for _, path := range []string{"/v1/clients/import?dry_run=true;", "/v1/clients/import?dry_run=true;update_existing=true"} {
		if r := b.admin.csv("POST", path, header+"Semi,Colon,semi@client.example,,\n"); r.status != 400 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
	}
	if r := b.admin.do("GET", "/v1/customers?assigned_user=me;", nil); r.status != 400 {
		t.Fatalf("a list with a ; in its query: %d %s", r.status, r.body)
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("refused imports appended %d events", n-before)
	}
	b.admin.must(200, "GET", "/v1/customers?q=%3B", nil) // an encoded ; is a value
	// A read refuses a parameter its operation does not document too,
	// rather than list everything (?asigned_user=me, a typo); the 400 says
	// which it takes.
	r := b.admin.do("GET", "/v1/customers?asigned_user=me", nil)
	badInput(t, r, "asigned_user", "a misspelt filter")
	if !strings.Contains(r.json(t)["detail"].(string), "assigned_user") {
		t.Fatalf("the refusal does not say what the list takes: %s", r.body)
	}
	badInput(t, b.admin.do("GET", "/v1/customers/"+cust+"?as_of=2030-01-01T00:00:00Z", nil), "as_of", "as_of on the customer itself")
	if r := b.admin.do("HEAD", "/v1/customers?asigned_user=me", nil); r.status != 400 {
		t.Fatalf("HEAD with a misspelt filter: %d", r.status)
	}
	b.admin.must(404, "GET", "/v1/no-such-route?x=1", nil) // no route, no operation to check against
	// A cursor holding a NUL byte is not one the list issued: 400, not a
	// 500 from the query (found by hostile testing on the users' list).
	for _, raw := range []string{`{"n":"\u0000","i":"0193f7c2-0000-7000-8000-000000000001"}`, "{\"n\":\"\xff\",\"i\":\"0193f7c2-0000-7000-8000-000000000001\"}"} {
		cur := base64.RawURLEncoding.EncodeToString([]byte(raw))
		if r := b.admin.do("GET", "/v1/users?cursor="+cur, nil); r.status != 400 || r.code() != "invalid_cursor" {
			t.Fatalf("a users cursor %q: %d %s", raw, r.status, r.body)
		}
	}
	// Every list takes limit and cursor, the contract's convention, even
	// one that answers in one page.
	b.admin.must(200, "GET", "/v1/groups?limit=5&cursor=", nil)
	// One parameter with several values separated by commas is the way.
	u := b.createUser(t, "Uma One", "member")
	b.admin.must(200, "GET", "/v1/customers?assigned_user=me,"+u.userID+"&limit=5", nil)
}

func TestPolicyNeedsEveryFieldAndNamesTheRealMaximum(t *testing.T) {
	b := setup(t)
	b.setPolicy(t, 2, false, false, true)
	cust := b.createCustomer(t, "Carla")
	u1, u2, u3 := b.createUser(t, "Uma One", "member"), b.createUser(t, "Udo Two", "member"), b.createUser(t, "Ute Three", "member")
	for _, u := range []*client{u1, u2} {
		b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID})
	}

	badInput(t, b.admin.do("PUT", "/v1/policy", map[string]any{"require_assignee": false, "require_lead": false,
		"members_can_self_assign": true}), "max_assignees", "a policy without max_assignees")
	badInput(t, b.admin.do("PUT", "/v1/policy", map[string]any{"MAX_ASSIGNEES": 5, "require_assignee": false, "require_lead": false,
		"members_can_self_assign": true}), "MAX_ASSIGNEES", "a field name in the wrong case")
	badInput(t, b.admin.do("PUT", "/v1/policy", map[string]any{"max_assignees": "2", "require_assignee": false, "require_lead": false,
		"members_can_self_assign": true}), "max_assignees", "max_assignees as a string")
	if got := b.admin.must(200, "GET", "/v1/policy", nil).json(t)["max_assignees"]; got != float64(2) {
		t.Fatalf("refused policy changes changed max_assignees to %v", got)
	}

	// Lowering the limit keeps the teams and says how many are over it.
	other := b.createCustomer(t, "Otto")
	b.admin.must(200, "POST", "/v1/customers/"+other+"/assignees", map[string]string{"user_id": u1.userID})
	b.admin.must(200, "POST", "/v1/customers/"+other+"/assignees", map[string]string{"user_id": u2.userID})
	b.admin.must(200, "POST", "/v1/customers/"+other+"/assignees/"+u2.userID+"/replace", map[string]string{"with_user_id": u3.userID})
	b.admin.must(200, "DELETE", "/v1/customers/"+other+"/assignees/"+u3.userID, nil)
	lowered := b.admin.must(200, "PUT", "/v1/policy", map[string]any{"max_assignees": 1, "require_assignee": false,
		"require_lead": false, "members_can_self_assign": true}).json(t)
	if lowered["customers_over_limit"] != float64(1) {
		t.Fatalf("lowering max_assignees to 1 with one team of 2 and one of 1: %v", lowered)
	}
	r := b.admin.do("POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u3.userID})
	if r.status != 409 || r.code() != "max_assignees_reached" || !strings.Contains(r.json(t)["detail"].(string), "maximum is 1") {
		t.Fatalf("assign over a lowered maximum: %d %s", r.status, r.body)
	}
	b.setPolicy(t, nil, false, false, true)
	if got := b.admin.must(200, "GET", "/v1/policy", nil).json(t)["max_assignees"]; got != nil {
		t.Fatalf("explicit null: max_assignees %v", got)
	}
}

func TestJSONErrorsSpeakJSON(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma One", "member")
	v := b.createUser(t, "Vic Two", "member")
	cust := b.createCustomer(t, "Carla")
	b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID})
	before := b.countEvents(t)

	r := b.admin.do("POST", "/v1/customers", map[string]any{"first_name": 5, "email": "x@client.example"})
	badInput(t, r, "first_name", "a number for a string")
	if d := r.json(t)["detail"].(string); strings.Contains(d, "profileBody") || strings.Contains(d, "json:") {
		t.Fatalf("the error speaks Go: %s", d)
	}
	r = b.admin.do("POST", "/v1/clients/invitations", map[string]any{"first_name": 5, "email": "x@client.example", "team": []string{u.userID}})
	badInput(t, r, "first_name", "a number for a string in an invitation")
	if d := r.json(t)["detail"].(string); strings.Contains(d, "profileBody") || strings.Contains(d, "json:") {
		t.Fatalf("the error speaks Go: %s", d)
	}
	r = b.admin.do("POST", "/v1/customers", `{"first_name": "Carla",`)
	if d := r.json(t)["detail"].(string); r.status != 400 || strings.Contains(d, "json:") {
		t.Fatalf("malformed JSON: %d %s", r.status, d)
	}
	r = b.admin.do("POST", "/v1/customers/"+cust+"/assignees/"+u.userID+"/replace", map[string]string{"user_id": v.userID})
	badInput(t, r, "user_id", "an unknown field")
	if d := r.json(t)["detail"].(string); r.code() != "unknown_field" || !strings.Contains(d, "with_user_id") {
		t.Fatalf("an unknown field's error does not name the expected ones: %s", r.body)
	}
	r = b.admin.do("POST", "/v1/assignments/bulk", `{"action":"add","customer_ids":["`+cust+`"],"user_ids":["`+v.userID+`"],"dry_run":null}`)
	badInput(t, r, "dry_run", `"dry_run": null`)
	if n := b.countEvents(t); n != before {
		t.Fatalf("refused requests appended %d events", n-before)
	}

	// A bodyless command sent with a JSON Content-Type and no body.
	b.admin.must(200, "POST", "/v1/users/"+v.userID+"/deactivate", "")
	// A bodyless command takes {} and refuses any field, or a repeated
	// one, without acting (found by hostile testing: block, auto-assign
	// and api-keys acted on any JSON).
	before = b.countEvents(t)
	for _, path := range []string{"/v1/customers/" + cust + "/block", "/v1/customers/" + cust + "/auto-assign", "/v1/users/" + u.userID + "/api-keys"} {
		for _, body := range []string{`{"a":1}`, `{"a":1,"a":2}`, `[]`} {
			if r := b.admin.do("POST", path, body); r.status != 400 {
				t.Errorf("POST %s %s: %d %s", path, body, r.status, r.body)
			}
		}
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("refused bodyless commands appended %d events", n-before)
	}
	b.admin.must(200, "POST", "/v1/customers/"+cust+"/block", `{}`)

	anon := &client{t: t, base: b.base}
	r = anon.do("PATCH", "/healthz", nil)
	if r.status != 405 || r.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("405 without Allow: %d %v", r.status, r.header)
	}
	r = b.admin.do("GET", "/v1/customers/"+cust+"/assignees", nil, hdr{"X-HTTP-Method": "x"})
	if r.status != 200 {
		t.Fatalf("assignees: %d", r.status)
	}
	if r := b.admin.do("PATCH", "/v1/customers/"+cust+"/assignees", nil); r.status != 405 || r.header.Get("Allow") != "GET, HEAD, POST, PUT" {
		t.Fatalf("405 on assignees: %d Allow %q", r.status, r.header.Get("Allow"))
	}
	// HEAD is answered wherever GET is: the GET's status and headers, no
	// body (found by hostile testing: a 405).
	for _, path := range []string{"/v1/customers", "/v1/customers/" + cust, "/openapi.json"} {
		get, head := b.admin.do("GET", path, nil), b.admin.do("HEAD", path, nil)
		if head.status != 200 || get.status != 200 || len(head.body) != 0 || head.header.Get("Content-Type") != get.header.Get("Content-Type") {
			t.Errorf("HEAD %s: %d %q, %d bytes; GET %d %q", path, head.status, head.header.Get("Content-Type"), len(head.body), get.status, get.header.Get("Content-Type"))
		}
	}
	if r := b.admin.do("HEAD", "/v1/assignments/bulk", nil); r.status != 405 || r.header.Get("Allow") != "POST" {
		t.Errorf("HEAD on a POST-only route: %d, Allow %q", r.status, r.header.Get("Allow"))
	}
	badInput(t, b.admin.do("GET", "/v1/audit?type=Nope", nil), "type", "an unknown event type")
	if r := b.admin.do("GET", "/v1/audit", nil, hdr{"Accept": "application/ndjson"}); r.status != 200 ||
		r.header.Get("Content-Type") != "application/x-ndjson" || bytes.HasPrefix(r.body, []byte(`{"items"`)) {
		t.Fatalf("Accept: application/ndjson got %s: %.80s", r.header.Get("Content-Type"), r.body)
	}
}

func TestLastAdminCannotBeDeactivated(t *testing.T) {
	b := setup(t)
	r := b.admin.do("POST", "/v1/users/me/deactivate", nil)
	if r.status != 409 || r.code() != "last_admin" {
		t.Fatalf("the only admin deactivating themselves: %d %s", r.status, r.body)
	}
	// Its dry run says so too (found by hostile testing: 200, no error).
	if r := b.admin.do("POST", "/v1/users/me/deactivate", map[string]any{"dry_run": true}); r.status != 409 || r.code() != "last_admin" {
		t.Fatalf("the only admin's dry run: %d %s", r.status, r.body)
	}
	b.admin.must(200, "GET", "/v1/users", nil) // still in

	second := b.createUser(t, "Bea Admin", "admin")
	second.must(200, "POST", "/v1/users/"+b.admin.userID+"/deactivate", map[string]any{"dry_run": true})
	second.must(200, "POST", "/v1/users/"+b.admin.userID+"/deactivate", nil)
	if r := second.do("POST", "/v1/users/me/deactivate", nil); r.status != 409 || r.code() != "last_admin" {
		t.Fatalf("the last admin deactivating themselves: %d %s", r.status, r.body)
	}

	// Two admins deactivating each other at once: one of them stays.
	for i := range 5 {
		b.admin = second // createUser's admin
		x, y := b.createUser(t, fmt.Sprint("Xena Admin ", i), "admin"), b.createUser(t, fmt.Sprint("Yann Admin ", i), "admin")
		second.must(200, "POST", "/v1/users/me/deactivate", nil)
		done := make(chan response, 2)
		go func() { done <- x.do("POST", "/v1/users/"+y.userID+"/deactivate", nil) }()
		go func() { done <- y.do("POST", "/v1/users/"+x.userID+"/deactivate", nil) }()
		ok := 0
		for range 2 {
			if r := <-done; r.status == 200 {
				ok++
			}
		}
		var admins int
		if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM users WHERE role = 'admin' AND status = 'active'`).Scan(&admins); err != nil {
			t.Fatal(err)
		}
		if ok != 1 || admins != 1 {
			t.Fatalf("racing deactivations: %d succeeded, %d active admins left", ok, admins)
		}
		second = x
		if x.do("GET", "/v1/users", nil).status != 200 {
			second = y
		}
	}
}

func TestReplayNeverBlanksASecret(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma One", "member")
	key := hdr{"Idempotency-Key": "issue-uma-key"}
	first := b.admin.must(201, "POST", "/v1/users/"+u.userID+"/api-keys", nil, key)
	if first.json(t)["api_key"] == "" {
		t.Fatal("no key issued")
	}
	n := b.countEvents(t)
	again := b.admin.do("POST", "/v1/users/"+u.userID+"/api-keys", nil, key)
	if again.status != 409 || again.code() != "replay_unavailable" || b.countEvents(t) != n {
		t.Fatalf("replayed key issue: %d %s (%d events)", again.status, again.body, b.countEvents(t)-n)
	}

	inv := map[string]any{"first_name": "Ivy", "last_name": "Client", "email": "ivy@client.example", "team": []string{u.userID}}
	key = hdr{"Idempotency-Key": "invite-ivy"}
	if url := b.admin.must(201, "POST", "/v1/clients/invitations", inv, key).json(t)["invitation_url"]; url == nil || url == "" {
		t.Fatal("no invitation_url")
	}
	n = b.countEvents(t)
	again = b.admin.do("POST", "/v1/clients/invitations", inv, key)
	if again.status != 409 || again.code() != "replay_unavailable" || b.countEvents(t) != n {
		t.Fatalf("replayed invitation: %d %s (%d events)", again.status, again.body, b.countEvents(t)-n)
	}
}

func TestBlockedClientsInvitationIsNotFound(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma One", "member")
	var inv struct {
		Customer struct {
			ID string `json:"id"`
		} `json:"customer"`
		InvitationURL string `json:"invitation_url"`
	}
	b.admin.must(201, "POST", "/v1/clients/invitations", map[string]any{"first_name": "Ivy", "last_name": "Client",
		"email": "ivy@client.example", "team": []string{u.userID}}).decode(t, &inv)
	b.admin.must(200, "POST", "/v1/customers/"+inv.Customer.ID+"/block", nil)
	token := inv.InvitationURL[strings.LastIndexByte(inv.InvitationURL, '/')+1:]
	anon := &client{t: t, base: b.base}
	if r := anon.do("POST", "/v1/invitations/"+token+"/accept", nil); r.status != 404 || strings.Contains(string(r.body), inv.Customer.ID) {
		t.Fatalf("accepting a blocked client's invitation: %d %s", r.status, r.body)
	}
}

// Half a surrogate pair escaped is no character (encoding/json would store
// U+FFFD): a 400 naming the field, as invalid UTF-8 is. A whole pair, or an
// escaped backslash before "ud800", is text.
func TestLoneSurrogateEscapeIsA400NamingTheField(t *testing.T) {
	b := setup(t)
	before := b.countEvents(t)
	for _, name := range []string{`A\udc00Z`, `A\ud800Z`, `A\ud800`, `A\ud800\u0041`, `\udc00\ud800`, `A\uD800Z`} {
		badInput(t, b.admin.do("POST", "/v1/groups", []byte(`{"name":"`+name+`"}`)), "name", "a lone surrogate escape "+name)
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("refused requests appended %d events", n-before)
	}
	for name, want := range map[string]string{`A\ud83d\ude00Z`: "A\U0001F600Z", `A\\ud800Z`: `A\ud800Z`} {
		var g struct{ Name string }
		b.admin.must(201, "POST", "/v1/groups", []byte(`{"name":"`+name+`"}`)).decode(t, &g)
		if g.Name != want {
			t.Errorf("group %s named %q, want %q", name, g.Name, want)
		}
	}
}
