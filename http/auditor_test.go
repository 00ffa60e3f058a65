package http_test

import (
	"fmt"
	"log/slog"
	nethttp "net/http"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	ledgerhttp "github.com/assignment-ledger/ledger/http"
	"github.com/assignment-ledger/ledger/internal/smtptest"
)

// authRoutes walks the real router: every "METHOD /pattern" behind
// requireAuth (the JSON API a key opens; the console's pages are tested in
// console/).
func authRoutes(t *testing.T) []string {
	t.Helper()
	s := ledgerhttp.NewServer(ledgerhttp.Deps{Log: slog.New(slog.DiscardHandler)})
	var out []string
	err := chi.Walk(s.Router(), func(method, route string, _ nethttp.Handler, mws ...func(nethttp.Handler) nethttp.Handler) error {
		auth := false
		for _, mw := range mws {
			name := runtime.FuncForPC(reflect.ValueOf(mw).Pointer()).Name()
			if strings.Contains(name, "/console.") {
				return nil
			}
			auth = auth || strings.Contains(name, ".requireAuth")
		}
		if auth {
			out = append(out, method+" "+route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 30 {
		t.Fatalf("router walk found only %d authenticated routes: %v", len(out), out)
	}
	sort.Strings(out)
	return out
}

// TestAuditorReadsWhatAnAdminReadsAndChangesNothing walks every
// authenticated route of the router as an auditor: each GET answers what
// it answers an admin (a 2xx), each command answers 403 and appends
// nothing, except issuing the auditor's own API key.
func TestAuditorReadsWhatAnAdminReadsAndChangesNothing(t *testing.T) {
	srv := smtptest.Start(t)
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	member := b.createUser(t, "Mia Member", "member")
	aud := b.createUser(t, "Aldo Auditor", "auditor")
	if got := b.admin.must(200, "GET", "/v1/users/"+aud.userID, nil).json(t)["role"]; got != "auditor" {
		t.Fatalf("auditor's role %v", got)
	}
	cust := b.createCustomer(t, "Cora")
	b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]any{"user_id": member.userID})
	group := b.admin.must(201, "POST", "/v1/groups", map[string]any{"name": "North"}).json(t)["id"].(string)
	rule := b.admin.must(201, "POST", "/v1/assignment-rules", map[string]any{"name": "R",
		"assign": map[string]any{"user_ids": []string{member.userID}, "strategy": "round_robin"}}).json(t)["id"].(string)
	r := b.admin.must(202, "POST", "/v1/customers/messages", map[string]any{"customer_ids": []string{cust}, "subject": "Hi", "body": "News"})
	msg := r.json(t)["id"].(string)
	// The relay records the e-mail's outcome as an event of its own: wait
	// for it, so the count below holds only what the auditor's calls add.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var m struct{ Sent, Failed int }
		b.admin.must(200, "GET", "/v1/messages/"+msg, nil).decode(t, &m)
		if m.Sent+m.Failed == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the message's e-mail was not sent: %+v", m)
		}
	}
	pos := r.header.Get("X-Ledger-Position")
	cp, _ := b.checkpointAfter(t, pos)

	fill := func(route string) string {
		p := route
		switch {
		case strings.HasPrefix(p, "/v1/users/"):
			p = strings.Replace(p, "{id}", member.userID, 1)
		case strings.HasPrefix(p, "/v1/messages/"):
			p = strings.Replace(p, "{id}", msg, 1)
		case strings.HasPrefix(p, "/v1/groups/"):
			p = strings.Replace(p, "{id}", group, 1)
		case strings.HasPrefix(p, "/v1/assignment-rules/"):
			p = strings.Replace(p, "{id}", rule, 1)
		default:
			p = strings.Replace(p, "{id}", cust, 1)
		}
		return strings.Replace(p, "{user_id}", member.userID, 1)
	}
	queries := map[string]string{
		"/v1/ledger/proofs/inclusion":   fmt.Sprintf("?leaf_index=0&tree_size=%d", cp.TreeSize),
		"/v1/ledger/proofs/consistency": fmt.Sprintf("?from=1&to=%d", cp.TreeSize),
	}
	before := b.countEvents(t)
	reads := 0
	for _, route := range authRoutes(t) {
		method, pattern, _ := strings.Cut(route, " ")
		path := fill(pattern) + queries[pattern]
		if method == "GET" {
			reads++
			want := b.admin.do("GET", path, nil, hdr{"X-Min-Position": pos})
			got := aud.do("GET", path, nil, hdr{"X-Min-Position": pos})
			if want.status/100 != 2 || got.status != want.status {
				t.Errorf("GET %s: auditor %d, admin %d: %s", path, got.status, want.status, got.body)
			}
			continue
		}
		if pattern == "/v1/users/{id}/api-keys" {
			continue // below
		}
		if got := aud.do(method, path, "{}"); got.status != 403 {
			t.Errorf("%s %s as an auditor: %d, want 403: %s", method, path, got.status, got.body)
		}
	}
	if reads < 15 {
		t.Fatalf("walked only %d GET routes", reads)
	}
	// The exports an admin downloads: audit (CSV, NDJSON with proofs) and
	// the customer list.
	for _, ex := range []struct{ path, accept string }{
		{"/v1/audit", "text/csv"},
		{"/v1/audit?proofs=true", "application/x-ndjson"},
		{"/v1/customers?format=csv", ""},
		{"/v1/ledger/checkpoint", "text/plain"},
	} {
		want := b.admin.do("GET", ex.path, nil, hdr{"Accept": ex.accept, "X-Min-Position": pos})
		got := aud.do("GET", ex.path, nil, hdr{"Accept": ex.accept, "X-Min-Position": pos})
		if want.status != 200 || got.status != 200 || got.header.Get("Content-Type") != want.header.Get("Content-Type") {
			t.Errorf("export %s (%s): auditor %d %q, admin %d %q", ex.path, ex.accept, got.status,
				got.header.Get("Content-Type"), want.status, want.header.Get("Content-Type"))
		}
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("an auditor's refused commands appended %d events", n-before)
	}

	// The one command an auditor may send: its own API key, and no one
	// else's.
	aud.must(403, "POST", "/v1/users/"+member.userID+"/api-keys", nil)
	key := aud.must(201, "POST", "/v1/users/"+aud.userID+"/api-keys", nil).json(t)["api_key"].(string)
	again := &client{t: t, base: b.base, key: key, userID: aud.userID}
	again.must(200, "GET", "/v1/audit", nil)

	// A member still may not read what only admins and auditors read.
	for _, path := range []string{"/v1/audit", "/v1/ledger/checkpoint", "/v1/ledger/checkpoints", "/v1/clients/import/template"} {
		if got := member.do("GET", path, nil); got.status != 403 {
			t.Errorf("GET %s as a member: %d", path, got.status)
		}
	}
}

// TestAuditorIsNeverAssigned: every way of putting an auditor on a team
// answers 409 auditor_not_assignable and appends nothing; a user with
// customers cannot become an auditor until they are handed over.
func TestAuditorIsNeverAssigned(t *testing.T) {
	b := setup(t)
	member := b.createUser(t, "Mia Member", "member")
	aud := b.createUser(t, "Aldo Auditor", "auditor")
	cust := b.createCustomer(t, "Cora")
	b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]any{"user_id": member.userID})
	before := b.countEvents(t)
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/customers/" + cust + "/assignees", map[string]any{"user_id": aud.userID}},
		{"PUT", "/v1/customers/" + cust + "/assignees", map[string]any{"user_ids": []string{member.userID, aud.userID}}},
		{"POST", "/v1/customers/" + cust + "/assignees/" + member.userID + "/replace", map[string]any{"with_user_id": aud.userID}},
		{"POST", "/v1/users/" + member.userID + "/transfer", map[string]any{"to": aud.userID}},
		{"POST", "/v1/users/" + member.userID + "/deactivate", map[string]any{"transfer_to": aud.userID}},
		{"POST", "/v1/customers", map[string]any{"first_name": "Tess", "team": []string{aud.userID}}},
		{"PATCH", "/v1/users/" + member.userID, map[string]any{"role": "auditor"}},
	} {
		r := b.admin.do(tc.method, tc.path, tc.body)
		if r.status != 409 || r.code() != "auditor_not_assignable" {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, r.status, r.body)
		}
	}
	r := b.admin.do("POST", "/v1/assignments/bulk", map[string]any{"action": "add", "customer_ids": []string{cust}, "user_ids": []string{aud.userID}})
	if r.status != 409 || !strings.Contains(string(r.body), "auditor_not_assignable") {
		t.Errorf("bulk add of an auditor: %d %s", r.status, r.body)
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("refusals appended %d events", n-before)
	}
	// Without customers a member may become an auditor, and back.
	free := b.createUser(t, "Fred Free", "member")
	b.admin.must(200, "PATCH", "/v1/users/"+free.userID, map[string]any{"role": "auditor"})
	b.admin.must(200, "PATCH", "/v1/users/"+free.userID, map[string]any{"role": "member"})
	if r := b.admin.do("POST", "/v1/users", map[string]any{"name": "Odd", "email": "odd@acme.example", "role": "owner"}); r.status != 400 {
		t.Errorf("unknown role: %d %s", r.status, r.body)
	}
}
