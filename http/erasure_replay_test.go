package http_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/internal/smtptest"
)

// TestRetryAfterErasureRunsNothing is issue 25's first item: a retry of an
// invitation, a registration or a message with its first Idempotency-Key,
// after the customer it created or messaged was erased, answered 201 with a
// new customer holding all the erased personal data (and e-mailed the
// erased person again), because erasure deleted the idempotency records and
// freed their keys. Now the key stays used and the retry answers 409
// replay_unavailable, runs nothing and sends nothing.
func TestRetryAfterErasureRunsNothing(t *testing.T) {
	ctx := context.Background()
	srv := smtptest.Start(t)
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	bob := b.createUser(t, "Bob Baker", "member")

	invite := map[string]any{"first_name": "Ireneretry", "last_name": "Invitee", "email": "irene.retry@shred.example",
		"team": []string{bob.userID}, "send_email": true}
	register := map[string]any{"first_name": "Rupertretry", "last_name": "Registered", "email": "rupert.retry@shred.example"}
	inv := b.admin.must(201, "POST", "/v1/clients/invitations", invite, hdr{"Idempotency-Key": "inv-A"}).json(t)
	invited := inv["customer"].(map[string]any)["id"].(string)
	srv.Wait(t, 1, 15*time.Second)
	registered := b.admin.must(201, "POST", "/v1/customers", register, hdr{"Idempotency-Key": "reg-A"}).json(t)["id"].(string)
	message := map[string]any{"customer_ids": []string{registered}, "subject": "Hello", "body": "Opening hours"}
	b.admin.must(202, "POST", "/v1/customers/messages", message, hdr{"Idempotency-Key": "msg-A"})
	srv.Wait(t, 2, 15*time.Second)
	// Before the erasure, each retry replays (the invitation's answer
	// carried a secret, so it is the v2 replay_unavailable).
	if r := b.admin.do("POST", "/v1/customers", register, hdr{"Idempotency-Key": "reg-A"}); r.status != 201 || r.json(t)["id"] != registered {
		t.Fatalf("retry before erasure: %d %s", r.status, r.body)
	}

	// A keyed command that changed nothing still answered the customer.
	noop := map[string]any{"first_name": "Rupertretry"}
	b.admin.must(200, "PATCH", "/v1/customers/"+registered, noop, hdr{"Idempotency-Key": "noop-A"})

	b.admin.must(204, "DELETE", "/v1/customers/"+invited, nil)
	b.admin.must(204, "DELETE", "/v1/customers/"+registered, nil)
	events := b.countEvents(t)

	for _, c := range []struct {
		path, key string
		body      map[string]any
	}{
		{"/v1/clients/invitations", "inv-A", invite},
		{"/v1/customers", "reg-A", register},
		{"/v1/customers/messages", "msg-A", message},
	} {
		if r := b.admin.do("POST", c.path, c.body, hdr{"Idempotency-Key": c.key}); r.status != 409 || r.code() != "replay_unavailable" {
			t.Fatalf("retry of %s after erasure: %d %s", c.path, r.status, r.body)
		}
		// The record keeps nothing derived from the body, so another body
		// under the key cannot be told from a retry: it is refused alike.
		other := map[string]any{"first_name": "Other", "email": "other." + c.key + "@client.example"}
		if c.key == "msg-A" {
			other = map[string]any{"customer_ids": []string{registered}, "subject": "Another", "body": "Another text"}
		}
		if r := b.admin.do("POST", c.path, other, hdr{"Idempotency-Key": c.key}); r.status != 409 || r.code() != "replay_unavailable" {
			t.Fatalf("another body under %s after erasure: %d %s", c.key, r.status, r.body)
		}
	}
	if r := b.admin.do("PATCH", "/v1/customers/"+registered, noop, hdr{"Idempotency-Key": "noop-A"}); r.status != 409 || r.code() != "replay_unavailable" {
		t.Fatalf("retry of a no-op update after erasure: %d %s", r.status, r.body)
	}
	if n := b.countEvents(t); n != events {
		t.Fatalf("the refused retries appended %d events", n-events)
	}
	var customers, queued int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM streams WHERE stream_type = 'customer'`).Scan(&customers); err != nil {
		t.Fatal(err)
	}
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	if customers != 2 || queued != 0 {
		t.Fatalf("after the retries: %d customer streams (want the 2 erased), %d outbox rows", customers, queued)
	}
	// The records stay, scrubbed: no answer, no request hash.
	var kept int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys
		WHERE key IN ('inv-A', 'reg-A', 'msg-A', 'noop-A') AND response IS NULL AND request_hash = '\x'::bytea`).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept != 4 {
		t.Fatalf("%d of the 4 idempotency records kept scrubbed", kept)
	}

	// No e-mail went to the erased people: a later invitation is delivered
	// after anything queued before it, and the erased addresses got one
	// each, the first.
	b.admin.must(201, "POST", "/v1/clients/invitations", map[string]any{"first_name": "Sentinel", "email": "sentinel@client.example",
		"team": []string{bob.userID}, "send_email": true})
	msgs := srv.Wait(t, 3, 15*time.Second)
	var to []string
	for _, m := range msgs {
		to = append(to, strings.Join(m.To, ","))
	}
	slices.Sort(to)
	if !slices.Equal(to, []string{"irene.retry@shred.example", "rupert.retry@shred.example", "sentinel@client.example"}) {
		t.Fatalf("e-mails went to %v", to)
	}
}

// TestRetryOfABulkAnswerNamingAnErasedUnchangedCustomer: a bulk answer
// lists every selected customer, those it left unchanged too; a keyed retry
// after the erasure of one it left unchanged answers 409
// replay_unavailable, as for one it changed (found by hostile testing: the
// record named only the customers written).
func TestRetryOfABulkAnswerNamingAnErasedUnchangedCustomer(t *testing.T) {
	b := setup(t)
	bob := b.createUser(t, "Bob Baker", "member")
	cara := b.createUser(t, "Cara Cole", "member")
	served, other, blocked, staffed := b.createCustomer(t, "Served"), b.createCustomer(t, "Other"), b.createCustomer(t, "Blocked"), b.createCustomer(t, "Staffed")
	b.admin.must(200, "POST", "/v1/customers/"+served+"/assignees", map[string]any{"user_id": bob.userID})
	b.admin.must(200, "POST", "/v1/customers/"+blocked+"/block", nil)
	b.admin.must(200, "POST", "/v1/customers/"+staffed+"/assignees", map[string]any{"user_id": cara.userID})
	b.admin.must(201, "POST", "/v1/assignment-rules", map[string]any{"name": "Cara", "match": map[string]any{},
		"assign": map[string]any{"user_ids": []string{cara.userID}, "strategy": "round_robin"}, "order": 1})

	calls := []struct {
		path string
		body map[string]any
	}{
		// served already has bob: unchanged.
		{"/v1/assignments/bulk", map[string]any{"action": "add", "customer_ids": []string{served, other}, "user_ids": []string{bob.userID}}},
		// blocked is blocked already: unchanged.
		{"/v1/customers/bulk", map[string]any{"action": "block", "customer_ids": []string{blocked, other}}},
		// staffed already has the rule's only user: unchanged.
		{"/v1/assignments/bulk", map[string]any{"action": "auto_assign", "customer_ids": []string{staffed}}},
	}
	for i, c := range calls {
		key := "bulk-" + string(rune('A'+i))
		if r := b.admin.do("POST", c.path, c.body, hdr{"Idempotency-Key": key}); r.status != 200 {
			t.Fatalf("%s %v: %d %s", c.path, c.body["action"], r.status, r.body)
		}
		if r := b.admin.do("POST", c.path, c.body, hdr{"Idempotency-Key": key}); r.status != 200 {
			t.Fatalf("retry of %s %v before erasure: %d %s", c.path, c.body["action"], r.status, r.body)
		}
	}
	for _, id := range []string{served, blocked, staffed} {
		b.admin.must(204, "DELETE", "/v1/customers/"+id, nil)
	}
	events := b.countEvents(t)
	for i, c := range calls {
		key := "bulk-" + string(rune('A'+i))
		if r := b.admin.do("POST", c.path, c.body, hdr{"Idempotency-Key": key}); r.status != 409 || r.code() != "replay_unavailable" {
			t.Errorf("retry of %s %v after erasing a customer it left unchanged: %d %s", c.path, c.body["action"], r.status, r.body)
		}
	}
	if n := b.countEvents(t); n != events {
		t.Fatalf("the refused retries appended %d events", n-events)
	}
}
