package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// httpUser is a signed-in console session driven by plain HTTP (no
// browser): what the statuses of answers need, not what a page shows.
type httpUser struct {
	t    *testing.T
	w    *world
	u    user
	cl   *nethttp.Client
	csrf string
}

// noRedirect answers redirects as they are, so their Location is seen.
func noRedirect(*nethttp.Request, []*nethttp.Request) error { return nethttp.ErrUseLastResponse }

// signInHTTP signs u in through the sign-in form (its own token), with
// next as the return address, and answers the session and the sign-in's
// answer (a redirect).
func signInHTTP(t *testing.T, w *world, u user, next string) (*httpUser, *nethttp.Response) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cl := &nethttp.Client{Jar: jar, CheckRedirect: noRedirect}
	resp, err := cl.Get(w.base + "/sign-in?next=" + url.QueryEscape(next))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := between(string(body), `name="csrf" value="`, `"`)
	formNext := between(string(body), `name="next" value="`, `"`)
	resp, err = cl.PostForm(w.base+"/sign-in", url.Values{"csrf": {tok}, "api_key": {u.key}, "next": {htmlUnescape(formNext)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != nethttp.StatusSeeOther {
		t.Fatalf("sign-in as %s answered %d", u.name, resp.StatusCode)
	}
	h := &httpUser{t: t, w: w, u: u, cl: cl}
	page := h.get("/customers")
	if page.status != nethttp.StatusOK {
		t.Fatalf("after sign-in /customers answered %d", page.status)
	}
	h.csrf = between(page.body, `name="csrf" value="`, `"`)
	return h, resp
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

type answer struct {
	status   int
	body     string
	location string
}

func (h *httpUser) do(method, path string, form url.Values) answer {
	h.t.Helper()
	var body io.Reader
	if method == nethttp.MethodPost {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("csrf", h.csrf)
		body = strings.NewReader(f.Encode())
	} else if len(form) > 0 {
		path += "?" + form.Encode()
	}
	req, err := nethttp.NewRequest(method, h.w.base+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := h.cl.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location")}
}

func (h *httpUser) get(path string) answer { return h.do(nethttp.MethodGet, path, nil) }

// api sends the API's request for the same thing with u's key.
func (w *world) api(t *testing.T, u user, method, path string, body any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := nethttp.NewRequest(method, w.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+u.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method == nethttp.MethodPatch {
		req.Header.Set("If-Match", `"1"`)
	}
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// apiCall is the API's request for a console request.
type apiCall struct {
	method, path string
	body         any
}

// walkCase is one console request with bad IDs, and what it must answer:
// the status of the API's request for the same thing (want 0), or want.
type walkCase struct {
	name         string
	method, path string
	form         url.Values
	api          apiCall
	want         int
	// admin marks a page only an admin may use (a member gets 403 before
	// anything else, as the API's requireAdmin).
	admin bool
	// memberOnly is a case tried as a member only (as an admin it would
	// carry out the command).
	memberOnly bool
}

// sameClass compares a console answer with the API's: a page that carried
// out a command redirects (303) or shows its result (200) where the API
// answers 2xx; any refusal must have the API's very status.
func sameClass(console, api int) bool {
	if api >= 200 && api < 300 {
		return console == nethttp.StatusOK || console == nethttp.StatusSeeOther
	}
	return console == api
}

// TestConsoleBadIDsAnswerAsTheAPI walks every console route that takes an
// ID with unknown, erased, other-tenant and malformed IDs (in the path, the
// form and the query), as an admin and as a member: no answer is a 5xx,
// and each has the status the API answers the same request with (404,
// 410, 403, 409, 400 invalid_id), on a page that shows the rule's message.
func TestConsoleBadIDsAnswerAsTheAPI(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.policy(domain.Policy{MembersCanSelfAssign: true})
	kept := w.customer("Kai", "Kept", w.bob.id)
	erased := w.customer("Eli", "Erased", w.bob.id)
	if _, err := w.cmd.EraseCustomer(ctx, w.meta(), erased); err != nil {
		t.Fatal(err)
	}
	group, err := w.cmd.CreateGroup(ctx, w.meta(), "Gold")
	if err != nil {
		t.Fatal(err)
	}
	other, err := w.cmd.Bootstrap(ctx, "Elsewhere", "Olga Other", "olga@elsewhere.example")
	if err != nil {
		t.Fatal(err)
	}
	otherMeta := commands.Meta{TenantID: other.TenantID, Actor: domain.Actor{UserID: other.UserID, Name: "Olga Other", Role: domain.RoleAdmin}}
	foreign, err := w.cmd.RegisterCustomer(ctx, otherMeta, domain.Profile{FirstName: "Fay", LastName: "Foreign", Email: "fay@elsewhere.example"})
	if err != nil {
		t.Fatal(err)
	}
	unknown := uuid.NewString()
	malformed := []string{"garbage", "12345", strings.ToUpper(unknown)[:35], unknown + "0", "{" + unknown + "}"}

	customers := map[string]string{"unknown": unknown, "erased": erased, "other-tenant": foreign.ID}
	users := map[string]string{"unknown": unknown, "other-tenant": other.UserID, "erased customer as user": erased}
	for i, m := range malformed {
		customers[fmt.Sprintf("malformed %d", i)] = m
		users[fmt.Sprintf("malformed %d", i)] = m
	}

	var cases []walkCase
	for kind, id := range customers {
		p := "/customers/" + url.PathEscape(id)
		v := "/v1/customers/" + url.PathEscape(id)
		cases = append(cases,
			walkCase{name: "profile " + kind, method: "GET", path: p, api: apiCall{"GET", v, nil}},
			walkCase{name: "block " + kind, method: "POST", path: p + "/block", form: url.Values{"block": {"block"}},
				api: apiCall{"POST", v + "/block", nil}, admin: true},
			walkCase{name: "unblock " + kind, method: "POST", path: p + "/block", form: url.Values{"block": {"unblock"}},
				api: apiCall{"POST", v + "/unblock", nil}, admin: true},
			walkCase{name: "delete page " + kind, method: "GET", path: p + "/delete", api: apiCall{"GET", v, nil}, admin: true},
			walkCase{name: "delete " + kind, method: "POST", path: p + "/delete", api: apiCall{"DELETE", v, nil}, admin: true},
			walkCase{name: "edit profile " + kind, method: "POST", path: p + "/profile",
				form: url.Values{"version": {"1"}, "first_name": {"New"}},
				api:  apiCall{"PATCH", v, map[string]any{"first_name": "New"}}, admin: true},
			walkCase{name: "groups " + kind, method: "POST", path: p + "/groups", form: url.Values{"action": {"add"}, "group_id": {group.ID}},
				api: apiCall{"POST", "/v1/customers/bulk", map[string]any{"action": "add_to_group", "customer_ids": []string{id}, "group_id": group.ID}}, admin: true},
			walkCase{name: "mine " + kind, method: "POST", path: p + "/mine", form: url.Values{"mine": {"add"}},
				api: apiCall{"POST", v + "/assignees", map[string]any{"user_id": "me"}}},
			walkCase{name: "not mine " + kind, method: "POST", path: p + "/mine", form: url.Values{"mine": {"remove"}},
				api: apiCall{"DELETE", v + "/assignees/me", nil}},
			walkCase{name: "team " + kind, method: "POST", path: p + "/team", form: url.Values{"user_ids": {w.bob.id}},
				api: apiCall{"PUT", v + "/assignees", map[string]any{"user_ids": []string{w.bob.id}}}},
			walkCase{name: "lead " + kind, method: "POST", path: p + "/lead", form: url.Values{"user_id": {w.bob.id}},
				api: apiCall{"PUT", v + "/lead", map[string]any{"user_id": w.bob.id}}, admin: true},
			walkCase{name: "remove " + kind, method: "POST", path: p + "/remove", form: url.Values{"user_id": {w.bob.id}},
				api: apiCall{"DELETE", v + "/assignees/" + w.bob.id, nil}},
			walkCase{name: "replace " + kind, method: "POST", path: p + "/replace", form: url.Values{"user_id": {w.bob.id}, "with_user_id": {w.carol.id}},
				api: apiCall{"POST", v + "/assignees/" + w.bob.id + "/replace", map[string]any{"with_user_id": w.carol.id}}, admin: true},
			walkCase{name: "inline assign " + kind, method: "POST", path: p + "/assign", form: url.Values{"user_id": {w.bob.id}},
				api: apiCall{"POST", v + "/assignees", map[string]any{"user_id": w.bob.id}}},
			walkCase{name: "row message page " + kind, method: "GET", path: p + "/message", api: apiCall{"GET", v, nil}, admin: true},
			walkCase{name: "bulk block " + kind, method: "POST", path: "/customers/bulk/review", form: url.Values{"action": {"block"}, "customer_ids": {id}},
				api: apiCall{"POST", "/v1/customers/bulk", map[string]any{"action": "block", "customer_ids": []string{id}, "dry_run": true}}, admin: true},
			walkCase{name: "message status " + kind, method: "GET", path: "/messages/" + url.PathEscape(id),
				api: apiCall{"GET", "/v1/messages/" + url.PathEscape(id), nil}},
		)
	}
	for kind, id := range users {
		p := "/users/" + url.PathEscape(id)
		v := "/v1/users/" + url.PathEscape(id)
		cases = append(cases,
			walkCase{name: "role " + kind, method: "POST", path: p + "/role", form: url.Values{"role": {"member"}},
				api: apiCall{"PATCH", v, map[string]any{"role": "member"}}, admin: true},
			walkCase{name: "deactivate preview " + kind, method: "GET", path: p + "/deactivate",
				api: apiCall{"POST", v + "/deactivate", map[string]any{"dry_run": true}}, admin: true},
			walkCase{name: "deactivate " + kind, method: "POST", path: p + "/deactivate",
				api: apiCall{"POST", v + "/deactivate", map[string]any{"dry_run": true}}, admin: true},
			walkCase{name: "rename group " + kind, method: "POST", path: "/groups/" + url.PathEscape(id) + "/rename", form: url.Values{"name": {"Renamed"}},
				api: apiCall{"PATCH", "/v1/groups/" + url.PathEscape(id), map[string]any{"name": "Renamed"}}, admin: true},
			walkCase{name: "delete group " + kind, method: "POST", path: "/groups/" + url.PathEscape(id) + "/delete",
				api: apiCall{"DELETE", "/v1/groups/" + url.PathEscape(id), nil}, admin: true},
			walkCase{name: "assign customers page " + kind, method: "GET", path: p + "/customers",
				api: apiCall{"GET", v, nil}, admin: true},
			walkCase{name: "assign customers save " + kind, method: "POST", path: p + "/customers", form: url.Values{"add": {kept}},
				api: apiCall{"POST", "/v1/assignments/bulk", map[string]any{"action": "add", "user_ids": []string{id}, "customer_ids": []string{kept}}}, admin: true},
			walkCase{name: "transfer page " + kind, method: "GET", path: p + "/transfer",
				api: apiCall{"GET", v, nil}, admin: true},
			walkCase{name: "transfer preview " + kind, method: "GET", path: p + "/transfer", form: url.Values{"to": {w.carol.id}},
				api: apiCall{"POST", v + "/transfer", map[string]any{"to": w.carol.id, "dry_run": true}}, admin: true},
			walkCase{name: "transfer " + kind, method: "POST", path: p + "/transfer", form: url.Values{"to": {w.carol.id}},
				api: apiCall{"POST", v + "/transfer", map[string]any{"to": w.carol.id, "dry_run": true}}, admin: true},
			// Bad IDs in a form or a query, with good ones in the path.
			walkCase{name: "transfer to " + kind, method: "POST", path: "/users/" + w.bob.id + "/transfer", form: url.Values{"to": {id}},
				api: apiCall{"POST", "/v1/users/" + w.bob.id + "/transfer", map[string]any{"to": id, "dry_run": true}}, admin: true},
			walkCase{name: "transfer preview to " + kind, method: "GET", path: "/users/" + w.bob.id + "/transfer", form: url.Values{"to": {id}},
				api: apiCall{"POST", "/v1/users/" + w.bob.id + "/transfer", map[string]any{"to": id, "dry_run": true}}, admin: true},
			walkCase{name: "deactivate preview to " + kind, method: "GET", path: "/users/" + w.bob.id + "/deactivate", form: url.Values{"transfer_to": {id}},
				api: apiCall{"POST", "/v1/users/" + w.bob.id + "/deactivate", map[string]any{"transfer_to": id, "dry_run": true}}, admin: true},
			walkCase{name: "lead user " + kind, method: "POST", path: "/customers/" + kept + "/lead", form: url.Values{"user_id": {id}},
				api: apiCall{"PUT", "/v1/customers/" + kept + "/lead", map[string]any{"user_id": id}}, admin: true},
			walkCase{name: "replace with " + kind, method: "POST", path: "/customers/" + kept + "/replace", form: url.Values{"user_id": {w.bob.id}, "with_user_id": {id}},
				api: apiCall{"POST", "/v1/customers/" + kept + "/assignees/" + w.bob.id + "/replace", map[string]any{"with_user_id": id}}, admin: true},
			walkCase{name: "inline assign of " + kind, method: "POST", path: "/customers/" + kept + "/assign", form: url.Values{"user_id": {id}},
				api: apiCall{"POST", "/v1/customers/" + kept + "/assignees", map[string]any{"user_id": id}}},
			walkCase{name: "remove user " + kind, method: "POST", path: "/customers/" + kept + "/remove", form: url.Values{"user_id": {id}},
				api: apiCall{"DELETE", "/v1/customers/" + kept + "/assignees/" + url.PathEscape(id), nil}},
			walkCase{name: "team of " + kind, method: "POST", path: "/customers/" + kept + "/team", form: url.Values{"user_ids": {w.bob.id, id}},
				api: apiCall{"PUT", "/v1/customers/" + kept + "/assignees", map[string]any{"user_ids": []string{w.bob.id, id}}}},
			walkCase{name: "group " + kind, method: "POST", path: "/customers/" + kept + "/groups", form: url.Values{"action": {"add"}, "group_id": {id}},
				api: apiCall{"POST", "/v1/customers/bulk", map[string]any{"action": "add_to_group", "customer_ids": []string{kept}, "group_id": id}}, admin: true},
			walkCase{name: "customers of " + kind, method: "GET", path: "/customers", form: url.Values{"assigned_user": {id}},
				api: apiCall{"GET", "/v1/customers?assigned_user=" + url.QueryEscape(id), nil}},
			walkCase{name: "customers in group " + kind, method: "GET", path: "/customers", form: url.Values{"group": {id}},
				api: apiCall{"GET", "/v1/customers?group=" + url.QueryEscape(id), nil}},
			walkCase{name: "audit of " + kind, method: "GET", path: "/audit", form: url.Values{"customer_id": {id}},
				api: apiCall{"GET", "/v1/audit?customer_id=" + url.QueryEscape(id), nil}, admin: true},
			walkCase{name: "bulk review " + kind, method: "POST", path: "/customers/bulk/review", form: url.Values{"action": {"add"}, "user_id": {w.bob.id}, "customer_ids": {id}},
				api: apiCall{"POST", "/v1/assignments/bulk", map[string]any{"action": "add", "user_ids": []string{w.bob.id}, "customer_ids": []string{id}, "dry_run": true}}},
			walkCase{name: "bulk save " + kind, method: "POST", path: "/customers/bulk", form: url.Values{"action": {"add"}, "user_id": {w.bob.id}, "customer_ids": {id}},
				api: apiCall{"POST", "/v1/assignments/bulk", map[string]any{"action": "add", "user_ids": []string{w.bob.id}, "customer_ids": []string{id}}}},
			walkCase{name: "bulk review user " + kind, method: "POST", path: "/customers/bulk/review", form: url.Values{"action": {"add"}, "user_id": {id}, "customer_ids": {kept}},
				api: apiCall{"POST", "/v1/assignments/bulk", map[string]any{"action": "add", "user_ids": []string{id}, "customer_ids": []string{kept}, "dry_run": true}}},
			walkCase{name: "bulk save user " + kind, method: "POST", path: "/customers/bulk", form: url.Values{"action": {"add"}, "user_id": {id}, "customer_ids": {kept}},
				api: apiCall{"POST", "/v1/assignments/bulk", map[string]any{"action": "add", "user_ids": []string{id}, "customer_ids": []string{kept}}}},
			walkCase{name: "bulk delete " + kind, method: "POST", path: "/customers/bulk/review", form: url.Values{"action": {"delete"}, "customer_ids": {id}},
				api: apiCall{"POST", "/v1/customers/bulk", map[string]any{"action": "delete", "customer_ids": []string{id}, "dry_run": true}}, admin: true},
			walkCase{name: "message " + kind, method: "POST", path: "/customers/message", form: url.Values{"subject": {"Hi"}, "body": {"Hello"}, "customer_ids": {id}},
				api: apiCall{"POST", "/v1/customers/messages", map[string]any{"subject": "Hi", "body": "Hello", "customer_ids": []string{id}}}, admin: true},
			walkCase{name: "new customer with " + kind, method: "POST", path: "/customers/new", form: url.Values{"first_name": {"Nia"}, "email": {"nia@client.example"}, "team": {id}},
				api: apiCall{"POST", "/v1/customers", map[string]any{"first_name": "Nia", "email": "nia@client.example", "team": []string{id}}}, admin: true},
			walkCase{name: "invite with " + kind, method: "POST", path: "/invite", form: url.Values{"first_name": {"Ivo"}, "email": {"ivo@client.example"}, "team": {id}},
				api: apiCall{"POST", "/v1/clients/invitations", map[string]any{"first_name": "Ivo", "email": "ivo@client.example", "team": []string{id}}}, admin: true},
		)
	}
	// The issue's own examples, and what only the console has.
	cases = append(cases,
		walkCase{name: "member deactivates", method: "POST", path: "/users/" + w.carol.id + "/deactivate", want: nethttp.StatusForbidden, admin: true, memberOnly: true},
		walkCase{name: "transfer to garbage", method: "POST", path: "/users/" + w.bob.id + "/transfer", form: url.Values{"to": {"garbage"}}, want: nethttp.StatusBadRequest, admin: true},
		walkCase{name: "transfer to no one", method: "POST", path: "/users/" + w.bob.id + "/transfer", want: nethttp.StatusBadRequest, admin: true},
		walkCase{name: "audit export zzz", method: "GET", path: "/audit/export", form: url.Values{"format": {"zzz"}}, want: nethttp.StatusBadRequest, admin: true},
		walkCase{name: "transfer to oneself", method: "POST", path: "/users/" + w.bob.id + "/transfer", form: url.Values{"to": {w.bob.id}},
			api: apiCall{"POST", "/v1/users/" + w.bob.id + "/transfer", map[string]any{"to": w.bob.id}}, admin: true},
	)

	admin, _ := signInHTTP(t, w, w.admin, "/customers")
	member, _ := signInHTTP(t, w, w.bob, "/customers")
	checked := 0
	for _, who := range []*httpUser{admin, member} {
		isMember := who == member
		for _, c := range cases {
			if c.memberOnly && !isMember {
				continue
			}
			want := c.want
			switch {
			case isMember && c.admin:
				want = nethttp.StatusForbidden
			case want == 0:
				want = w.api(t, who.u, c.api.method, c.api.path, c.api.body)
			}
			got := who.do(c.method, c.path, c.form)
			checked++
			if got.status >= 500 {
				t.Errorf("%s as %s: %s %s answered %d: %.300s", c.name, who.u.name, c.method, c.path, got.status, got.body)
				continue
			}
			if !sameClass(got.status, want) {
				t.Errorf("%s as %s: %s %s %v answered %d, want %d as the API", c.name, who.u.name, c.method, c.path, c.form, got.status, want)
				continue
			}
			if got.status >= 400 && !strings.Contains(got.body, `id="refusal"`) {
				t.Errorf("%s as %s: the %d page shows no refusal: %.300s", c.name, who.u.name, got.status, got.body)
			}
		}
	}
	t.Logf("%d console requests checked", checked)
	// Nothing was changed by any of it.
	cu, err := w.cmd.GetCustomer(ctx, w.tenant, kept)
	if err != nil {
		t.Fatal(err)
	}
	if cu.FirstName != "Kai" || cu.Status != "active" || len(cu.Assignees) != 1 || cu.Assignees[0].UserID != w.bob.id {
		t.Fatalf("a refused request changed the customer: %+v", cu)
	}
}

// TestConsoleRefusalPages: the problem pages say what happened in words:
// a member's admin page says only an admin may, an erased customer's
// actions say it was deleted, an unknown one that it is not found.
func TestConsoleRefusalPages(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.policy(domain.Policy{MembersCanSelfAssign: true})
	erased := w.customer("Eli", "Erased")
	if _, err := w.cmd.EraseCustomer(ctx, w.meta(), erased); err != nil {
		t.Fatal(err)
	}
	member, _ := signInHTTP(t, w, w.bob, "/customers")
	for path, want := range map[string]string{
		"/users":                             "only an admin or an auditor may read this",
		"/users/" + w.carol.id + "/transfer": "only an admin may do this",
		"/customers/" + erased + "/delete":   "only an admin may do this",
		"/policy":                            "Your role does not allow this",
		"/customers/" + erased:               "was deleted",
		"/customers/" + uuid.NewString():     "no such customer",
		"/customers/not-an-id":               `id &#34;not-an-id&#34; is not a UUID`,
	} {
		got := member.get(path)
		if got.status < 400 || !strings.Contains(got.body, want) {
			t.Errorf("GET %s as a member answered %d without %q: %.500s", path, got.status, want, got.body)
		}
	}
	got := member.do("POST", "/customers/"+erased+"/mine", url.Values{"mine": {"add"}})
	if got.status != nethttp.StatusGone || !strings.Contains(got.body, "was deleted") {
		t.Errorf("+My Clients on an erased customer answered %d: %.500s", got.status, got.body)
	}
}

// TestConsoleSignInReturnsOnlyToConsole: the sign-in's return address
// (next=) only ever leads to a page of the console: the issue's
// "/<TAB>/evil.test", which browsers follow to //evil.test, and its kin
// lead to /.
func TestConsoleSignInReturnsOnlyToConsole(t *testing.T) {
	w := newWorld(t)
	for next, want := range map[string]string{
		"/\t/evil.test":            "/",
		"/\n/evil.test":            "/",
		"\t//evil.test":            "/",
		"/\\evil.test":             "/",
		"//evil.test":              "/",
		"https://evil.test/":       "/",
		"/v1/customers":            "/",
		"/my-clients?q=ann":        "/my-clients?q=ann",
		"/customers?status=active": "/customers?status=active",
	} {
		_, resp := signInHTTP(t, w, w.admin, next)
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("sign-in with next=%q redirects to %q, want %q", next, got, want)
		}
	}
	// The form's hidden field carries no more than the redirect would.
	resp, err := nethttp.Get(w.base + "/sign-in?next=%2F%09%2Fevil.test")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "evil.test") {
		t.Errorf("the sign-in form keeps the foreign return address: %s", between(string(body), `name="next"`, ">"))
	}
}
