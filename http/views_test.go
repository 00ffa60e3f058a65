package http_test

import (
	"slices"
	"strings"
	"testing"
)

type viewList struct {
	Items []struct {
		ID      string         `json:"id"`
		Name    string         `json:"name"`
		Shared  bool           `json:"shared"`
		OwnerID string         `json:"owner_id"`
		Filter  map[string]any `json:"filter"`
	} `json:"items"`
}

func viewIDs(t *testing.T, c *client, pos string) []string {
	t.Helper()
	var l viewList
	c.must(200, "GET", "/v1/views", nil, hdr{"X-Min-Position": pos}).decode(t, &l)
	var out []string
	for _, v := range l.Items {
		out = append(out, v.ID)
	}
	return out
}

func customerIDsOf(t *testing.T, c *client, path string) []string {
	t.Helper()
	var p struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	c.must(200, "GET", path, nil).decode(t, &p)
	var out []string
	for _, it := range p.Items {
		out = append(out, it.ID)
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func TestSavedViewsPrivateAndShared(t *testing.T) {
	b := setup(t)
	alice := b.createUser(t, "Alice", "member")
	bob := b.createUser(t, "Bob", "member")
	auditor := b.createUser(t, "Audrey", "auditor")

	mine := alice.must(201, "POST", "/v1/views", map[string]any{"name": " Blocked ones ", "filter": map[string]any{"status": "blocked"}}).json(t)
	if mine["name"] != "Blocked ones" || mine["shared"] != false || mine["owner_id"] != alice.userID {
		t.Fatalf("created: %v", mine)
	}
	mineID := mine["id"].(string)
	// Only an admin shares; auditors change nothing; bad input is 400 naming the field.
	alice.must(403, "POST", "/v1/views", map[string]any{"name": "Team", "shared": true})
	auditor.must(403, "POST", "/v1/views", map[string]any{"name": "Audit"})
	for body, field := range map[string]string{
		`{"filter":{}}`:   "name",
		`{"name":"a\nb"}`: "name",
		`{"name":"` + strings.Repeat("é", 201) + `"}`: "name",
		`{"name":"x","filter":{"status":"gone"}}`:     "filter.status",
		`{"name":"x","filter":{"group":"nope"}}`:      "filter.group",
		`{"name":"x","filter":{"colour":"red"}}`:      "colour",
	} {
		if r := alice.do("POST", "/v1/views", body); r.status != 400 || !strings.Contains(string(r.body), field) {
			t.Errorf("%s: %d %s, want 400 naming %s", body, r.status, r.body, field)
		}
	}
	shared := b.admin.must(201, "POST", "/v1/views", map[string]any{"name": "Everyone active", "filter": map[string]any{"status": "active"}, "shared": true}).json(t)
	sharedID := shared["id"].(string)
	pos := b.lastPosition(t)

	if got := viewIDs(t, alice, pos); !slices.Equal(sorted(got...), sorted(mineID, sharedID)) {
		t.Fatalf("alice's views %v", got)
	}
	if got := viewIDs(t, bob, pos); !slices.Equal(got, []string{sharedID}) {
		t.Fatalf("bob's views %v", got)
	}
	if got := viewIDs(t, b.admin, pos); !slices.Equal(got, []string{sharedID}) {
		t.Fatalf("the admin sees another's private view: %v", got)
	}
	// Another's private view is unknown to everyone else, admins included.
	bob.must(404, "GET", "/v1/customers?view="+mineID, nil)
	b.admin.must(404, "GET", "/v1/customers?view="+mineID, nil)
	bob.must(404, "PATCH", "/v1/views/"+mineID, map[string]any{"name": "Mine now"})
	bob.must(404, "DELETE", "/v1/views/"+mineID, nil)
	alice.must(400, "GET", "/v1/customers?view=nope", nil)
	alice.must(404, "GET", "/v1/customers?view="+newUUID(t), nil)

	// The owner changes its own view but may not share it; a shared view is
	// an admin's to change.
	ch := alice.must(200, "PATCH", "/v1/views/"+mineID, map[string]any{"name": "Blocked", "filter": map[string]any{"status": "blocked", "q": "x"}}).json(t)
	if ch["name"] != "Blocked" || ch["filter"].(map[string]any)["q"] != "x" {
		t.Fatalf("changed: %v", ch)
	}
	alice.must(403, "PATCH", "/v1/views/"+mineID, map[string]any{"shared": true})
	alice.must(403, "PATCH", "/v1/views/"+sharedID, map[string]any{"name": "Mine"})
	alice.must(403, "DELETE", "/v1/views/"+sharedID, nil)
	b.admin.must(200, "PATCH", "/v1/views/"+sharedID, map[string]any{"name": "All active"})
	alice.must(204, "DELETE", "/v1/views/"+mineID, nil)
	alice.must(404, "GET", "/v1/customers?view="+mineID, nil)
	if got := viewIDs(t, alice, b.lastPosition(t)); !slices.Equal(got, []string{sharedID}) {
		t.Fatalf("after delete: %v", got)
	}
}

func TestSavedViewAsFilterAndBulkSelection(t *testing.T) {
	b := setup(t)
	alice := b.createUser(t, "Alice", "member")
	g := b.admin.must(201, "POST", "/v1/groups", map[string]any{"name": "Top Customers"}).json(t)["id"].(string)
	var top []string
	for _, n := range []string{"Ann", "Ben", "Cid"} {
		top = append(top, b.createCustomer(t, n))
	}
	other := b.createCustomer(t, "Dan")
	b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "add_to_group", "group_id": g, "customer_ids": top})
	b.admin.must(200, "POST", "/v1/customers/"+top[2]+"/block", nil)

	view := b.admin.must(201, "POST", "/v1/views", map[string]any{"name": "Top Customers", "filter": map[string]any{"group": g}, "shared": true}).json(t)["id"].(string)
	b.settle(t)

	// As the list's filter; other filters narrow it.
	if got := customerIDsOf(t, alice, "/v1/customers?view="+view); !slices.Equal(got, sorted(top...)) {
		t.Fatalf("view lists %v, want %v", got, sorted(top...))
	}
	if got := customerIDsOf(t, alice, "/v1/customers?view="+view+"&q=ben"); !slices.Equal(got, []string{top[1]}) {
		t.Fatalf("narrowed by q: %v", got)
	}
	if got := customerIDsOf(t, alice, "/v1/customers?view="+view+"&status=blocked"); !slices.Equal(got, []string{top[2]}) {
		t.Fatalf("narrowed by status: %v", got)
	}
	if got := customerIDsOf(t, alice, "/v1/customers?view="+view+"&q=dan"); len(got) != 0 {
		t.Fatalf("a customer outside the view: %v", got)
	}
	_ = other

	// As a bulk selection: select all of the segment, bulk assign.
	r := b.admin.must(200, "POST", "/v1/assignments/bulk", map[string]any{"action": "add", "view": view, "user_ids": []string{alice.userID}}).json(t)
	if r["position"] == nil {
		t.Fatalf("bulk edit: %v", r)
	}
	b.settle(t)
	if got := customerIDsOf(t, alice, "/v1/customers?assigned_user=me"); !slices.Equal(got, sorted(top...)) {
		t.Fatalf("assigned by view: %v", got)
	}
	// A view whose filter is by assigned user ("me" is whoever uses it),
	// narrowed by the request's group.
	mine := alice.must(201, "POST", "/v1/views", map[string]any{"name": "Mine", "filter": map[string]any{"assigned_user": "me"}}).json(t)["id"].(string)
	if got := customerIDsOf(t, alice, "/v1/customers?view="+mine+"&status=blocked"); !slices.Equal(got, []string{top[2]}) {
		t.Fatalf("my view narrowed: %v", got)
	}
	dry := b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "block", "view": view, "dry_run": true}).json(t)
	if len(dry["changed"].([]any)) != 2 || len(dry["unchanged"].([]any)) != 1 {
		t.Fatalf("bulk by view: %v", dry)
	}
	// One selection at a time; another's private view is unknown.
	b.admin.must(400, "POST", "/v1/customers/bulk", map[string]any{"action": "block", "view": view, "filter": map[string]any{}})
	b.admin.must(400, "POST", "/v1/customers/bulk", map[string]any{"action": "block", "view": view, "customer_ids": top})
	b.admin.must(404, "POST", "/v1/customers/bulk", map[string]any{"action": "block", "view": mine})
}

// A view filtering on a user or group the tenant does not have (a typo,
// another tenant's) is a 400 naming the field, as for assignment rules:
// it would list nothing, and nobody would be told.
func TestSavedViewFilterNamesTheTenantsOwnUsersAndGroups(t *testing.T) {
	b := setup(t)
	own := b.createUser(t, "Uma One", "member")
	var group struct {
		ID string `json:"id"`
	}
	b.admin.must(201, "POST", "/v1/groups", map[string]string{"name": "Gold"}).decode(t, &group)
	boot, err := b.cmd.Bootstrap(t.Context(), "Globex", "Gus Admin", "gus@globex.example")
	if err != nil {
		t.Fatal(err)
	}
	other := &client{t: t, base: b.base, key: boot.APIKey, userID: boot.UserID}
	var otherGroup struct {
		ID string `json:"id"`
	}
	other.must(201, "POST", "/v1/groups", map[string]string{"name": "Gold"}).decode(t, &otherGroup)
	unknown := "0190a8f0-0000-7000-8000-000000000000"

	n := b.countEvents(t)
	for _, c := range []struct {
		filter map[string]string
		field  string
	}{
		{map[string]string{"group": otherGroup.ID}, "filter.group"},
		{map[string]string{"group": unknown}, "filter.group"},
		{map[string]string{"assigned_user": boot.UserID}, "filter.assigned_user"},
		{map[string]string{"assigned_user": own.userID + "," + unknown}, "filter.assigned_user"},
	} {
		r := b.admin.do("POST", "/v1/views", map[string]any{"name": "V", "filter": c.filter})
		var p struct {
			Field string `json:"field"`
		}
		r.decode(t, &p)
		if r.status != 400 || p.Field != c.field {
			t.Errorf("filter %v: %d %s", c.filter, r.status, r.body)
		}
	}
	if b.countEvents(t) != n {
		t.Fatal("a refused view was written")
	}
	var v struct {
		ID string `json:"id"`
	}
	b.admin.must(201, "POST", "/v1/views", map[string]any{"name": "Mine", "filter": map[string]string{
		"group": group.ID, "assigned_user": "me," + own.userID}}).decode(t, &v)
	if r := b.admin.do("PATCH", "/v1/views/"+v.ID, map[string]any{"filter": map[string]string{"group": otherGroup.ID}}); r.status != 400 {
		t.Fatalf("changed to another tenant's group: %d %s", r.status, r.body)
	}
	b.admin.must(200, "PATCH", "/v1/views/"+v.ID, map[string]any{"filter": map[string]string{"assigned_user": "none"}})
}
