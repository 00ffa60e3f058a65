package http_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/internal/smtptest"
)

// TestOutboxAndIdempotencyFilesHoldNoPlaintext is issue 25 item 9: after an
// erasure, DELETE, VACUUM and CHECKPOINT, the data files of outbox and
// idempotency_keys still held the erased name and e-mail (the dead row
// versions). Their personal data is sealed with the customer's data key
// from the start, so neither file holds it in clear at any time: not while
// the customer lives (live and dead versions), not after its erasure. The
// files are read as PostgreSQL wrote them (pg_read_binary_file after a
// CHECKPOINT), TOAST included; customer_list, whose display columns are
// clear by design (docs/ARCHITECTURE.md, Erasure), shows the method finds
// what is there.
func TestOutboxAndIdempotencyFilesHoldNoPlaintext(t *testing.T) {
	srv := smtptest.Start(t)
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	bob := b.createUser(t, "Bob Baker", "member")
	zoe := b.createUser(t, "Zoë Zed", "member")
	secrets := [][]byte{[]byte("Heapfilena"), []byte("Plaintextova"), []byte("heap.file@shred.example"),
		[]byte("Registeredheap"), []byte("registered.heap@shred.example"), []byte("Chief Heap Officer")}

	// Every way personal data reaches the two tables: an invitation's
	// e-mail and stored answer, a keyed update, a keyed assignment, a keyed
	// message and its e-mail, a keyed registration.
	r := b.admin.must(201, "POST", "/v1/clients/invitations", map[string]any{"first_name": "Heapfilena", "last_name": "Plaintextova",
		"email": "heap.file@shred.example", "team": []string{bob.userID}, "send_email": true}, hdr{"Idempotency-Key": "files-invite"})
	id := r.json(t)["customer"].(map[string]any)["id"].(string)
	b.admin.must(200, "PATCH", "/v1/customers/"+id, map[string]any{"title": "Chief Heap Officer"}, hdr{"Idempotency-Key": "files-patch"})
	b.admin.must(200, "POST", "/v1/customers/"+id+"/assignees", map[string]any{"user_id": zoe.userID}, hdr{"Idempotency-Key": "files-assign"})
	reg := b.admin.must(201, "POST", "/v1/customers", map[string]any{"first_name": "Registeredheap", "email": "registered.heap@shred.example"},
		hdr{"Idempotency-Key": "files-register"}).json(t)["id"].(string)
	msg := b.admin.must(202, "POST", "/v1/customers/messages", map[string]any{"customer_ids": []string{id, reg}, "subject": "Hi", "body": "News"},
		hdr{"Idempotency-Key": "files-message"}).json(t)
	srv.Wait(t, 3, 15*time.Second)
	waitFor(t, 10*time.Second, func() bool {
		var counts struct{ Sent int }
		b.admin.must(200, "GET", "/v1/messages/"+msg["id"].(string), nil).decode(t, &counts)
		return counts.Sent == 2
	})
	// A retry replays the sealed answers (they open while the key lives).
	if again := b.admin.must(200, "PATCH", "/v1/customers/"+id, map[string]any{"title": "Chief Heap Officer"},
		hdr{"Idempotency-Key": "files-patch"}).json(t); again["title"] != "Chief Heap Officer" || again["first_name"] != "Heapfilena" {
		t.Fatalf("replayed sealed answer: %v", again)
	}
	if again := b.admin.must(201, "POST", "/v1/customers", map[string]any{"first_name": "Registeredheap", "email": "registered.heap@shred.example"},
		hdr{"Idempotency-Key": "files-register"}).json(t); again["id"] != reg || again["email"] != "registered.heap@shred.example" {
		t.Fatalf("replayed sealed registration: %v", again)
	}
	if err := b.runner.WaitFor(context.Background(), last(t, b)); err != nil {
		t.Fatal(err)
	}

	checkpoint(t, b)
	if found := plaintextIn(t, b, "customer_list", secrets); len(found) == 0 {
		t.Fatal("customer_list's file shows no display column in clear: the scan proves nothing")
	}
	for _, table := range []string{"outbox", "idempotency_keys"} {
		if found := plaintextIn(t, b, table, secrets); len(found) > 0 {
			t.Fatalf("while the customers live, %s's data files hold %q in clear", table, found)
		}
	}

	b.admin.must(204, "DELETE", "/v1/customers/"+id, nil)
	b.admin.must(204, "DELETE", "/v1/customers/"+reg, nil)
	checkpoint(t, b)
	for _, table := range []string{"outbox", "idempotency_keys"} {
		if found := plaintextIn(t, b, table, secrets); len(found) > 0 {
			t.Fatalf("after erasure, %s's data files hold %q in clear", table, found)
		}
	}
	// The read models' clear copies stay in dead row versions until the
	// operator's documented rewrite (README, "After erasures").
	if err := b.runner.WaitFor(context.Background(), last(t, b)); err != nil {
		t.Fatal(err)
	}
	// VACUUM FULL keeps the row versions a transaction still running in
	// the database may see (the projections' and the relay's, which a
	// loaded machine stretches), so the rewrite is repeated until those
	// have ended, as an operator would after a busy moment.
	var found []string
	var table string
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := b.pool.Exec(context.Background(), `VACUUM FULL customer_list, customer_search, customer_keys`); err != nil {
			t.Fatal(err)
		}
		checkpoint(t, b)
		found, table = nil, ""
		for _, tb := range []string{"customer_list", "customer_search"} {
			if f := plaintextIn(t, b, tb, secrets); len(f) > 0 {
				found, table = f, tb
				break
			}
		}
		if len(found) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(found) > 0 {
		t.Fatalf("after erasure and VACUUM FULL, %s's data files hold %q in clear", table, found)
	}
}

// checkpoint has PostgreSQL write every changed page to the data files.
func checkpoint(t *testing.T, b *testBundle) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), `CHECKPOINT`); err != nil {
		t.Fatalf("CHECKPOINT (the tests' database user is a superuser): %v", err)
	}
}

// plaintextIn reads table's data files (main fork and TOAST) byte for byte
// and returns which of values they hold.
func plaintextIn(t *testing.T, b *testBundle, table string, values [][]byte) []string {
	t.Helper()
	ctx := context.Background()
	var main, toast string
	if err := b.pool.QueryRow(ctx, `SELECT pg_relation_filepath(c.oid),
		coalesce(pg_relation_filepath(nullif(c.reltoastrelid, 0)), '') FROM pg_class c WHERE c.oid = $1::regclass`, table).Scan(&main, &toast); err != nil {
		t.Fatal(err)
	}
	var files []byte
	for _, path := range []string{main, toast} {
		if path == "" {
			continue
		}
		var data []byte
		if err := b.pool.QueryRow(ctx, `SELECT coalesce(pg_read_binary_file($1, 0, coalesce((pg_stat_file($1, true)).size, 0), true), ''::bytea)`, path).Scan(&data); err != nil {
			t.Fatalf("read %s's file %s: %v", table, path, err)
		}
		files = append(files, data...)
	}
	var found []string
	for _, v := range values {
		if bytes.Contains(files, v) {
			found = append(found, string(v))
		}
	}
	return found
}
