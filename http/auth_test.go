package http_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	ledgerhttp "github.com/assignment-ledger/ledger/http"
	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/projections"
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

// secondServer is another process's API on the same database: its own
// pool, event store, commands (and their caches) and server.
func secondServer(t *testing.T, b *testBundle) string {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), b.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := eventstore.New(pool)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cmd := commands.New(store, testdb.Keyring(t), log)
	runner, err := projections.New(pool, store, testdb.Keyring(t), log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ledgerhttp.NewServer(ledgerhttp.Deps{
		Pool: pool, Store: store, Commands: cmd, Projections: runner, Queries: projections.NewQueries(pool, testdb.Keyring(t)),
		Log: log, BaseURL: "https://ledger.example",
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// One authentication path: every request's key is checked by the
// middleware, on whichever process serves it. A user deactivated, or an
// admin demoted, through one server is refused by the other on the very
// next request, on the routes of the cached single-customer commands as
// on every other, and nothing is written.
func TestDeactivationAndDemotionThroughOneServerHoldOnTheOther(t *testing.T) {
	b := setup(t)
	b.setPolicy(t, nil, false, false, true)
	c1 := b.createCustomer(t, "Una")
	m := b.createUser(t, "Mo Member", "member")
	boss := b.createUser(t, "Bo Admin", "admin")
	other := b.createUser(t, "Ot Member", "member")
	second := secondServer(t, b)
	on2 := func(c *client) *client { return &client{t: t, base: second, key: c.key, userID: c.userID} }

	// Both processes serve both keys first (their caches, if any, warm).
	for _, base := range []string{b.base, second} {
		mm := &client{t: t, base: base, key: m.key, userID: m.userID}
		bb := &client{t: t, base: base, key: boss.key, userID: boss.userID}
		mm.must(200, "POST", "/v1/customers/"+c1+"/assignees", map[string]string{"user_id": "me"})
		mm.must(200, "DELETE", "/v1/customers/"+c1+"/assignees/me", nil)
		bb.must(200, "POST", "/v1/customers/"+c1+"/assignees", map[string]string{"user_id": other.userID})
		bb.must(200, "PUT", "/v1/customers/"+c1+"/lead", map[string]string{"user_id": other.userID})
		bb.must(200, "DELETE", "/v1/customers/"+c1+"/assignees/"+other.userID, nil)
		mm.must(200, "GET", "/v1/policy", nil)
	}

	// Through the second server: deactivate the member, demote the admin.
	admin2 := on2(b.admin)
	admin2.must(200, "POST", "/v1/users/"+m.userID+"/deactivate", map[string]any{})
	admin2.must(200, "PATCH", "/v1/users/"+boss.userID, map[string]any{"role": "member"})

	before := b.countEvents(t)
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/customers/" + c1 + "/assignees", map[string]string{"user_id": "me"}},
		{"DELETE", "/v1/customers/" + c1 + "/assignees/me", nil},
		{"POST", "/v1/customers/" + c1 + "/assignees", map[string]any{"user_id": 7}},
		{"GET", "/v1/policy", nil},
	} {
		if r := m.do(tc.method, tc.path, tc.body); r.status != 401 || r.code() != "unauthenticated" {
			t.Errorf("%s %s by a user deactivated on the other server: %d %s", tc.method, tc.path, r.status, r.body)
		}
	}
	b.admin.must(200, "POST", "/v1/customers/"+c1+"/assignees", map[string]string{"user_id": other.userID})
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"PUT", "/v1/customers/" + c1 + "/lead", map[string]string{"user_id": other.userID}},
		{"POST", "/v1/customers/" + c1 + "/assignees/" + other.userID + "/replace", map[string]string{"with_user_id": b.admin.userID}},
		{"POST", "/v1/customers/" + c1 + "/assignees", map[string]string{"user_id": other.userID}},
	} {
		if r := boss.do(tc.method, tc.path, tc.body); r.status != 403 {
			t.Errorf("%s %s by an admin demoted on the other server: %d %s", tc.method, tc.path, r.status, r.body)
		}
	}
	if n := b.countEvents(t); n != before+1 {
		t.Fatalf("%d events appended, want the admin's one assignment", n-before)
	}
}
