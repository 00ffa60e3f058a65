package commands_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

func TestBootstrap(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	var key string
	res, err := cmd.Bootstrap(ctx, "Beta", "Bea", "bea@beta.example")
	wantErr(t, err, "")
	key = res.APIKey
	if !strings.HasPrefix(key, "lk_") || len(key) != 46 {
		t.Fatalf("key %q", key)
	}
	var tenant, status, role string
	err = b.pool.QueryRow(ctx, `SELECT k.tenant_id::text, u.status, u.role FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE k.key_hash = $1`, commands.HashAPIKey(key)).Scan(&tenant, &status, &role)
	if err != nil || tenant != res.TenantID || status != "active" || role != "admin" {
		t.Fatalf("key lookup: %v %s %s %s", err, tenant, status, role)
	}
	var types []string
	rows, _ := b.pool.Query(ctx, `SELECT type FROM events WHERE tenant_id = $1 ORDER BY position`, res.TenantID)
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		types = append(types, s)
	}
	if strings.Join(types, ",") != "TenantCreated,UserCreated,ApiKeyIssued" {
		t.Fatalf("events %v", types)
	}
	var leaked int
	_ = b.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE data::text LIKE '%'||$1||'%' OR metadata::text LIKE '%'||$1||'%'`, key).Scan(&leaked)
	if leaked != 0 {
		t.Fatal("the raw key is in the event store")
	}
	pol, err := cmd.GetPolicy(ctx, res.TenantID)
	wantErr(t, err, "")
	if !pol.Equal(domain.DefaultPolicy()) {
		t.Fatalf("policy %+v", pol)
	}
	_, err = cmd.Bootstrap(ctx, "", "x", "x@x.example")
	wantErr(t, err, "validation")
}

func TestCreateUser(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	res, err := cmd.CreateUser(ctx, b.admin, "Bob", "Bob@Acme.example", domain.RoleMember)
	wantErr(t, err, "")
	if res.Email != "bob@acme.example" || res.Status != "active" || res.Role != "member" || res.Position == 0 {
		t.Fatalf("user %+v", res)
	}
	got, err := cmd.GetUser(ctx, b.tenantID, res.ID)
	wantErr(t, err, "")
	if got != res.UserView {
		t.Fatalf("GetUser %+v, created %+v", got, res.UserView)
	}
	_, err = cmd.CreateUser(ctx, b.admin, "Bob 2", "bob@acme.example", domain.RoleMember)
	wantErr(t, err, domain.CodeEmailTaken)
	_, err = cmd.CreateUser(ctx, b.admin, "Ada 2", "ada@acme.example", domain.RoleAdmin) // the bootstrap admin's
	wantErr(t, err, domain.CodeEmailTaken)
	_, err = cmd.CreateUser(ctx, b.admin, "X", "x@acme.example", "owner")
	wantErr(t, err, "validation")
	_, err = cmd.CreateUser(ctx, b.memberMeta(res.ID), "X", "x@acme.example", domain.RoleMember)
	wantErr(t, err, "forbidden")
	list, err := cmd.ListUsers(ctx, b.tenantID, commands.UsersFilter{}, nil, 500)
	wantErr(t, err, "")
	if len(list) != 2 {
		t.Fatalf("users %+v", list)
	}
}

func TestCreateUserSameEmailRace(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = cmd.CreateUser(ctx, b.admin, "Twin", "twin@acme.example", domain.RoleMember) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			wantErr(t, err, domain.CodeEmailTaken)
		}
	}
	var rows int
	_ = b.pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE email = 'twin@acme.example'`).Scan(&rows)
	if ok != 1 || rows != 1 {
		t.Fatalf("%d creations won, %d rows", ok, rows)
	}
}

func TestIssueAPIKey(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	me, other := b.user(t), b.user(t)

	res, err := cmd.IssueAPIKey(ctx, b.admin, me)
	wantErr(t, err, "")
	if !strings.HasPrefix(res.APIKey, "lk_") || res.KeyID == "" || res.Position == 0 {
		t.Fatalf("key %+v", res)
	}
	var owner string
	if err := b.pool.QueryRow(ctx, `SELECT user_id::text FROM api_keys WHERE key_hash = $1`, commands.HashAPIKey(res.APIKey)).Scan(&owner); err != nil || owner != me {
		t.Fatalf("stored key: %v %s", err, owner)
	}
	_, err = cmd.IssueAPIKey(ctx, b.memberMeta(me), me)
	wantErr(t, err, "")
	_, err = cmd.IssueAPIKey(ctx, b.memberMeta(me), other)
	wantErr(t, err, "forbidden")

	k := keyed(b.memberMeta(me), "key", "me")
	first, err := cmd.IssueAPIKey(ctx, k, me)
	wantErr(t, err, "")
	n := b.eventCount(t)
	again, err := cmd.IssueAPIKey(ctx, k, me)
	wantErr(t, err, "")
	if again.APIKey != "" || !again.Replayed || again.KeyID != first.KeyID || again.Position != first.Position || b.eventCount(t) != n {
		t.Fatalf("replay %+v first %+v", again, first)
	}

	_, err = cmd.DeactivateUser(ctx, b.admin, other, "")
	wantErr(t, err, "")
	_, err = cmd.IssueAPIKey(ctx, b.admin, other)
	wantErr(t, err, domain.CodeUserDeactivated)
}

func TestChangePolicy(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	want := domain.Policy{MaxAssignees: ptr(3), RequireAssignee: true, RequireLead: true, MembersCanSelfAssign: false}
	res, err := cmd.ChangePolicy(ctx, b.admin, want)
	wantErr(t, err, "")
	if !res.Policy.Equal(want) || res.Position == 0 {
		t.Fatalf("policy %+v", res)
	}
	n := b.eventCount(t)
	again, err := cmd.ChangePolicy(ctx, b.admin, want)
	wantErr(t, err, "")
	if b.eventCount(t) != n || again.Position != res.Position {
		t.Fatal("an unchanged policy appended")
	}
	got, err := cmd.GetPolicy(ctx, b.tenantID)
	wantErr(t, err, "")
	if !got.Equal(want) {
		t.Fatalf("GetPolicy %+v", got)
	}
	_, err = cmd.ChangePolicy(ctx, b.admin, domain.Policy{MaxAssignees: ptr(0)})
	wantErr(t, err, "validation")
	_, err = cmd.ChangePolicy(ctx, b.memberMeta(b.user(t)), domain.DefaultPolicy())
	wantErr(t, err, "forbidden")
}

func TestDeactivateUser(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	c1, c2, c3 := b.customer(t), b.customer(t), b.customer(t) // before require_assignee, which would want teams
	b.policy(t, domain.Policy{RequireLead: true, RequireAssignee: true, MembersCanSelfAssign: true})
	u, heir, other := b.user(t), b.user(t), b.user(t)
	b.assign(t, c1, u)        // u alone, lead
	b.assign(t, c2, other, u) // u member
	b.assign(t, c3, u, heir)  // u lead, heir already there
	_, err := cmd.DeactivateUser(ctx, b.admin, u, "")
	wantErr(t, err, domain.CodeCustomerMustKeepAnAssignee)
	if got, _ := cmd.GetUser(ctx, b.tenantID, u); got.Status != "active" {
		t.Fatal("a refused deactivation changed the user")
	}
	_, err = cmd.DeactivateUser(ctx, b.admin, u, u)
	wantErr(t, err, domain.CodeTransferToSelf)
	_, err = cmd.DeactivateUser(ctx, b.memberMeta(u), u, heir)
	wantErr(t, err, "forbidden")

	res, err := cmd.DeactivateUser(ctx, b.admin, u, heir)
	wantErr(t, err, "")
	if res.Status != "deactivated" || res.Position == 0 {
		t.Fatalf("deactivated %+v", res)
	}
	for _, tc := range []struct {
		c, lead string
		team    []string
	}{{c1, heir, []string{heir}}, {c2, other, []string{other, heir}}, {c3, heir, []string{heir}}} {
		v, err := cmd.GetCustomer(ctx, b.tenantID, tc.c)
		wantErr(t, err, "")
		ids, lead := teamOf(v)
		if lead != tc.lead || len(ids) != len(tc.team) {
			t.Fatalf("customer %s: team %v lead %s, want %v lead %s", tc.c, ids, lead, tc.team, tc.lead)
		}
	}
	// All in one transaction with one correlation ID.
	var corr int
	_ = b.pool.QueryRow(ctx, `SELECT count(DISTINCT metadata->>'correlation_id') FROM events WHERE position > $1 - 5 AND transaction_id =
		(SELECT transaction_id FROM events WHERE position = $1)`, res.Position).Scan(&corr)
	if corr != 1 {
		t.Fatalf("%d correlation ids", corr)
	}
	_, err = cmd.DeactivateUser(ctx, b.admin, u, "")
	wantErr(t, err, domain.CodeAlreadyDeactivated)
	_, err = cmd.DeactivateUser(ctx, b.admin, other, u)
	wantErr(t, err, domain.CodeUserDeactivated)

	// Without a transfer, a user not needed anywhere is unassigned everywhere.
	x := b.user(t)
	b.assign(t, c2, x)
	_, err = cmd.DeactivateUser(ctx, b.admin, x, "")
	wantErr(t, err, "")
	v, _ := cmd.GetCustomer(ctx, b.tenantID, c2)
	if ids, _ := teamOf(v); len(ids) != 2 {
		t.Fatalf("team %v", ids)
	}
}
