package http_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// setCapacity sets max_customers_per_user alone (PUT needs the four
// original fields; the v3 ones are optional).
func (b *testBundle) setCapacity(t *testing.T, n any) {
	t.Helper()
	b.admin.must(200, "PUT", "/v1/policy", map[string]any{"max_assignees": nil, "require_assignee": false,
		"require_lead": false, "members_can_self_assign": true, "max_customers_per_user": n})
}

// TestPolicyMaxCustomersPerUser: the field is optional in PUT (absent
// keeps it), always shown by GET, validated, and recorded in PolicyChanged.
func TestPolicyMaxCustomersPerUser(t *testing.T) {
	b := setup(t)
	if p := b.admin.must(200, "GET", "/v1/policy", nil).json(t); p["max_customers_per_user"] != nil {
		t.Fatalf("default: %v", p)
	}
	if _, shown := b.admin.must(200, "GET", "/v1/policy", nil).json(t)["max_customers_per_user"]; !shown {
		t.Fatal("GET leaves max_customers_per_user out")
	}
	b.setCapacity(t, 2)
	// Absent: unchanged.
	b.setPolicy(t, 3, false, false, true)
	p := b.admin.must(200, "GET", "/v1/policy", nil).json(t)
	if p["max_customers_per_user"] != float64(2) || p["max_assignees"] != float64(3) {
		t.Fatalf("after a PUT without it: %v", p)
	}
	for _, bad := range []any{0, -1, "two", 1.5, 2_000_000} {
		r := b.admin.do("PUT", "/v1/policy", map[string]any{"max_assignees": nil, "require_assignee": false,
			"require_lead": false, "members_can_self_assign": true, "max_customers_per_user": bad})
		if r.status != 400 {
			t.Fatalf("max_customers_per_user %v: %d %s", bad, r.status, r.body)
		}
	}
	b.setCapacity(t, nil)
	if p := b.admin.must(200, "GET", "/v1/policy", nil).json(t); p["max_customers_per_user"] != nil {
		t.Fatalf("null: %v", p)
	}
}

// TestUserAtCapacityInEveryAssignmentCommand: under max_customers_per_user
// every command that gives a user a customer refuses past the cap with 409
// user_at_capacity (bulk calls and transfers as a failing pair, an import
// as the row's error) and writes nothing.
func TestUserAtCapacityInEveryAssignmentCommand(t *testing.T) {
	b := setup(t, setupOpts{smtpURL: "smtp://127.0.0.1:1"})
	full := b.createUser(t, "Fay Full", "member")
	other := b.createUser(t, "Oli Other", "member")
	c1, c2, c3 := b.createCustomer(t, "Cara"), b.createCustomer(t, "Cleo"), b.createCustomer(t, "Cruz")
	b.admin.must(200, "POST", "/v1/customers/"+c1+"/assignees", map[string]string{"user_id": full.userID})
	b.admin.must(200, "POST", "/v1/customers/"+c3+"/assignees", map[string]string{"user_id": other.userID})
	b.setCapacity(t, 1)
	before := b.countEvents(t)

	refused := func(r response, what string) {
		t.Helper()
		if r.status != 409 || r.code() != domain.CodeUserAtCapacity {
			t.Fatalf("%s: %d %s", what, r.status, r.body)
		}
	}
	refused(b.admin.do("POST", "/v1/customers/"+c2+"/assignees", map[string]string{"user_id": full.userID}), "assign")
	refused(full.do("POST", "/v1/customers/"+c2+"/assignees", map[string]string{"user_id": "me"}), "self-assign")
	refused(b.admin.do("PUT", "/v1/customers/"+c2+"/assignees", map[string]any{"user_ids": []string{full.userID}}), "set team")
	refused(b.admin.do("POST", "/v1/customers/"+c3+"/assignees/"+other.userID+"/replace", map[string]string{"with_user_id": full.userID}), "replace")
	r := b.admin.do("POST", "/v1/assignments/bulk", map[string]any{"action": "add", "customer_ids": []string{c2, c3}, "user_ids": []string{full.userID}})
	if r.status != 409 || !strings.Contains(string(r.body), domain.CodeUserAtCapacity) {
		t.Fatalf("bulk add: %d %s", r.status, r.body)
	}
	r = b.admin.do("POST", "/v1/users/"+other.userID+"/transfer", map[string]any{"to": full.userID})
	if r.status != 409 || !strings.Contains(string(r.body), domain.CodeUserAtCapacity) {
		t.Fatalf("transfer: %d %s", r.status, r.body)
	}
	refused(b.admin.do("POST", "/v1/users/"+other.userID+"/deactivate", map[string]any{"transfer_to": full.userID}), "deactivate with transfer_to")
	refused(b.admin.do("POST", "/v1/customers", map[string]any{"first_name": "New", "email": "new@client.example", "team": []string{full.userID}}), "register with team")
	refused(b.admin.do("POST", "/v1/clients/invitations", map[string]any{"first_name": "Inv", "email": "inv@client.example", "team": []string{full.userID}}), "invite with team")
	fullEmail := b.admin.must(200, "GET", "/v1/users/"+full.userID, nil).json(t)["email"].(string)
	imp := b.admin.csv("POST", "/v1/clients/import", "First Name,Last Name,Email,Phone Number,Team\nIda,Imp,ida@client.example,,"+fullEmail+"\n")
	if imp.status != 422 || !strings.Contains(string(imp.body), domain.CodeUserAtCapacity) {
		t.Fatalf("import: %d %s", imp.status, imp.body)
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("refusals wrote %d events", n-before)
	}
	// The bulk dry run reports the pair.
	dry := b.admin.must(200, "POST", "/v1/assignments/bulk", map[string]any{"action": "add", "customer_ids": []string{c2}, "user_ids": []string{full.userID}, "dry_run": true}).json(t)
	if errs := dry["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["code"] != domain.CodeUserAtCapacity {
		t.Fatalf("dry run: %v", dry)
	}
	// So do the deactivation's, as the real one refuses (found by hostile
	// testing: it showed no error).
	dry = b.admin.must(200, "POST", "/v1/users/"+other.userID+"/deactivate", map[string]any{"transfer_to": full.userID, "dry_run": true}).json(t)
	if errs := dry["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["code"] != domain.CodeUserAtCapacity ||
		errs[0].(map[string]any)["customer_id"] != c3 || errs[0].(map[string]any)["user_id"] != full.userID {
		t.Fatalf("deactivation dry run: %v", dry)
	}

	// Making her lead gives her nothing; a set that hands her one customer
	// over frees her place for another.
	b.admin.must(200, "PUT", "/v1/customers/"+c1+"/lead", map[string]string{"user_id": full.userID})
	b.admin.must(200, "DELETE", "/v1/customers/"+c3+"/assignees/"+other.userID, nil)
	b.admin.must(200, "POST", "/v1/assignments/bulk", map[string]any{"action": "set", "customer_ids": []string{c1}, "user_ids": []string{other.userID}})
	b.admin.must(200, "POST", "/v1/customers/"+c2+"/assignees", map[string]string{"user_id": full.userID})
	// Raising the cap lets her take another.
	b.setCapacity(t, 2)
	b.admin.must(200, "POST", "/v1/customers/"+c3+"/assignees", map[string]string{"user_id": full.userID})
}

// TestUserAtCapacityUnderRaces: a user one customer short of the cap is
// assigned 64 different customers at once, half through the API and half
// through another process's Commands over the same database: exactly one
// assignment wins, the others answer user_at_capacity.
func TestUserAtCapacityUnderRaces(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Rae Racer", "member")
	first := b.createCustomer(t, "First")
	b.admin.must(200, "POST", "/v1/customers/"+first+"/assignees", map[string]string{"user_id": u.userID})
	b.setCapacity(t, 2)
	const n = 64
	ids := make([]string, n)
	for i := range ids {
		ids[i] = b.createCustomer(t, fmt.Sprintf("Race%d", i))
	}
	other := commands.New(eventstore.New(b.pool), testdb.Keyring(t), nil)
	actor := domain.Actor{UserID: b.admin.userID, Name: "Ann Admin", Role: domain.RoleAdmin}
	var won, atCap atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, id := range ids {
		wg.Go(func() {
			<-start
			var status int
			var code string
			if i%2 == 0 {
				r := b.admin.do("POST", "/v1/customers/"+id+"/assignees", map[string]string{"user_id": u.userID})
				status, code = r.status, r.code()
			} else {
				_, err := other.AssignUser(context.Background(), commands.Meta{TenantID: b.tenant, Actor: actor}, id, u.userID)
				switch {
				case err == nil:
					status = 200
				case domain.IsRule(err, domain.CodeUserAtCapacity):
					status, code = 409, domain.CodeUserAtCapacity
				default:
					t.Errorf("assign %s: %v", id, err)
				}
			}
			switch {
			case status == 200:
				won.Add(1)
			case status == 409 && code == domain.CodeUserAtCapacity:
				atCap.Add(1)
			default:
				t.Errorf("assign %s: %d %s", id, status, code)
			}
		})
	}
	close(start)
	wg.Wait()
	if won.Load() != 1 || atCap.Load() != n-1 {
		t.Fatalf("%d won, %d at capacity; want 1 and %d", won.Load(), atCap.Load(), n-1)
	}
	var onTeams int
	if err := b.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM events WHERE type = 'UserAssigned' AND data->>'user_id' = $1`, u.userID).Scan(&onTeams); err != nil {
		t.Fatal(err)
	}
	if onTeams != 2 {
		t.Fatalf("the user was assigned %d times in all, want 2", onTeams)
	}
}
