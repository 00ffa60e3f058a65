package http_test

import (
	"context"
	"testing"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// The single-customer commands admit a key the process has seen without a
// lookup of its own and check it with their append. A user deactivated
// behind this process's back (another process, or straight through the
// commands) must still get 401 from every one of them, whatever else is
// wrong with the request, and nothing may be written.
func TestDeactivatedCallerIsRefusedByCommandsOfAProcessThatKnewTheKey(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.setPolicy(t, nil, false, false, true)
	c1, c2 := b.createCustomer(t, "Una"), b.createCustomer(t, "Dos")
	m := b.createUser(t, "Mo Member", "member")
	boss := b.createUser(t, "Bo Admin", "admin")
	other := b.createUser(t, "Ot Member", "member")

	// Each key is used once on these routes, so the process knows it.
	m.must(200, "POST", "/v1/customers/"+c1+"/assignees", map[string]string{"user_id": "me"})
	m.must(200, "DELETE", "/v1/customers/"+c1+"/assignees/me", nil)
	m.must(200, "POST", "/v1/customers/"+c1+"/assignees", map[string]string{"user_id": "me"})
	boss.must(200, "POST", "/v1/customers/"+c2+"/assignees", map[string]string{"user_id": other.userID})
	boss.must(200, "PUT", "/v1/customers/"+c2+"/lead", map[string]string{"user_id": other.userID})

	admin := commands.Meta{TenantID: b.tenant, Actor: domain.Actor{UserID: b.admin.userID, Name: "Ann Admin", Role: domain.RoleAdmin}}
	for _, id := range []string{m.userID, boss.userID} {
		if _, err := b.cmd.DeactivateUser(ctx, admin, id, ""); err != nil {
			t.Fatalf("deactivate %s: %v", id, err)
		}
	}
	before := b.countEvents(t)
	for _, tc := range []struct {
		c            *client
		method, path string
		body         any
	}{
		{m, "POST", "/v1/customers/" + c1 + "/assignees", map[string]string{"user_id": "me"}},
		{m, "POST", "/v1/customers/" + c2 + "/assignees", map[string]string{"user_id": "me"}},
		{m, "DELETE", "/v1/customers/" + c1 + "/assignees/me", nil},
		{m, "POST", "/v1/customers/" + c1 + "/assignees", map[string]any{"user_id": 7}},
		{m, "POST", "/v1/customers/not-a-uuid/assignees", map[string]string{"user_id": "me"}},
		{m, "PUT", "/v1/customers/" + c2 + "/lead", map[string]string{"user_id": other.userID}},
		{boss, "POST", "/v1/customers/" + c2 + "/assignees", map[string]string{"user_id": b.admin.userID}},
		{boss, "PUT", "/v1/customers/" + c2 + "/lead", map[string]string{"user_id": other.userID}},
		{boss, "POST", "/v1/customers/" + c2 + "/assignees/" + other.userID + "/replace", map[string]string{"with_user_id": b.admin.userID}},
	} {
		r := tc.c.do(tc.method, tc.path, tc.body)
		if r.status != 401 || r.code() != "unauthenticated" {
			t.Errorf("%s %s by a deactivated user: %d %s", tc.method, tc.path, r.status, r.body)
		}
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("%d events appended by deactivated users", n-before)
	}
	// Live users are unaffected.
	b.admin.must(200, "POST", "/v1/customers/"+c2+"/assignees", map[string]string{"user_id": b.admin.userID})
	other.must(200, "DELETE", "/v1/customers/"+c2+"/assignees/me", nil)
}
