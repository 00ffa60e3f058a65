package console_test

import (
	"context"
	"log/slog"
	nethttp "net/http"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/domain"
	ledgerhttp "github.com/assignment-ledger/ledger/http"
)

// auditorOf creates an auditor with an API key.
func (w *world) auditorOf(name, email string) user {
	w.t.Helper()
	ctx := context.Background()
	u, err := w.cmd.CreateUser(ctx, w.meta(), name, email, domain.RoleAuditor)
	if err != nil {
		w.t.Fatal(err)
	}
	k, err := w.cmd.IssueAPIKey(ctx, w.meta(), u.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return user{id: u.ID, name: name, key: k.APIKey, actor: domain.Actor{UserID: u.ID, Name: name, Role: domain.RoleAuditor}}
}

// consolePages walks the real router: every "METHOD /pattern" of a
// signed-in console page (behind the console's guard).
func consolePages(t *testing.T) []string {
	t.Helper()
	s := ledgerhttp.NewServer(ledgerhttp.Deps{Log: slog.New(slog.DiscardHandler)})
	var out []string
	err := chi.Walk(s.Router(), func(method, route string, _ nethttp.Handler, mws ...func(nethttp.Handler) nethttp.Handler) error {
		for _, mw := range mws {
			if name := runtime.FuncForPC(reflect.ValueOf(mw).Pointer()).Name(); strings.Contains(name, "/console.") && strings.Contains(name, ".guard") {
				out = append(out, method+" "+route)
				return nil
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 30 {
		t.Fatalf("router walk found only %d console pages: %v", len(out), out)
	}
	slices.Sort(out)
	return out
}

// TestConsoleAuditorReadsAndChangesNothing walks every console page as an
// auditor: each page an admin reads (customers, a profile, users, audit
// and its exports) answers 200 without an action form or button, each
// admin form page answers 403, and every form post answers 403 and
// appends nothing.
func TestConsoleAuditorReadsAndChangesNothing(t *testing.T) {
	w := newWorld(t)
	w.policy(domain.Policy{MembersCanSelfAssign: true})
	aud := w.auditorOf("Aldo Auditor", "aldo@acme.example")
	cust := w.customer("Cora", "Client", w.bob.id)
	adminHTTP, _ := signInHTTP(t, w, w.admin, "/customers")
	a, _ := signInHTTP(t, w, aud, "/customers")

	adminForms := []string{"/customers/new", "/customers/{id}/delete", "/users/{id}/deactivate", "/users/{id}/transfer",
		"/import", "/import/template.csv", "/invite", "/policy", "/customers/{id}/message", "/users/{id}/customers"}
	fill := func(p string) string {
		if strings.HasPrefix(p, "/users/") {
			return strings.Replace(p, "{id}", w.bob.id, 1)
		}
		return strings.Replace(p, "{id}", cust, 1)
	}
	before := eventCount(t, w)
	for _, route := range consolePages(t) {
		method, pattern, _ := strings.Cut(route, " ")
		path := fill(pattern)
		got := a.do(method, path, nil)
		switch {
		case method != nethttp.MethodGet:
			if got.status != nethttp.StatusForbidden || !strings.Contains(got.body, "an auditor reads everything and changes nothing") {
				t.Errorf("%s %s as an auditor: %d %.200s", method, path, got.status, got.body)
			}
		case slices.Contains(adminForms, pattern):
			if got.status != nethttp.StatusForbidden {
				t.Errorf("GET %s as an auditor: %d, want 403", path, got.status)
			}
		default:
			if want := adminHTTP.get(path); got.status != want.status {
				t.Errorf("GET %s as an auditor: %d, an admin gets %d", path, got.status, want.status)
			}
		}
	}
	if n := eventCount(t, w); n != before {
		t.Fatalf("an auditor's refused posts appended %d events", n-before)
	}

	// The pages an admin reads, without a single action.
	for path, absent := range map[string][]string{
		"/customers":         {`id="bulk"`, `id="new-customer-link"`, `id="message"`},
		"/customers/" + cust: {`id="mine"`, `id="block"`, `id="delete-link"`, `id="edit-profile"`, `id="team-form"`, `action="/customers/` + cust + `/remove"`},
		"/users":             {`id="create-user"`, `action="/users/` + w.bob.id + `/role"`, `/transfer"`, `/deactivate"`},
		"/audit":             {`method="post"`},
		"/notifications":     {`id="mark-read"`},
		"/groups":            {`id="create-group"`, `/rename"`, `/delete"`},
	} {
		got := a.get(path)
		if got.status != nethttp.StatusOK {
			t.Errorf("GET %s as an auditor: %d", path, got.status)
			continue
		}
		// No form posts anything but Sign out.
		body := strings.Replace(got.body, `method="post" action="/sign-out"`, "", 1)
		for _, s := range append(absent, `method="post"`) {
			if strings.Contains(body, s) {
				t.Errorf("GET %s as an auditor offers %s", path, s)
			}
		}
		for _, link := range []string{`href="/users"`, `href="/audit"`} {
			if !strings.Contains(got.body, link) {
				t.Errorf("an auditor's header on %s lacks %s", path, link)
			}
		}
		for _, link := range []string{`href="/import"`, `href="/invite"`, `href="/policy"`} {
			if strings.Contains(got.body, link) {
				t.Errorf("an auditor's header on %s links to %s", path, link)
			}
		}
	}
	if got := a.get("/users"); !strings.Contains(got.body, "Bob Baker") || !strings.Contains(got.body, "auditor") {
		t.Errorf("the users page does not list the team: %.300s", got.body)
	}
	if got := a.get("/customers/" + cust); !strings.Contains(got.body, "Bob Baker") {
		t.Errorf("the profile does not show the team")
	}
	for _, format := range []string{"csv", "ndjson"} {
		if got := a.get("/audit/export?format=" + format); got.status != nethttp.StatusOK || got.body == "" {
			t.Errorf("audit export %s as an auditor: %d", format, got.status)
		}
	}
	// An admin's lists of people to put on teams never offer an auditor.
	if got := adminHTTP.get("/customers/" + cust); strings.Contains(got.body, `value="`+aud.id+`"`) {
		t.Errorf("the admin's profile offers the auditor as an assignee")
	}
}

// eventCount counts the events of the world's database.
func eventCount(t *testing.T, w *world) int {
	t.Helper()
	var n int
	if err := w.pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
