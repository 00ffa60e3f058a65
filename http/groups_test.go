package http_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Issue 14: groups (Calendesk's labels) and bulk customer actions.

type groupItem struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Customers int    `json:"customers"`
}

type listedCustomer struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Groups []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"groups"`
}

func (b *testBundle) listGroups(t *testing.T, pos string) []groupItem {
	t.Helper()
	var out struct{ Items []groupItem }
	b.admin.must(200, "GET", "/v1/groups", nil, hdr{"X-Min-Position": pos}).decode(t, &out)
	return out.Items
}

func (b *testBundle) listCustomers(t *testing.T, query, pos string) []listedCustomer {
	t.Helper()
	var out struct{ Items []listedCustomer }
	b.admin.must(200, "GET", "/v1/customers"+query, nil, hdr{"X-Min-Position": pos}).decode(t, &out)
	return out.Items
}

// Groups are created, renamed and deleted by admins with unique names;
// customers join and leave them through the bulk call, by IDs or by filter;
// the list shows each customer's groups and filters by group; a deleted
// group's customers leave it while its history stays.
func TestGroups(t *testing.T) {
	b := setup(t)
	member := b.createUser(t, "Mia Member", "member")
	c1, c2, c3 := b.createCustomer(t, "Ada"), b.createCustomer(t, "Bea"), b.createCustomer(t, "Cy")

	if r := member.do("POST", "/v1/groups", map[string]any{"name": "VIP"}); r.status != 403 {
		t.Fatalf("member creates a group: %d %s", r.status, r.body)
	}
	if r := b.admin.do("POST", "/v1/groups", map[string]any{"name": "  "}); r.status != 400 {
		t.Fatalf("blank name: %d %s", r.status, r.body)
	}
	if r := b.admin.do("POST", "/v1/groups", map[string]any{}); r.status != 400 {
		t.Fatalf("no name: %d %s", r.status, r.body)
	}
	vip := b.admin.must(201, "POST", "/v1/groups", map[string]any{"name": "VIP"}).json(t)
	if vip["name"] != "VIP" || vip["customers"] != float64(0) || vip["id"] == "" {
		t.Fatalf("created %v", vip)
	}
	vipID := vip["id"].(string)
	if r := b.admin.do("POST", "/v1/groups", map[string]any{"name": " vip "}); r.status != 409 || r.code() != "name_taken" {
		t.Fatalf("same name in another case: %d %s", r.status, r.body)
	}
	gold := b.admin.must(201, "POST", "/v1/groups", map[string]any{"name": "Gold"})
	goldID := gold.json(t)["id"].(string)
	if r := b.admin.do("PATCH", "/v1/groups/"+goldID, map[string]any{"name": "VIP"}); r.status != 409 || r.code() != "name_taken" {
		t.Fatalf("rename to a taken name: %d %s", r.status, r.body)
	}

	// Dry run first: the report, and nothing written.
	before := b.countEvents(t)
	var rep struct {
		Changed, Unchanged []string
		Errors             []map[string]string
		CustomerIDs        []string `json:"customer_ids"`
	}
	b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "add_to_group", "group_id": vipID,
		"customer_ids": []string{c1, c2}, "dry_run": true}).decode(t, &rep)
	if len(rep.Changed) != 2 || len(rep.Unchanged) != 0 || len(rep.Errors) != 0 || b.countEvents(t) != before {
		t.Fatalf("dry run %+v, %d events written", rep, b.countEvents(t)-before)
	}
	r := b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "add_to_group", "group_id": vipID, "customer_ids": []string{c1, c2}})
	if r.header.Get("X-Ledger-Position") == "" {
		t.Fatal("a bulk add answered no position")
	}
	b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "add_to_group", "group_id": goldID, "customer_ids": []string{c2}})
	r = b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "add_to_group", "group_id": vipID, "customer_ids": []string{c2, c3}})
	r.decode(t, &rep)
	if !slices.Equal(rep.Changed, []string{c3}) || !slices.Equal(rep.Unchanged, []string{c2}) {
		t.Fatalf("adding members again: %+v", rep)
	}
	pos := r.header.Get("X-Ledger-Position")

	items := b.listCustomers(t, "", pos)
	byID := map[string]listedCustomer{}
	for _, it := range items {
		byID[it.ID] = it
	}
	if g := byID[c2].Groups; len(g) != 2 || g[0].Name != "Gold" || g[1].Name != "VIP" || g[1].ID != vipID {
		t.Fatalf("c2's groups %+v", g)
	}
	if g := byID[c1].Groups; len(g) != 1 || g[0].ID != vipID {
		t.Fatalf("c1's groups %+v", g)
	}
	if got := b.listCustomers(t, "?group="+goldID, pos); len(got) != 1 || got[0].ID != c2 {
		t.Fatalf("group filter: %+v", got)
	}
	if r := b.admin.do("GET", "/v1/customers?group=nope", nil); r.status != 400 {
		t.Fatalf("malformed group filter: %d %s", r.status, r.body)
	}
	gs := b.listGroups(t, pos)
	if len(gs) != 2 || gs[0].Name != "Gold" || gs[0].Customers != 1 || gs[1].Name != "VIP" || gs[1].Customers != 3 {
		t.Fatalf("groups %+v", gs)
	}

	// Rename: every customer shows the new name.
	r = b.admin.must(200, "PATCH", "/v1/groups/"+vipID, map[string]any{"name": "Very Important"})
	if m := r.json(t); m["name"] != "Very Important" || m["customers"] != float64(3) {
		t.Fatalf("renamed %v", m)
	}
	pos = r.header.Get("X-Ledger-Position")
	if got := b.listCustomers(t, "?group="+vipID, pos); len(got) != 3 || got[0].Groups[len(got[0].Groups)-1].Name != "Very Important" {
		t.Fatalf("after rename: %+v", got)
	}

	// Remove by filter: the group's customers whose name matches "Ada".
	r = b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "remove_from_group", "group_id": vipID,
		"filter": map[string]any{"group": vipID, "q": "ada"}})
	r.decode(t, &rep)
	if !slices.Equal(rep.CustomerIDs, []string{c1}) || !slices.Equal(rep.Changed, []string{c1}) {
		t.Fatalf("remove by filter: %+v", rep)
	}
	pos = r.header.Get("X-Ledger-Position")
	if got := b.listCustomers(t, "?group="+vipID, pos); len(got) != 2 {
		t.Fatalf("after removal: %+v", got)
	}

	// Deletion: 204 with a position; customers leave it, the name is free,
	// the group is gone for commands, and its events stay.
	r = b.admin.must(204, "DELETE", "/v1/groups/"+vipID, nil)
	pos = r.header.Get("X-Ledger-Position")
	if pos == "" {
		t.Fatal("deletion answered no position")
	}
	if gs := b.listGroups(t, pos); len(gs) != 1 || gs[0].ID != goldID {
		t.Fatalf("groups after deletion %+v", gs)
	}
	for _, it := range b.listCustomers(t, "", pos) {
		for _, g := range it.Groups {
			if g.ID == vipID {
				t.Fatalf("customer %s still shows the deleted group", it.ID)
			}
		}
	}
	if got := b.listCustomers(t, "?group="+vipID, pos); len(got) != 0 {
		t.Fatalf("deleted group's filter: %+v", got)
	}
	for _, req := range []struct {
		method, path string
		body         any
	}{{"PATCH", "/v1/groups/" + vipID, map[string]any{"name": "X"}}, {"DELETE", "/v1/groups/" + vipID, nil}} {
		if r := b.admin.do(req.method, req.path, req.body); r.status != 404 {
			t.Fatalf("%s on a deleted group: %d %s", req.method, r.status, r.body)
		}
	}
	if r := b.admin.do("POST", "/v1/customers/bulk", map[string]any{"action": "add_to_group", "group_id": vipID, "customer_ids": []string{c1}}); r.status != 404 {
		t.Fatalf("adding to a deleted group: %d %s", r.status, r.body)
	}
	b.admin.must(201, "POST", "/v1/groups", map[string]any{"name": "VIP"})
	var types []string
	rows, err := b.pool.Query(context.Background(), `SELECT type FROM events WHERE stream_id = $1 ORDER BY stream_version`, vipID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		types = append(types, s)
	}
	rows.Close()
	if !slices.Equal(types, []string{"GroupCreated", "GroupRenamed", "GroupDeleted"}) {
		t.Fatalf("the deleted group's history: %v", types)
	}
	var audit struct{ Items []map[string]any }
	b.admin.must(200, "GET", "/v1/audit?type=GroupDeleted", nil, hdr{"X-Min-Position": pos}).decode(t, &audit)
	if len(audit.Items) != 1 {
		t.Fatalf("audit of the deletion: %+v", audit)
	}
}

// Bulk block/unblock: all or nothing, one correlation_id, a blocked
// customer unchanged rather than an error, unknown customers listed as
// errors (409, nothing written); delete is refused while erasure does not
// exist.
func TestCustomerBulkActions(t *testing.T) {
	b := setup(t)
	member := b.createUser(t, "Mia Member", "member")
	c1, c2, c3 := b.createCustomer(t, "Ada"), b.createCustomer(t, "Bea"), b.createCustomer(t, "Cy")
	b.admin.must(200, "POST", "/v1/customers/"+c1+"/block", nil)

	if r := member.do("POST", "/v1/customers/bulk", map[string]any{"action": "block", "customer_ids": []string{c2}}); r.status != 403 {
		t.Fatalf("member bulk: %d %s", r.status, r.body)
	}
	for _, body := range []map[string]any{
		{"action": "erase", "customer_ids": []string{c2}},
		{"action": "add_to_group", "customer_ids": []string{c2}},
		{"action": "block", "customer_ids": []string{c2}, "group_id": c3},
		{"action": "block"},
	} {
		if r := b.admin.do("POST", "/v1/customers/bulk", body); r.status != 400 {
			t.Fatalf("%v: %d %s", body, r.status, r.body)
		}
	}
	before := b.countEvents(t)
	unknown := "0190a000-0000-7000-8000-000000000000"
	r := b.admin.do("POST", "/v1/customers/bulk", map[string]any{"action": "block", "customer_ids": []string{c1, c2, unknown}})
	var p struct {
		Code   string
		Errors []map[string]string
	}
	r.decode(t, &p)
	if r.status != 409 || p.Code != "bulk_action_refused" || len(p.Errors) != 1 || p.Errors[0]["customer_id"] != unknown || p.Errors[0]["code"] != "not_found" {
		t.Fatalf("unknown customer: %d %s", r.status, r.body)
	}
	var rep struct {
		Changed, Unchanged []string
		Errors             []map[string]string
		Position           int64
	}
	b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "block", "customer_ids": []string{c1, c2, c3}, "dry_run": true}).decode(t, &rep)
	if !slices.Equal(rep.Changed, []string{c2, c3}) || !slices.Equal(rep.Unchanged, []string{c1}) || len(rep.Errors) != 0 || rep.Position != 0 {
		t.Fatalf("dry run: %+v", rep)
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("refused and dry-run calls appended %d events", n-before)
	}
	r = b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "block", "customer_ids": []string{c1, c2, c3}})
	r.decode(t, &rep)
	if !slices.Equal(rep.Changed, []string{c2, c3}) || rep.Position == 0 || r.header.Get("X-Ledger-Position") == "" {
		t.Fatalf("block: %+v", rep)
	}
	var corr []string
	rows, err := b.pool.Query(context.Background(), `SELECT DISTINCT metadata->>'correlation_id' FROM events WHERE type = 'CustomerBlocked' AND position > $1`, before)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		corr = append(corr, s)
	}
	rows.Close()
	if len(corr) != 1 {
		t.Fatalf("correlation ids of one bulk block: %v", corr)
	}
	if items := b.listCustomers(t, "?status=blocked", r.header.Get("X-Ledger-Position")); len(items) != 3 {
		t.Fatalf("blocked customers: %+v", items)
	}
	// Unblock by filter.
	r = b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "unblock", "filter": map[string]any{"status": "blocked", "q": "bea"}})
	r.decode(t, &rep)
	if !slices.Equal(rep.Changed, []string{c2}) {
		t.Fatalf("unblock by filter: %+v", rep)
	}
	// Delete (erasure): a dry run writes nothing, then all or nothing; an
	// erased customer is unchanged by delete and an error for the others.
	before = b.countEvents(t)
	b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "delete", "customer_ids": []string{c1, c2}, "dry_run": true}).decode(t, &rep)
	if !slices.Equal(rep.Changed, []string{c1, c2}) || rep.Position != 0 || b.countEvents(t) != before {
		t.Fatalf("delete dry run: %+v", rep)
	}
	r = b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "delete", "customer_ids": []string{c1, c2}})
	r.decode(t, &rep)
	if !slices.Equal(rep.Changed, []string{c1, c2}) || rep.Position == 0 {
		t.Fatalf("delete: %+v", rep)
	}
	deleted := r.header.Get("X-Ledger-Position")
	if n := b.countEvents(t); n != before+2 {
		t.Fatalf("delete appended %d events, want 2", n-before)
	}
	b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "delete", "customer_ids": []string{c1}}).decode(t, &rep)
	if !slices.Equal(rep.Unchanged, []string{c1}) || len(rep.Changed) != 0 {
		t.Fatalf("delete again: %+v", rep)
	}
	if r := b.admin.do("POST", "/v1/customers/bulk", map[string]any{"action": "block", "customer_ids": []string{c1, c3}}); r.status != 409 || !strings.Contains(string(r.body), `"code":"erased"`) {
		t.Fatalf("block an erased customer: %d %s", r.status, r.body)
	}
	if items := b.listCustomers(t, "", deleted); len(items) != 1 {
		t.Fatalf("customers after deleting two of three: %+v", items)
	}
	b.admin.must(410, "GET", "/v1/customers/"+c1, nil)
}

// Lists of groups, views and rules are paged like every list (the
// contract's convention; found by hostile testing: 60 groups came in one
// answer, limit ignored).
func TestGroupsViewsAndRulesArePaged(t *testing.T) {
	b := setup(t)
	for _, name := range []string{"Alpha", "Beta", "Gamma"} {
		b.admin.must(201, "POST", "/v1/groups", map[string]any{"name": name})
		b.admin.must(201, "POST", "/v1/views", map[string]any{"name": name})
		b.admin.must(201, "POST", "/v1/assignment-rules", map[string]any{"name": name,
			"assign": map[string]any{"user_ids": []string{b.admin.userID}, "strategy": "round_robin"}})
	}
	b.settle(t) // views and groups are read models
	for _, path := range []string{"/v1/groups", "/v1/views", "/v1/assignment-rules"} {
		var names []string
		next := path + "?limit=2"
		for pages := 0; next != ""; pages++ {
			if pages > 2 {
				t.Fatalf("%s: more pages than items", path)
			}
			var pg struct {
				Items      []struct{ Name string }
				NextCursor string `json:"next_cursor"`
			}
			b.admin.must(200, "GET", next, nil).decode(t, &pg)
			if len(pg.Items) > 2 {
				t.Fatalf("%s: a page of %d with limit 2", path, len(pg.Items))
			}
			for _, it := range pg.Items {
				names = append(names, it.Name)
			}
			next = ""
			if pg.NextCursor != "" {
				next = path + "?limit=2&cursor=" + pg.NextCursor
			}
		}
		if fmt.Sprint(names) != "[Alpha Beta Gamma]" {
			t.Fatalf("%s paged: %v", path, names)
		}
		b.admin.must(400, "GET", path+"?limit=0", nil)
		b.admin.must(400, "GET", path+"?cursor=nope", nil)
	}
}
