package http_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	ledgerhttp "github.com/assignment-ledger/ledger/http"
)

// visibilityFixture is a tenant with two members, each serving one
// customer: ann serves "Anna Seen", bob serves "Bertrand Hidden". ann was on
// Bertrand's team for a moment (so she has notifications, history entries
// and an assignment interval naming him), and both customers are in one
// group.
type visibilityFixture struct {
	b                *testBundle
	ann, bob         *client
	auditor          *client
	seen, hidden     string
	hiddenEmail      string
	group            string
	beforeHiddenLeft time.Time
}

func newVisibilityFixture(t *testing.T) *visibilityFixture {
	t.Helper()
	b := setup(t)
	f := &visibilityFixture{b: b}
	f.ann = b.createUser(t, "Ann Member", "member")
	f.bob = b.createUser(t, "Bob Member", "member")
	f.auditor = b.createUser(t, "Aud Itor", "auditor")
	f.hiddenEmail = "bertrand.hidden@client.example"
	f.seen = b.admin.must(201, "POST", "/v1/customers", map[string]any{"first_name": "Anna", "last_name": "Seen",
		"email": "anna.seen@client.example", "team": []string{f.ann.userID}}).json(t)["id"].(string)
	f.hidden = b.admin.must(201, "POST", "/v1/customers", map[string]any{"first_name": "Bertrand", "last_name": "Hidden",
		"email": f.hiddenEmail, "phone": "+1 555 0100", "external_id": "EXT-HIDDEN", "team": []string{f.bob.userID}}).json(t)["id"].(string)
	b.admin.must(200, "POST", "/v1/customers/"+f.hidden+"/assignees", map[string]any{"user_id": f.ann.userID})
	time.Sleep(5 * time.Millisecond) // as_of strictly inside ann's stretch on the hidden customer
	f.beforeHiddenLeft = time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	b.admin.must(200, "DELETE", "/v1/customers/"+f.hidden+"/assignees/"+f.ann.userID, nil)
	f.group = b.admin.must(201, "POST", "/v1/groups", map[string]any{"name": "Both"}).json(t)["id"].(string)
	b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "add_to_group", "group_id": f.group,
		"customer_ids": []string{f.seen, f.hidden}})
	f.setMembersSee(t, "assigned")
	return f
}

// setMembersSee changes only members_see (the other fields as they are),
// then waits for the read models up to the last change.
func (f *visibilityFixture) setMembersSee(t *testing.T, see string) {
	t.Helper()
	pol := f.b.admin.must(200, "GET", "/v1/policy", nil).json(t)
	pol["members_see"] = see
	r := f.b.admin.must(200, "PUT", "/v1/policy", pol)
	if got := r.json(t)["members_see"]; got != see {
		t.Fatalf("PUT /v1/policy answered members_see %v, want %s", got, see)
	}
	// Every read model has applied everything once the customer list has
	// answered at the policy's position.
	f.b.admin.must(200, "GET", "/v1/customers", nil, hdr{"X-Min-Position": r.header.Get("X-Ledger-Position")})
	for _, path := range []string{"/v1/users/" + f.ann.userID + "/notifications", "/v1/groups", "/v1/users/" + f.ann.userID + "/clients"} {
		f.b.admin.must(200, "GET", path, nil, hdr{"X-Min-Position": r.header.Get("X-Ledger-Position")})
	}
}

// leaks reports what in body names the hidden customer.
func (f *visibilityFixture) leaks(body []byte) []string {
	text := plainText(body)
	var out []string
	for _, s := range []string{f.hidden, "Bertrand", "bertrand", "Hidden", f.hiddenEmail, "EXT-HIDDEN", "555 0100"} {
		if strings.Contains(text, s) {
			out = append(out, s)
		}
	}
	return out
}

// plainText is body as text, with the entries of a zip (XLSX, ODS)
// inflated, so a name inside a spreadsheet is found too.
func plainText(body []byte) string {
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return string(body)
	}
	var sb strings.Builder
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		sb.Write(b)
	}
	return sb.String()
}

// Under members_see "assigned", every GET route of the API and every
// export, read by a member, either answers for the hidden customer exactly
// as for an unknown ID or leaves it out; admins and auditors still see it;
// back under "all" the member sees it again.
func TestMembersSeeAssignedOnEveryRoute(t *testing.T) {
	f := newVisibilityFixture(t)
	unknown := uuid.NewString()
	asOf := url.QueryEscape(f.beforeHiddenLeft.Format(time.RFC3339Nano))
	routes := ledgerhttp.APIGetRoutes(t)
	tried := 0
	for _, rt := range routes {
		for _, variant := range rt.Variants {
			variant = strings.NewReplacer("NOW", asOf, "HIDDEN", f.hidden, "GROUP", f.group, "SERVER", f.bob.userID).Replace(variant)
			switch {
			case strings.HasPrefix(rt.Pattern, "/v1/customers/{id}"):
				// A customer's own route: the hidden ID answers exactly as
				// an unknown one (status and body, the path aside).
				hid := f.ann.do("GET", strings.Replace(rt.Pattern, "{id}", f.hidden, 1)+variant, nil)
				unk := f.ann.do("GET", strings.Replace(rt.Pattern, "{id}", unknown, 1)+variant, nil)
				if hid.status != unk.status || string(bytes.ReplaceAll(hid.body, []byte(f.hidden), []byte(unknown))) != string(unk.body) {
					t.Errorf("GET %s%s as a member: hidden customer %d %s, unknown ID %d %s", rt.Pattern, variant, hid.status, hid.body, unk.status, unk.body)
				}
				if hid.status != 404 {
					t.Errorf("GET %s%s as a member: hidden customer answered %d, want 404", rt.Pattern, variant, hid.status)
				}
				// The member's own customer still answers.
				if own := f.ann.do("GET", strings.Replace(rt.Pattern, "{id}", f.seen, 1)+strings.ReplaceAll(variant, f.hidden, f.seen), nil); own.status != 200 {
					t.Errorf("GET %s%s for the member's own customer: %d %s", rt.Pattern, variant, own.status, own.body)
				}
				tried += 3
			default:
				// Any other route: the member's answer never names the
				// hidden customer. {id} is the hidden customer's member
				// (My Clients of others, their notifications), or unknown.
				path := rt.Pattern
				if strings.HasPrefix(path, "/v1/users/{id}") {
					path = strings.Replace(path, "{id}", f.bob.userID, 1)
				}
				path = strings.ReplaceAll(path, "{id}", unknown) + variant
				for _, who := range []*client{f.ann, f.bob} {
					if who == f.bob && !strings.Contains(path, f.bob.userID) {
						continue
					}
					r := who.do("GET", path, nil)
					if who == f.ann {
						if leaks := f.leaks(r.body); len(leaks) > 0 {
							t.Errorf("GET %s as a member under assigned: %d, the answer names the hidden customer (%v): %.300s", path, r.status, leaks, r.body)
						}
						if r.status >= 500 {
							t.Errorf("GET %s as a member: %d %s", path, r.status, r.body)
						}
					}
					tried++
				}
			}
		}
	}
	t.Logf("tried %d requests over %d routes", tried, len(routes))
	if tried < 40 {
		t.Fatalf("tried %d requests over %d routes: the route walk found too little", tried, len(routes))
	}

	// Every export format by Accept as well as by ?format=.
	for _, accept := range []string{"text/csv", "application/x-ndjson", "text/vcard", "text/html",
		"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/vnd.oasis.opendocument.spreadsheet"} {
		r := f.ann.do("GET", "/v1/customers", nil, hdr{"Accept": accept})
		if leaks := f.leaks(r.body); len(leaks) > 0 || r.status != 200 {
			t.Errorf("export %s as a member: %d, names the hidden customer %v", accept, r.status, leaks)
		}
		if !strings.Contains(plainText(r.body), "Anna") {
			t.Errorf("export %s as a member leaves out the member's own customer: %.300s", accept, r.body)
		}
	}
	// The member's own customer is in the list, search and group count.
	if ids := listIDs(t, f.ann.must(200, "GET", "/v1/customers", nil)); !slices.Equal(ids, []string{f.seen}) {
		t.Fatalf("member's customer list %v, want only %s", ids, f.seen)
	}
	if n := groupCount(t, f.ann, f.group); n != 1 {
		t.Fatalf("member's count of the group %d, want 1", n)
	}

	// Admins and auditors see all.
	for _, who := range []*client{f.b.admin, f.auditor} {
		who.must(200, "GET", "/v1/customers/"+f.hidden, nil)
		who.must(200, "GET", "/v1/customers/"+f.hidden+"/history", nil)
		if ids := listIDs(t, who.must(200, "GET", "/v1/customers?q=bertrand", nil)); !slices.Equal(ids, []string{f.hidden}) {
			t.Fatalf("search as %s: %v", who.userID, ids)
		}
		if r := who.must(200, "GET", "/v1/customers?format=csv", nil); !strings.Contains(string(r.body), f.hiddenEmail) {
			t.Fatalf("export as %s leaves out the hidden customer", who.userID)
		}
		if n := groupCount(t, who, f.group); n != 2 {
			t.Fatalf("group count as %s: %d", who.userID, n)
		}
		if r := who.must(200, "GET", "/v1/audit?customer_id="+f.hidden, nil); len(f.leaks(r.body)) == 0 {
			t.Fatalf("audit as %s leaves out the hidden customer: %s", who.userID, r.body)
		}
	}

	// Back to all: the member sees the customer again, everywhere.
	f.setMembersSee(t, "all")
	f.ann.must(200, "GET", "/v1/customers/"+f.hidden, nil)
	f.ann.must(200, "GET", "/v1/customers/"+f.hidden+"/history", nil)
	f.ann.must(200, "GET", "/v1/customers/"+f.hidden+"/assignees?as_of="+asOf, nil)
	if ids := listIDs(t, f.ann.must(200, "GET", "/v1/customers?q=bertrand", nil)); !slices.Equal(ids, []string{f.hidden}) {
		t.Fatalf("member's search under all: %v", ids)
	}
	if r := f.ann.must(200, "GET", "/v1/users/"+f.bob.userID+"/clients", nil); len(f.leaks(r.body)) == 0 {
		t.Fatalf("bob's clients as ann under all leave out his customer: %s", r.body)
	}
	if r := f.ann.must(200, "GET", "/v1/users/"+f.ann.userID+"/notifications", nil); len(f.leaks(r.body)) == 0 {
		t.Fatalf("ann's notifications under all leave out the hidden customer: %s", r.body)
	}
	if n := groupCount(t, f.ann, f.group); n != 2 {
		t.Fatalf("member's group count under all: %d", n)
	}
}

func listIDs(t *testing.T, r response) []string {
	t.Helper()
	var pg struct{ Items []struct{ ID string } }
	r.decode(t, &pg)
	ids := []string{}
	for _, it := range pg.Items {
		ids = append(ids, it.ID)
	}
	return ids
}

func groupCount(t *testing.T, c *client, group string) int {
	t.Helper()
	var gs struct {
		Items []struct {
			ID        string
			Customers int
		}
	}
	c.must(200, "GET", "/v1/groups", nil).decode(t, &gs)
	for _, g := range gs.Items {
		if g.ID == group {
			return g.Customers
		}
	}
	t.Fatalf("group %s not listed", group)
	return 0
}

// The read models refuse a member's reads of another's customer by
// themselves: plain SQL without any WHERE, run as the service's read role
// with the member's settings (what projections.Viewer sets), finds only
// the member's rows; the search table is not readable at all; a viewer of
// another tenant, or none, finds nothing.
func TestReadModelsRowLevelSecurity(t *testing.T) {
	f := newVisibilityFixture(t)
	ctx := context.Background()
	as := func(tenant, user, role string, fn func(tx pgx.Tx)) {
		t.Helper()
		tx, err := f.b.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SELECT set_config('role', 'ledger_reader', true), set_config('ledger.viewer_tenant', $1, true),
			set_config('ledger.viewer_user', $2, true), set_config('ledger.viewer_role', $3, true)`, tenant, user, role); err != nil {
			t.Fatal(err)
		}
		fn(tx)
	}
	customersIn := func(tx pgx.Tx, sql string) []string {
		t.Helper()
		rows, err := tx.Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		slices.Sort(ids)
		return slices.Compact(ids)
	}
	tables := []string{
		`SELECT customer_id::text FROM customer_list`,
		`SELECT customer_id::text FROM my_clients`,
		`SELECT customer_id::text FROM customer_groups`,
		`SELECT customer_id::text FROM assignment_intervals`,
		`SELECT customer_id::text FROM notifications`,
		`SELECT customer_id::text FROM audit_log WHERE customer_id IS NOT NULL`,
		`SELECT ledger_search(` + quoteLiteral(f.b.tenant) + `::uuid, '%')::text`,
	}
	both := []string{f.seen, f.hidden}
	slices.Sort(both)
	as(f.b.tenant, f.ann.userID, "member", func(tx pgx.Tx) {
		for _, sql := range tables {
			if got := customersIn(tx, sql); !slices.Equal(got, []string{f.seen}) {
				t.Errorf("as ann under assigned, %s: %v, want only %s", sql, got, f.seen)
			}
		}
		// Bob's rows in my_clients are of his customer, which ann does not
		// see: none of his rows show.
		if got := customersIn(tx, `SELECT user_id::text FROM my_clients WHERE user_id = `+quoteLiteral(f.bob.userID)+`::uuid`); len(got) != 0 {
			t.Errorf("as ann, bob's My Clients rows: %v", got)
		}
	})
	as(f.b.tenant, f.ann.userID, "member", func(tx pgx.Tx) {
		_, err := tx.Exec(ctx, `SELECT count(*) FROM customer_search`)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("reading customer_search as the reader: %v, want permission denied", err)
		}
	})
	for _, role := range []string{"admin", "auditor"} {
		as(f.b.tenant, f.b.admin.userID, role, func(tx pgx.Tx) {
			for _, sql := range tables {
				if got := customersIn(tx, sql); !slices.Equal(got, both) {
					t.Errorf("as %s, %s: %v, want both customers", role, sql, got)
				}
			}
		})
	}
	// A rebuild swaps in new tables made by LIKE (no policies copied): the
	// swap applies them again.
	if err := f.b.runner.Rebuild(ctx, "all", nil); err != nil {
		t.Fatal(err)
	}
	as(f.b.tenant, f.ann.userID, "member", func(tx pgx.Tx) {
		for _, sql := range tables {
			if got := customersIn(tx, sql); !slices.Equal(got, []string{f.seen}) {
				t.Errorf("after a rebuild, as ann under assigned, %s: %v, want only %s", sql, got, f.seen)
			}
		}
	})
	// Another tenant's viewer, and a reader with no viewer, see nothing.
	for _, tenant := range []string{uuid.NewString(), ""} {
		as(tenant, f.b.admin.userID, "admin", func(tx pgx.Tx) {
			for _, sql := range tables[:6] {
				if got := customersIn(tx, sql); len(got) != 0 {
					t.Errorf("as a viewer of tenant %q, %s: %v", tenant, sql, got)
				}
			}
		})
	}
	// Under "all" the member sees both again, from the same SQL.
	f.setMembersSee(t, "all")
	as(f.b.tenant, f.ann.userID, "member", func(tx pgx.Tx) {
		for _, sql := range tables {
			if got := customersIn(tx, sql); !slices.Equal(got, both) {
				t.Errorf("as ann under all, %s: %v, want both", sql, got)
			}
		}
	})
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// members_see is optional in PUT (absent keeps it), shown by GET, and a bad
// value is a 400 naming the field that changes nothing.
func TestPolicyMembersSee(t *testing.T) {
	b := setup(t)
	pol := b.admin.must(200, "GET", "/v1/policy", nil).json(t)
	if pol["members_see"] != "all" {
		t.Fatalf("default policy %v, want members_see all", pol)
	}
	full := map[string]any{"max_assignees": nil, "require_assignee": false, "require_lead": false, "members_can_self_assign": true}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range full {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, bad := range []any{"everyone", "", "ALL", 1, true, nil} {
		r := b.admin.do("PUT", "/v1/policy", with(map[string]any{"members_see": bad}))
		var p struct{ Field string }
		_ = json.Unmarshal(r.body, &p)
		if r.status != 400 || p.Field != "members_see" {
			t.Errorf("members_see %#v: %d %s, want 400 naming members_see", bad, r.status, r.body)
		}
	}
	if got := b.admin.must(200, "PUT", "/v1/policy", with(map[string]any{"members_see": "assigned"})).json(t)["members_see"]; got != "assigned" {
		t.Fatalf("PUT answered members_see %v", got)
	}
	// Absent: unchanged, while another field changes.
	r := b.admin.must(200, "PUT", "/v1/policy", with(map[string]any{"require_lead": true})).json(t)
	if r["members_see"] != "assigned" || r["require_lead"] != true {
		t.Fatalf("PUT without members_see: %v", r)
	}
	if got := b.admin.must(200, "GET", "/v1/policy", nil).json(t)["members_see"]; got != "assigned" {
		t.Fatalf("GET after PUT: members_see %v", got)
	}
	// A member may not change it.
	m := b.createUser(t, "Mia Member", "member")
	if r := m.do("PUT", "/v1/policy", with(map[string]any{"members_see": "all"})); r.status != 403 {
		t.Fatalf("member PUT: %d", r.status)
	}
	if got := b.admin.must(200, "GET", "/v1/policy", nil).json(t)["members_see"]; got != "assigned" {
		t.Fatalf("after refusals: members_see %v", got)
	}
}

// TestMembersSeeAssignedCommandsOnAHiddenCustomer: under members_see
// "assigned", every command a member may send about a customer answers for
// one the member does not serve exactly as for an unknown ID (status and
// body, the ID aside), and changes nothing: assigning or unassigning
// oneself, setting the team, scheduling a follow-up, completing, snoozing
// or cancelling one of its follow-ups, and a bulk edit naming it.
func TestMembersSeeAssignedCommandsOnAHiddenCustomer(t *testing.T) {
	f := newVisibilityFixture(t)
	due := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	fu := f.b.admin.must(201, "POST", "/v1/customers/"+f.hidden+"/follow-ups", map[string]any{"due_at": due, "note": "Call"}).json(t)["id"].(string)
	before := f.b.countEvents(t)
	unknown, unknownFU := uuid.NewString(), uuid.NewString()
	same := func(what string, hid, unk response, hiddenID, unknownID string) {
		t.Helper()
		if hid.status != unk.status || string(bytes.ReplaceAll(hid.body, []byte(hiddenID), []byte(unknownID))) != string(unk.body) {
			t.Errorf("%s as a member: hidden %d %s, unknown %d %s", what, hid.status, hid.body, unk.status, unk.body)
		}
		if hid.status != 404 && !strings.Contains(what, "bulk") {
			t.Errorf("%s as a member on a hidden customer: %d, want 404", what, hid.status)
		}
		if leaks := f.leaks(bytes.ReplaceAll(hid.body, []byte(hiddenID), nil)); len(leaks) > 0 {
			t.Errorf("%s names the hidden customer: %v", what, leaks)
		}
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/customers/{id}/assignees", map[string]any{"user_id": f.ann.userID}},
		{"DELETE", "/v1/customers/{id}/assignees/" + f.ann.userID, nil},
		{"PUT", "/v1/customers/{id}/assignees", map[string]any{"user_ids": []string{f.ann.userID}}},
		{"POST", "/v1/customers/{id}/follow-ups", map[string]any{"due_at": due, "note": "Peek"}},
	} {
		hid := f.ann.do(c.method, strings.Replace(c.path, "{id}", f.hidden, 1), c.body)
		unk := f.ann.do(c.method, strings.Replace(c.path, "{id}", unknown, 1), c.body)
		same(c.method+" "+c.path, hid, unk, f.hidden, unknown)
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/follow-ups/{id}/complete", nil},
		{"POST", "/v1/follow-ups/{id}/snooze", map[string]any{"until": due}},
		{"DELETE", "/v1/follow-ups/{id}", nil},
	} {
		hid := f.ann.do(c.method, strings.Replace(c.path, "{id}", fu, 1), c.body)
		unk := f.ann.do(c.method, strings.Replace(c.path, "{id}", unknownFU, 1), c.body)
		same(c.method+" "+c.path, hid, unk, fu, unknownFU)
	}
	for _, dry := range []bool{true, false} {
		bulk := func(id string) response {
			return f.ann.do("POST", "/v1/assignments/bulk", map[string]any{"action": "add", "customer_ids": []string{id}, "user_ids": []string{f.ann.userID}, "dry_run": dry})
		}
		same(fmt.Sprintf("bulk add (dry run %v)", dry), bulk(f.hidden), bulk(unknown), f.hidden, unknown)
	}
	if n := f.b.countEvents(t); n != before {
		t.Fatalf("a member's commands on a hidden customer appended %d events", n-before)
	}
	// The member's own customer still takes its commands.
	f.ann.must(201, "POST", "/v1/customers/"+f.seen+"/follow-ups", map[string]any{"due_at": due, "note": "Mine"})
}

// Under assigned, a colleague's customer count counts only the customers
// the member sees (found by hostile testing: the users' list gave bob's
// whole count to ann, who sees none of his customers).
func TestMembersCountOnlyTheCustomersTheySee(t *testing.T) {
	f := newVisibilityFixture(t)
	count := func(c *client, user string) any {
		return c.must(200, "GET", "/v1/users/"+user, nil).json(t)["customers"]
	}
	if got := count(f.ann, f.bob.userID); got != float64(0) {
		t.Errorf("ann reads bob's count as %v, want 0", got)
	}
	if got := count(f.ann, f.ann.userID); got != float64(1) {
		t.Errorf("ann reads her own count as %v, want 1", got)
	}
	if got := count(f.b.admin, f.bob.userID); got != float64(1) {
		t.Errorf("an admin reads bob's count as %v, want 1", got)
	}
	f.setMembersSee(t, "all")
	if got := count(f.ann, f.bob.userID); got != float64(1) {
		t.Errorf("under all, ann reads bob's count as %v, want 1", got)
	}
}
