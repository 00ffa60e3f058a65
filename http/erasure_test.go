package http_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/smtptest"
)

// erasedPerson is the personal data of the customer the erasure tests
// erase: values found nowhere else, so finding one anywhere is a leak.
var erasedPerson = map[string]string{
	"first_name":  "Quentinerase",
	"last_name":   "Vantablackson",
	"email":       "q.vanta.erase@shred.example",
	"phone":       "+49 1555 0001234",
	"external_id": "EXT-ERASE-777",
	"title":       "Chief Shredding Officer",
	"new_email":   "quentin.updated@shred.example",
}

// leaks returns the erased person's values found in text: as they are,
// lower-cased, and hex-encoded (a bytea column shows its bytes in hex).
func leaks(text string) []string {
	low := strings.ToLower(text)
	var found []string
	for field, v := range erasedPerson {
		if strings.Contains(low, strings.ToLower(v)) || strings.Contains(low, hex.EncodeToString([]byte(v))) {
			found = append(found, field)
		}
	}
	slices.Sort(found)
	return found
}

// TestErasureLeavesNoPersonalDataReadable is issue 14's proof: after an
// erasure, every table of the database (projections, idempotency records,
// outbox, Watermill's and the event store's included) and every export
// format is searched for the customer's e-mail, names, phone, external ID
// and title and finds none; history, audit and as-of still answer; the
// e-mail and external ID are free again; `ledger verify` passes; a rebuild
// of every read model equals the live ones.
func TestErasureLeavesNoPersonalDataReadable(t *testing.T) {
	ctx := context.Background()
	srv := smtptest.Start(t)
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	bob := b.createUser(t, "Bob Baker", "member")
	zoe := b.createUser(t, "Zoë Zed", "member")
	group := b.admin.must(201, "POST", "/v1/groups", map[string]any{"name": "Shredded"}).json(t)["id"].(string)

	// The customer: invited with an e-mail (ClientInvited, an outbox row,
	// an invitation), updated under an Idempotency-Key (CustomerUpdated
	// and a stored answer naming it), assigned, grouped.
	p := erasedPerson
	r := b.admin.must(201, "POST", "/v1/clients/invitations", map[string]any{
		"first_name": p["first_name"], "last_name": p["last_name"], "email": p["email"], "phone": p["phone"],
		"team": []string{bob.userID}, "send_email": true})
	var inv struct {
		Customer      struct{ ID string }
		InvitationURL string `json:"invitation_url"`
	}
	r.decode(t, &inv)
	id := inv.Customer.ID
	token := strings.TrimPrefix(inv.InvitationURL, "https://ledger.example/invitations/")
	b.admin.must(200, "PATCH", "/v1/customers/"+id, map[string]any{"email": p["new_email"], "external_id": p["external_id"], "title": p["title"]},
		hdr{"Idempotency-Key": "patch-quentin"})
	b.admin.must(200, "POST", "/v1/customers/"+id+"/assignees", map[string]any{"user_id": zoe.userID})
	b.admin.must(200, "POST", "/v1/customers/bulk", map[string]any{"action": "add_to_group", "customer_ids": []string{id}, "group_id": group})
	// Another customer stays: the scan must find its data (the search works).
	keep := b.admin.must(201, "POST", "/v1/customers", map[string]any{"first_name": "Keeper", "last_name": "Stays", "email": "keeper@stay.example",
		"team": []string{zoe.userID}}).json(t)
	keepPos := fmt.Sprint(int64(keep["position"].(float64)))
	// The invitation e-mail is delivered before the erasure.
	waitFor(t, 10*time.Second, func() bool {
		var st invitationState
		b.admin.must(200, "GET", "/v1/customers/"+id, nil).decode(t, &st)
		return st.Invitation != nil && st.Invitation.Email == "sent"
	})
	if items := b.listCustomers(t, "?q=vantablack", keepPos); len(items) != 1 {
		t.Fatalf("before erasure, search finds %d customers", len(items))
	}
	if found := scanTables(t, b); !slices.Contains(found["customer_list"], "last_name") {
		t.Fatalf("before erasure the scan should find the customer in customer_list; found %v", found)
	}
	asOf := time.Now().UTC().Format(time.RFC3339Nano)

	// Members may not erase; admins may, once.
	if r := bob.do("DELETE", "/v1/customers/"+id, nil); r.status != 403 {
		t.Fatalf("member erasing: %d %s", r.status, r.body)
	}
	if r := b.admin.do("DELETE", "/v1/customers/"+id, nil, hdr{"If-Match": `"2"`}); r.status != 412 {
		t.Fatalf("erasing at a stale version: %d %s", r.status, r.body)
	}
	r = b.admin.must(204, "DELETE", "/v1/customers/"+id, nil, hdr{"Idempotency-Key": "erase-quentin"})
	pos := r.header.Get("X-Ledger-Position")
	if pos == "" {
		t.Fatal("DELETE answered no X-Ledger-Position")
	}
	if again := b.admin.must(204, "DELETE", "/v1/customers/"+id, nil, hdr{"Idempotency-Key": "erase-quentin"}); again.header.Get("X-Ledger-Position") != pos {
		t.Fatalf("replayed erasure answered position %q, want %q", again.header.Get("X-Ledger-Position"), pos)
	}
	if r := b.admin.do("DELETE", "/v1/customers/"+id, nil); r.status != 410 || r.code() != "erased" {
		t.Fatalf("erasing again: %d %s", r.status, r.body)
	}
	if r := b.admin.do("DELETE", "/v1/customers/01a00000-0000-7000-8000-000000000000", nil); r.status != 404 {
		t.Fatalf("erasing an unknown customer: %d %s", r.status, r.body)
	}

	// 410 for the customer and its commands; 404 for its invitation.
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/customers/" + id}, {"PATCH", "/v1/customers/" + id}, {"POST", "/v1/customers/" + id + "/block"},
		{"POST", "/v1/customers/" + id + "/assignees"},
	} {
		body := map[string]any{}
		if c.method == "PATCH" {
			body = map[string]any{"first_name": "Back"}
		} else if strings.HasSuffix(c.path, "/assignees") {
			body = map[string]any{"user_id": bob.userID}
		}
		if r := b.admin.do(c.method, c.path, body, hdr{"X-Min-Position": pos}); r.status != 410 || r.code() != "erased" {
			t.Fatalf("%s %s after erasure: %d %s", c.method, c.path, r.status, r.body)
		}
	}
	// Messages skip it and say why.
	msg := b.admin.must(202, "POST", "/v1/customers/messages", map[string]any{"customer_ids": []string{id, keep["id"].(string)},
		"subject": "Hello", "body": "Opening hours"}).json(t)
	if skipped := fmt.Sprint(msg["skipped"]); msg["recipients"] != float64(1) || !strings.Contains(skipped, "erased") || !strings.Contains(skipped, id) {
		t.Fatalf("message to an erased and a kept customer: %v", msg)
	}
	anon := &client{t: t, base: b.base}
	if r := anon.do("POST", "/v1/invitations/"+token+"/accept", nil); r.status != 404 {
		t.Fatalf("accepting an erased client's invitation: %d %s", r.status, r.body)
	}
	if r := anon.do("GET", "/invitations/"+token, nil); r.status != 404 {
		t.Fatalf("an erased client's invitation page: %d", r.status)
	}

	// History and as-of still answer, marked erased, IDs and flags only.
	hist := b.admin.must(200, "GET", "/v1/customers/"+id+"/history", nil, hdr{"X-Min-Position": pos})
	var h struct {
		Items []struct {
			Type   string
			Erased bool
			Data   map[string]any
		}
	}
	hist.decode(t, &h)
	if len(h.Items) < 6 || h.Items[len(h.Items)-1].Type != "CustomerErased" {
		t.Fatalf("history of an erased customer: %s", hist.body)
	}
	for _, it := range h.Items {
		if !it.Erased {
			t.Fatalf("history item %s not marked erased", it.Type)
		}
		for k := range it.Data {
			if !slices.Contains([]string{"customer_id", "user_id", "lead", "group_id", "previous_user_id", "with_user_id", "erased", "message_id", "outcome"}, k) {
				t.Fatalf("history item %s keeps field %s: %v", it.Type, k, it.Data)
			}
		}
	}
	if l := leaks(string(hist.body)); len(l) > 0 {
		t.Fatalf("history shows %v", l)
	}
	var team struct {
		Items []struct {
			UserID string `json:"user_id"`
		}
	}
	b.admin.must(200, "GET", "/v1/customers/"+id+"/assignees?as_of="+asOf, nil, hdr{"X-Min-Position": pos}).decode(t, &team)
	if len(team.Items) != 2 {
		t.Fatalf("team as of before the erasure: %+v", team)
	}
	audit := b.admin.must(200, "GET", "/v1/audit?customer_id="+id, nil, hdr{"X-Min-Position": pos})
	var au struct{ Items []struct{ Erased bool } }
	audit.decode(t, &au)
	if len(au.Items) != len(h.Items) || slices.ContainsFunc(au.Items, func(e struct{ Erased bool }) bool { return !e.Erased }) {
		t.Fatalf("audit of an erased customer: %s", audit.body)
	}
	if l := leaks(string(audit.body)); len(l) > 0 {
		t.Fatalf("audit shows %v", l)
	}

	// Gone from every list, search, My Clients and group.
	if items := b.listCustomers(t, "", pos); len(items) != 1 || items[0].ID != keep["id"] {
		t.Fatalf("customers after erasure: %+v", items)
	}
	for _, q := range []string{"?q=vantablack", "?group=" + group, "?assigned_user=" + bob.userID} {
		if items := b.listCustomers(t, q, pos); len(items) != 0 {
			t.Fatalf("%s after erasure: %+v", q, items)
		}
	}
	for _, u := range []*client{bob, zoe} {
		mine := u.must(200, "GET", "/v1/users/me/clients", nil, hdr{"X-Min-Position": pos})
		if strings.Contains(string(mine.body), id) {
			t.Fatalf("My Clients of %s still lists the erased customer: %s", u.userID, mine.body)
		}
	}
	groups := b.admin.must(200, "GET", "/v1/groups", nil, hdr{"X-Min-Position": pos})
	if !strings.Contains(string(groups.body), `"customers":0`) {
		t.Fatalf("groups after erasure: %s", groups.body)
	}

	// Every export format.
	for _, f := range []string{"csv", "xlsx", "ods", "vcf", "html"} {
		r := b.admin.must(200, "GET", "/v1/customers?format="+f, nil, hdr{"X-Min-Position": pos})
		text := exportText(t, f, r.body)
		if !strings.Contains(text, "keeper@stay.example") {
			t.Fatalf("the %s export does not show the kept customer: the search would prove nothing", f)
		}
		if l := leaks(text); len(l) > 0 {
			t.Fatalf("the %s export shows %v", f, l)
		}
	}

	// Every table of the database.
	if found := scanTables(t, b); len(found) > 0 {
		t.Fatalf("after erasure, personal data is readable in: %v", found)
	}

	// The chains still verify: erasure changed no event.
	if _, err := eventstore.New(b.pool).Verify(ctx, nil); err != nil {
		t.Fatalf("verify after erasure: %v", err)
	}
	// A rebuild of every read model equals the live ones, once the message
	// to the kept customer is delivered (its outcome is an event).
	waitFor(t, 10*time.Second, func() bool {
		var counts struct{ Sent int }
		b.admin.must(200, "GET", "/v1/messages/"+msg["id"].(string), nil).decode(t, &counts)
		return counts.Sent == 1
	})
	waitFor(t, 5*time.Second, func() bool {
		var n int
		_ = b.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE type = 'CustomerMessaged' AND data ? 'outcome'`).Scan(&n)
		return n == 1
	})
	if err := b.runner.WaitFor(ctx, last(t, b)); err != nil {
		t.Fatal(err)
	}
	live := readModelRows(t, b)
	if err := b.runner.Rebuild(ctx, "all", nil); err != nil {
		t.Fatal(err)
	}
	rebuilt := readModelRows(t, b)
	for table, rows := range live {
		if !slices.Equal(rows, rebuilt[table]) {
			t.Errorf("rebuilt %s differs from live:\nlive    %v\nrebuilt %v", table, rows, rebuilt[table])
		}
	}
	if len(live) != len(rebuilt) {
		t.Errorf("live read models %d tables, rebuilt %d", len(live), len(rebuilt))
	}
	// The rebuild brought nothing back either.
	if found := scanTables(t, b); len(found) > 0 {
		t.Fatalf("after a rebuild, personal data is readable in: %v", found)
	}

	// The e-mail and external ID are free again.
	b.admin.must(201, "POST", "/v1/customers", map[string]any{"first_name": "New", "email": p["new_email"], "external_id": p["external_id"]})
}

// last is the position of the database's last event.
func last(t *testing.T, b *testBundle) int64 {
	t.Helper()
	var pos int64
	if err := b.pool.QueryRow(context.Background(), `SELECT coalesce(max(position), 0) FROM events`).Scan(&pos); err != nil {
		t.Fatal(err)
	}
	return pos
}

func waitFor(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in time")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scanTables reads every row of every table in the database as text and
// returns, by table, the erased person's values found.
func scanTables(t *testing.T, b *testBundle) map[string][]string {
	t.Helper()
	ctx := context.Background()
	rows, err := b.pool.Query(ctx, `SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables
		WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) < 20 {
		t.Fatalf("only %d tables found: %v", len(tables), tables)
	}
	found := map[string][]string{}
	for _, table := range tables {
		var text string
		if err := b.pool.QueryRow(ctx, `SELECT coalesce(string_agg(t::text, E'\n'), '') FROM `+table+` t`).Scan(&text); err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		if l := leaks(text); len(l) > 0 {
			found[strings.TrimPrefix(table, "public.")] = l
		}
	}
	return found
}

// exportText is an export's text: the file itself, or every file of a zip
// (XLSX, ODS), whose members are compressed.
func exportText(t *testing.T, format string, body []byte) string {
	t.Helper()
	if format != "xlsx" && format != "ods" {
		return string(body)
	}
	z, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("%s export: %v", format, err)
	}
	var all strings.Builder
	for _, f := range z.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	return all.String()
}

// readModelRows reads every read model's rows as text, sorted.
func readModelRows(t *testing.T, b *testBundle) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range []string{"customer_list", "customer_list_erased", "customer_search", "customer_groups", "my_clients",
		"assignment_intervals", "audit_log", "notifications", "groups"} {
		rows, err := b.pool.Query(context.Background(), `SELECT t::text FROM `+table+` t ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], s)
		}
		rows.Close()
	}
	return out
}

// An erasure while the relay delivers the customer's e-mail neither waits
// for the delivery nor lets its outcome land after CustomerErased (found by
// hostile testing: the erasure waited for the outbox row the relay held,
// the relay for the stream the erasure held, on two connections, until the
// request's deadline: 503, and the customer was not erased).
func TestErasureDuringDeliveryNeitherWaitsNorRecordsAfterIt(t *testing.T) {
	srv := smtptest.Start(t)
	delivering, release := make(chan struct{}, 1), make(chan struct{})
	srv.SetHook(func(st smtptest.Stage, m *smtptest.Message) error {
		if st == smtptest.StageData {
			select {
			case delivering <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-time.After(20 * time.Second):
			}
		}
		return nil
	})
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	cust := b.admin.must(201, "POST", "/v1/customers", map[string]any{"first_name": "Rhea", "email": "rhea@client.example"}).json(t)["id"].(string)
	msg := b.admin.must(202, "POST", "/v1/customers/messages", map[string]any{"customer_ids": []string{cust}, "subject": "Hello Rhea", "body": "Hi Rhea"}).json(t)["id"].(string)
	select {
	case <-delivering:
	case <-time.After(15 * time.Second):
		t.Fatal("the relay never delivered the message")
	}
	b.admin.must(204, "DELETE", "/v1/customers/"+cust, nil)
	close(release)
	b.admin.must(410, "GET", "/v1/customers/"+cust, nil)

	// The relay finds the customer erased: it records nothing and forgets
	// the row the erasure skipped.
	ctx := context.Background()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var rows int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE customer_id = $1`, cust).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d outbox rows of the erased customer remain", rows)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var last string
	if err := b.pool.QueryRow(ctx, `SELECT type FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1`, cust).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if last != "CustomerErased" {
		t.Fatalf("the customer's last event is %s, not CustomerErased", last)
	}
	// Its message, to the erased customer alone, loses its text with the
	// row (found by hostile testing: the erasure had skipped the row, and
	// nothing scrubbed the message).
	if got := b.admin.must(200, "GET", "/v1/messages/"+msg, nil).json(t)["subject"]; got != "" {
		t.Fatalf("the message still reads %q", got)
	}
}

// A message whose e-mails all went to customers since erased loses its
// subject and body with them (found by hostile testing: "Your renewal,
// <name>" stayed readable); one that also went to others keeps its text.
func TestErasureScrubsAMessageToTheErasedAlone(t *testing.T) {
	srv := smtptest.Start(t)
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	wil := b.admin.must(201, "POST", "/v1/customers", map[string]any{"first_name": "Wilhelmina", "email": "wil@client.example"}).json(t)["id"].(string)
	kim := b.admin.must(201, "POST", "/v1/customers", map[string]any{"first_name": "Kim", "email": "kim@client.example"}).json(t)["id"].(string)
	send := func(subject string, ids ...string) string {
		return b.admin.must(202, "POST", "/v1/customers/messages", map[string]any{"customer_ids": ids, "subject": subject, "body": "Dear " + subject}).json(t)["id"].(string)
	}
	own := send("Your renewal, Wilhelmina Zappa", wil)
	circular := send("Opening hours", wil, kim)
	srv.Wait(t, 3, 15*time.Second)
	b.admin.must(204, "DELETE", "/v1/customers/"+wil, nil)
	if got := b.admin.must(200, "GET", "/v1/messages/"+own, nil).json(t)["subject"]; got != "" {
		t.Fatalf("the erased customer's own message still reads %q", got)
	}
	if got := b.admin.must(200, "GET", "/v1/messages/"+circular, nil).json(t)["subject"]; got != "Opening hours" {
		t.Fatalf("a message to others too reads %q", got)
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE subject LIKE '%Wilhelmina%' OR body LIKE '%Wilhelmina%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d messages still name the erased customer", n)
	}
}
