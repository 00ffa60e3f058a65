package http_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// TestRuleRotationUnderRacesAndReplay: 40 customers registered at once
// through two Commands instances (two `serve` processes) under one
// round_robin rule of 4 users: every turn is given exactly once (each user
// 10 customers, the recorded turns 1, 2, 3, 0, … in commit order), and a
// third, fresh process continues the rotation where it was, from the
// events alone.
func TestRuleRotationUnderRacesAndReplay(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var users []string
	for i := range 4 {
		users = append(users, b.createUser(t, fmt.Sprintf("R%d", i), "member").userID)
	}
	b.admin.must(201, "POST", "/v1/assignment-rules", map[string]any{"name": "All", "assign": map[string]any{"user_ids": users, "strategy": "round_robin"}})
	actor := domain.Actor{UserID: b.admin.userID, Name: "Ann Admin", Role: domain.RoleAdmin}
	procs := []*commands.Commands{b.cmd, commands.New(eventstore.New(b.pool), testdb.Keyring(t), nil)}
	const n = 40
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := procs[i%2].RegisterCustomer(ctx, commands.Meta{TenantID: b.tenant, Actor: actor},
				domain.Profile{FirstName: "R", Email: fmt.Sprintf("race%d@x.example", i)})
			if err != nil {
				t.Error(err)
				return
			}
			if len(res.Assignees) != 1 {
				t.Errorf("team %v", res.Assignees)
				return
			}
			mu.Lock()
			count[res.Assignees[0].UserID]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	for _, u := range users {
		if count[u] != n/len(users) {
			t.Fatalf("turns per user %v, want %d each", count, n/len(users))
		}
	}
	rows, err := b.pool.Query(ctx, `SELECT (data->>'next_turn')::int, data->>'user_id' FROM events WHERE type = 'AssignmentRuleApplied' ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for rows.Next() {
		var next int
		var user string
		if err := rows.Scan(&next, &user); err != nil {
			t.Fatal(err)
		}
		if next != (i+1)%4 || user != users[i%4] {
			t.Fatalf("turn %d: next %d user %s", i, next, user)
		}
		i++
	}
	rows.Close()
	if i != n {
		t.Fatalf("%d turns recorded", i)
	}
	// A fresh process reads the rotation from the events.
	third := commands.New(eventstore.New(b.pool), testdb.Keyring(t), nil)
	res, err := third.RegisterCustomer(ctx, commands.Meta{TenantID: b.tenant, Actor: actor}, domain.Profile{FirstName: "N", Email: "next@x.example"})
	if err != nil || len(res.Assignees) != 1 || res.Assignees[0].UserID != users[0] {
		t.Fatalf("the next turn: %+v %v", res.Assignees, err)
	}
}

// TestAutoAssign: POST /v1/customers/{id}/auto-assign gives an existing
// customer the rule's next user not already on its team; without a
// matching rule nothing changes; a member may not.
func TestAutoAssign(t *testing.T) {
	b := setup(t)
	u1, u2 := b.createUser(t, "A1", "member"), b.createUser(t, "A2", "member")
	c := b.createCustomer(t, "Auto")
	b.admin.must(200, "POST", "/v1/customers/"+c+"/assignees", map[string]string{"user_id": u1.userID})
	// No rule yet: unchanged.
	before := b.countEvents(t)
	if got := b.admin.must(200, "POST", "/v1/customers/"+c+"/auto-assign", nil).json(t); len(got["assignees"].([]any)) != 1 {
		t.Fatalf("no rule: %v", got)
	}
	if b.countEvents(t) != before {
		t.Fatal("auto-assign without a rule wrote events")
	}
	rule := b.admin.must(201, "POST", "/v1/assignment-rules", map[string]any{"name": "R", "match": map[string]any{"title_contains": ""},
		"assign": map[string]any{"user_ids": []string{u1.userID, u2.userID}, "strategy": "round_robin"}}).json(t)["id"].(string)
	got := b.admin.must(200, "POST", "/v1/customers/"+c+"/auto-assign", nil).json(t)
	as := got["assignees"].([]any)
	if len(as) != 2 || as[1].(map[string]any)["user_id"] != u2.userID {
		t.Fatalf("auto-assigned: %v", got)
	}
	if ids := b.ruleIDsOf(t); ids[len(ids)-1] != rule {
		t.Fatalf("rule ids %v", ids)
	}
	// Every user of the rule is on the team: the rule finds no one to
	// add, and that is no news (found by hostile testing: it appended a
	// turn and told every admin rule_found_no_one, whose customer is not
	// left unassigned).
	before = b.countEvents(t)
	if got := b.admin.must(200, "POST", "/v1/customers/"+c+"/auto-assign", nil).json(t); len(got["assignees"].([]any)) != 2 {
		t.Fatalf("auto-assign of a staffed customer: %v", got)
	}
	report := b.admin.must(200, "POST", "/v1/assignments/bulk", map[string]any{"action": "auto_assign", "customer_ids": []string{c}}).json(t)
	if unchanged := report["unchanged"].([]any); len(unchanged) != 1 || len(report["to_be_assigned"].([]any)) != 0 {
		t.Fatalf("bulk auto_assign of a staffed customer: %v", report)
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("auto-assigning a staffed customer appended %d events", n-before)
	}
	var notes struct{ Items []struct{ Type string } }
	b.admin.must(200, "GET", "/v1/users/me/notifications", nil).decode(t, &notes)
	for _, n := range notes.Items {
		if n.Type == "rule_found_no_one" {
			t.Fatalf("an admin was told rule_found_no_one about a staffed customer: %+v", notes.Items)
		}
	}
	if r := u1.do("POST", "/v1/customers/"+c+"/auto-assign", nil); r.status != 403 {
		t.Fatalf("member: %d", r.status)
	}
	b.admin.must(404, "POST", "/v1/customers/0193f7c2-0000-7000-8000-000000000001/auto-assign", nil)
}

// TestBulkAutoAssign: the assignments bulk call's auto_assign applies the
// rules to every selected customer; its dry run reports the picks and
// writes nothing (the real run then makes the same picks); a customer whose
// rule finds no one under require_assignee fails the whole call.
func TestBulkAutoAssign(t *testing.T) {
	b := setup(t)
	u1, u2 := b.createUser(t, "B1", "member"), b.createUser(t, "B2", "member")
	ids := []string{b.createCustomer(t, "Ba"), b.createCustomer(t, "Bb"), b.createCustomer(t, "Bc")}
	b.admin.must(201, "POST", "/v1/assignment-rules", map[string]any{"name": "R",
		"assign": map[string]any{"user_ids": []string{u1.userID, u2.userID}, "strategy": "round_robin"}})
	before := b.countEvents(t)
	dry := b.admin.must(200, "POST", "/v1/assignments/bulk", map[string]any{"action": "auto_assign", "customer_ids": ids, "dry_run": true}).json(t)
	if b.countEvents(t) != before {
		t.Fatal("a dry run wrote events")
	}
	real := b.admin.must(200, "POST", "/v1/assignments/bulk", map[string]any{"action": "auto_assign", "customer_ids": ids}).json(t)
	want := []string{u1.userID, u2.userID, u1.userID}
	for _, res := range []map[string]any{dry, real} {
		pairs := res["to_be_assigned"].([]any)
		if len(pairs) != 3 {
			t.Fatalf("report: %v", res)
		}
		for i, p := range pairs {
			if p.(map[string]any)["customer_id"] != ids[i] || p.(map[string]any)["user_id"] != want[i] {
				t.Fatalf("pair %d: %v", i, p)
			}
		}
	}
	// All away under require_assignee: refused whole.
	for _, u := range []*client{u1, u2} {
		u.must(200, "PATCH", "/v1/users/me", map[string]any{"away_until": "2999-01-01T00:00:00Z"})
	}
	b.setPolicy(t, nil, true, false, true)
	fresh := b.createCustomerWithTeam(t, b.admin.userID)
	before = b.countEvents(t)
	r := b.admin.do("POST", "/v1/assignments/bulk", map[string]any{"action": "auto_assign", "customer_ids": []string{fresh}})
	if r.status != 409 || r.code() != "bulk_edit_refused" {
		t.Fatalf("no one eligible: %d %s", r.status, r.body)
	}
	if b.countEvents(t) != before {
		t.Fatal("a refused bulk auto_assign wrote events")
	}
	if r := b.admin.do("POST", "/v1/assignments/bulk", map[string]any{"action": "auto_assign", "customer_ids": ids, "user_ids": []string{u1.userID}}); r.status != 400 {
		t.Fatalf("user_ids with auto_assign: %d", r.status)
	}
}

func (b *testBundle) createCustomerWithTeam(t *testing.T, userID string) string {
	t.Helper()
	return b.admin.must(201, "POST", "/v1/customers", map[string]any{"first_name": "T", "email": fmt.Sprintf("t%d@team.example", len(userID)+int(time.Now().UnixNano()%100000)), "team": []string{userID}}).json(t)["id"].(string)
}
