package http_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

// readAfter reads a GET as it stands once the command at position is projected.
func (c *client) readAfter(position string, path string, headers ...hdr) response {
	c.t.Helper()
	return c.must(200, "GET", path, nil, append(headers, hdr{"X-Min-Position": position})...)
}

func TestReadYourWrites(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma One", "member")
	cust := b.createCustomer(t, "Carla")
	r := b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID})
	pos := r.header.Get("X-Ledger-Position")
	if fmt.Sprint(r.json(t)["position"]) != pos {
		t.Fatalf("body position %v != header %s", r.json(t)["position"], pos)
	}
	var list struct {
		Items []struct {
			ID        string           `json:"id"`
			Assignees []map[string]any `json:"assignees"`
		} `json:"items"`
	}
	b.admin.readAfter(pos, "/v1/customers?assigned_user="+u.userID).decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != cust || len(list.Items[0].Assignees) != 1 {
		t.Fatalf("customer list after X-Min-Position: %+v", list)
	}
	var mine struct {
		Items []map[string]any `json:"items"`
	}
	u.readAfter(pos, "/v1/users/me/clients").decode(t, &mine)
	if len(mine.Items) != 1 || mine.Items[0]["id"] != cust || mine.Items[0]["assigned_at"] == nil {
		t.Fatalf("my clients after X-Min-Position: %+v", mine)
	}
	var none struct {
		Items []map[string]any `json:"items"`
	}
	b.admin.readAfter(pos, "/v1/customers?assigned_user=none").decode(t, &none)
	for _, c := range none.Items {
		if c["id"] == cust {
			t.Fatal("assigned customer listed under assigned_user=none")
		}
	}
	// A position past the newest event is any future position: waited for,
	// then 503 (a 400 "no event has position N" told every tenant the
	// count of all tenants' events).
	if r := b.admin.do("GET", "/v1/customers", nil, hdr{"X-Min-Position": "999999999"}); r.status != 503 || r.code() != "position_not_reached" ||
		strings.Contains(string(r.body), "999999999") && strings.Contains(string(r.body), "no event") {
		t.Fatalf("unknown position: %d %s", r.status, r.body)
	}
}

func TestMinPositionTimesOutWith503(t *testing.T) {
	b := setup(t, setupOpts{noProjections: true})
	cust := b.createCustomer(t, "Carla")
	r := b.admin.must(200, "POST", "/v1/customers/"+cust+"/block", nil)
	start := time.Now()
	w := b.admin.do("GET", "/v1/customers", nil, hdr{"X-Min-Position": r.header.Get("X-Ledger-Position")})
	if w.status != 503 || w.header.Get("Retry-After") == "" {
		t.Fatalf("stalled projections: %d %v %s", w.status, w.header, w.body)
	}
	if d := time.Since(start); d < 4*time.Second || d > 15*time.Second {
		t.Fatalf("waited %s, want about 5 s", d)
	}
}

// The assigned-user filter of the customer list reads my_clients too, so
// X-Min-Position must wait for it as well as for customer_list. The fold
// read models always move together, so the test stops them (only groups
// runs) and moves the checkpoints by hand: customer_list's alone past the
// position is not enough for the read; my_clients' too is.
func TestCustomerListMinPositionWaitsForMyClients(t *testing.T) {
	b := setup(t, setupOpts{only: []string{"groups"}})
	cust := b.createCustomer(t, "Carla")
	u := b.createUser(t, "Uma User", "member")
	r := b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID})
	pass := func(name string) {
		t.Helper()
		if _, err := b.pool.Exec(context.Background(), `UPDATE projection_checkpoints
			SET last_transaction_id = '9223372036854775807', last_position = 9223372036854775807 WHERE consumer_group = $1`, name); err != nil {
			t.Fatal(err)
		}
	}
	read := func() response {
		return b.admin.do("GET", "/v1/customers?assigned_user="+u.userID, nil, hdr{"X-Min-Position": r.header.Get("X-Ledger-Position")})
	}
	pass("customer_list")
	if w := read(); w.status != 503 {
		t.Fatalf("customer list with my_clients behind: %d %s", w.status, w.body)
	}
	pass("my_clients")
	if w := read(); w.status != 200 {
		t.Fatalf("customer list with both past the position: %d %s", w.status, w.body)
	}
}

func TestPaginationCursors(t *testing.T) {
	b := setup(t)
	var last string
	for i := range 7 {
		last = b.createCustomer(t, fmt.Sprintf("P%d", i))
	}
	pos := b.admin.must(200, "POST", "/v1/customers/"+last+"/block", nil).header.Get("X-Ledger-Position")
	seen := map[string]bool{}
	path := "/v1/customers?limit=3"
	pages := 0
	for {
		var pg struct {
			Items      []map[string]any `json:"items"`
			NextCursor string           `json:"next_cursor"`
		}
		b.admin.readAfter(pos, path).decode(t, &pg)
		pages++
		for _, c := range pg.Items {
			id := c["id"].(string)
			if seen[id] {
				t.Fatalf("customer %s on two pages", id)
			}
			seen[id] = true
		}
		if pg.NextCursor == "" {
			break
		}
		path = "/v1/customers?limit=3&cursor=" + pg.NextCursor
	}
	if len(seen) != 7 || pages != 3 {
		t.Fatalf("%d customers over %d pages, want 7 over 3", len(seen), pages)
	}
}

func TestBulkEditIsAllOrNothing(t *testing.T) {
	b := setup(t)
	b.setPolicy(t, 2, false, false, true)
	u1, u2, u3 := b.createUser(t, "Uma One", "member"), b.createUser(t, "Ulf Two", "member"), b.createUser(t, "Ute Three", "member")
	c1, c2 := b.createCustomer(t, "Carla"), b.createCustomer(t, "Cody")
	b.admin.must(200, "POST", "/v1/customers/"+c2+"/assignees", map[string]string{"user_id": u1.userID})

	req := map[string]any{"action": "add", "customer_ids": []string{c1, c2}, "user_ids": []string{u1.userID, u2.userID, u3.userID}}
	before := b.countEvents(t)
	r := b.admin.do("POST", "/v1/assignments/bulk", req)
	if r.status != 409 {
		t.Fatalf("bulk over the limit: %d %s", r.status, r.body)
	}
	var refused struct {
		Code   string           `json:"code"`
		Errors []map[string]any `json:"errors"`
	}
	r.decode(t, &refused)
	// c1 takes u1,u2 then refuses u3; c2 has u1, takes u2, refuses u3.
	if len(refused.Errors) != 2 || b.countEvents(t) != before {
		t.Fatalf("refusal %+v; %d events appended", refused, b.countEvents(t)-before)
	}
	for _, e := range refused.Errors {
		if e["code"] != "max_assignees_reached" || e["user_id"] != u3.userID {
			t.Fatalf("failing pair %v", e)
		}
	}
	req["dry_run"] = true
	var plan struct {
		ToBeAssigned   []map[string]string `json:"to_be_assigned"`
		ToBeDeassigned []map[string]string `json:"to_be_deassigned"`
		Unchanged      []map[string]string `json:"unchanged"`
		Errors         []map[string]any    `json:"errors"`
	}
	b.admin.must(200, "POST", "/v1/assignments/bulk", req).decode(t, &plan)
	if len(plan.ToBeAssigned) != 3 || len(plan.Unchanged) != 1 || len(plan.Errors) != 2 || len(plan.ToBeDeassigned) != 0 {
		t.Fatalf("dry run %+v", plan)
	}
	if b.countEvents(t) != before {
		t.Fatal("dry run wrote")
	}
	ok := b.admin.must(200, "POST", "/v1/assignments/bulk", map[string]any{"action": "add", "customer_ids": []string{c1, c2}, "user_ids": []string{u2.userID}})
	pos := ok.header.Get("X-Ledger-Position")
	var hist struct {
		Items []struct {
			Type          string `json:"type"`
			CorrelationID string `json:"correlation_id"`
		} `json:"items"`
	}
	corr := map[string]bool{}
	for _, c := range []string{c1, c2} {
		b.admin.readAfter(pos, "/v1/customers/"+c+"/history").decode(t, &hist)
		last := hist.Items[len(hist.Items)-1]
		if last.Type != "UserAssigned" {
			t.Fatalf("last event %+v", last)
		}
		corr[last.CorrelationID] = true
	}
	if len(corr) != 1 {
		t.Fatalf("bulk events do not share one correlation id: %v", corr)
	}
}

func TestInvitations(t *testing.T) {
	b := setup(t)
	b.setPolicy(t, nil, true, true, true)
	u1, u2 := b.createUser(t, "Uma One", "member"), b.createUser(t, "Ulf Two", "member")
	r := b.admin.must(201, "POST", "/v1/clients/invitations", map[string]any{
		"first_name": "Ivy", "last_name": "Invited", "email": "ivy@client.example", "phone": "+1 555 0100",
		"team": []string{u2.userID, u1.userID}})
	var inv struct {
		Customer struct {
			ID        string           `json:"id"`
			Status    string           `json:"status"`
			Assignees []map[string]any `json:"assignees"`
		} `json:"customer"`
		InvitationURL string `json:"invitation_url"`
	}
	r.decode(t, &inv)
	if inv.Customer.Status != "invited" || len(inv.Customer.Assignees) != 2 || inv.Customer.Assignees[0]["user_id"] != u2.userID ||
		inv.Customer.Assignees[0]["lead"] != true || !strings.HasPrefix(inv.InvitationURL, "https://ledger.example/invitations/") {
		t.Fatalf("invitation %+v", inv)
	}
	token := strings.TrimPrefix(inv.InvitationURL, "https://ledger.example/invitations/")
	anon := &client{t: t, base: b.base}
	key := hdr{"Idempotency-Key": "accept-once"}
	first := anon.must(200, "POST", "/v1/invitations/"+token+"/accept", nil, key)
	if first.json(t)["status"] != "active" {
		t.Fatalf("accept: %s", first.body)
	}
	// A retry with the key gets the first answer; without it, the token is used.
	if again := anon.must(200, "POST", "/v1/invitations/"+token+"/accept", nil, key); string(again.body) != string(first.body) {
		t.Fatalf("keyed retry of accept: %s", again.body)
	}
	if r := anon.do("POST", "/v1/invitations/"+token+"/accept", nil); r.status != 404 {
		t.Fatalf("second accept: %d", r.status)
	}
	if r := anon.do("POST", "/v1/invitations/nonsense/accept", nil); r.status != 404 {
		t.Fatalf("unknown token: %d", r.status)
	}
	if r := b.admin.do("POST", "/v1/clients/invitations", map[string]any{"first_name": "Dup", "email": "ivy@client.example", "team": []string{u1.userID}}); r.status != 409 {
		t.Fatalf("duplicate email: %d %s", r.status, r.body)
	}
}

func (c *client) csv(method, path, body string, headers ...hdr) response {
	c.t.Helper()
	req, _ := nethttp.NewRequest(method, c.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Authorization", "Bearer "+c.key)
	for _, h := range headers {
		for k, v := range h {
			req.Header.Set(k, v)
		}
	}
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

func TestImportClients(t *testing.T) {
	b := setup(t)
	tpl := b.admin.must(200, "GET", "/v1/clients/import/template", nil)
	rows, err := csv.NewReader(bytes.NewReader(tpl.body)).ReadAll()
	if err != nil || len(rows) != 2 || strings.Join(rows[0], ",") != "First Name,Last Name,Email,Phone Number,Team" ||
		!strings.HasPrefix(tpl.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("template %q (%v)", tpl.body, err)
	}
	uma := b.admin.must(201, "POST", "/v1/users", map[string]string{"name": "Uma One", "email": "uma@acme.example", "role": "member"}).json(t)

	good := "First Name,Last Name,Email,Phone Number,Team\nAda,Lovelace,ada@client.example,+44 1,uma@acme.example\nAlan,Turing,alan@client.example,,\n"
	before := b.countEvents(t)
	var rep struct {
		Created, Updated, Unchanged int
		Errors                      []map[string]any
	}
	dry := b.admin.csv("POST", "/v1/clients/import?dry_run=true", good)
	if dry.status != 200 {
		t.Fatalf("dry run: %d %s", dry.status, dry.body)
	}
	dry.decode(t, &rep)
	if rep.Created != 2 || b.countEvents(t) != before {
		t.Fatalf("dry run %+v wrote %d events", rep, b.countEvents(t)-before)
	}
	bad := good + "Bob,,not-an-email,,\nCy,Clone,ada@client.example,,\nDee,Doe,dee@client.example,,nobody@acme.example\n"
	r := b.admin.csv("POST", "/v1/clients/import", bad)
	r.decode(t, &rep)
	if r.status != 422 || len(rep.Errors) != 3 || b.countEvents(t) != before {
		t.Fatalf("bad file: %d %s (%d events)", r.status, r.body, b.countEvents(t)-before)
	}
	for i, e := range rep.Errors {
		if e["row"] != float64(3+i) || e["error"] == "" {
			t.Fatalf("row error %d: %v", i, e)
		}
	}
	r = b.admin.csv("POST", "/v1/clients/import", good)
	r.decode(t, &rep)
	if r.status != 200 || rep.Created != 2 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	var mine struct{ Items []map[string]any }
	b.admin.readAfter(r.header.Get("X-Ledger-Position"), "/v1/users/"+uma["id"].(string)+"/clients").decode(t, &mine)
	if len(mine.Items) != 1 || mine.Items[0]["email"] != "ada@client.example" {
		t.Fatalf("team from CSV not assigned: %+v", mine)
	}
	upd := "First Name,Last Name,Email,Phone Number,Team\nAugusta Ada,Lovelace,ada@client.example,,\nAlan,Turing,alan@client.example,,\n"
	b.admin.csv("POST", "/v1/clients/import?update_existing=true", upd).decode(t, &rep)
	if rep.Updated != 1 || rep.Unchanged != 1 || rep.Created != 0 {
		t.Fatalf("update_existing: %+v", rep)
	}
	huge := "First Name,Last Name,Email,Phone Number,Team\n" + strings.Repeat("Ada,Lovelace,ada@client.example,,\n", 33<<20/34)
	if r := b.admin.csv("POST", "/v1/clients/import", huge); r.status != 413 {
		t.Fatalf("33 MiB import: %d %.300s", r.status, r.body)
	}
	if r := b.admin.csv("POST", "/v1/clients/import", "Name,Email\nA,a@b.example\n"); r.status != 400 {
		t.Fatalf("wrong header: %d %s", r.status, r.body)
	}
}

func TestDeactivationHandsCustomersOver(t *testing.T) {
	b := setup(t)
	c1, c2 := b.createCustomer(t, "Carla"), b.createCustomer(t, "Cody") // before require_assignee, which would want teams
	b.setPolicy(t, nil, true, true, true)
	leaver, heir, other := b.createUser(t, "Lea Leaver", "member"), b.createUser(t, "Hal Heir", "member"), b.createUser(t, "Oli Other", "member")
	b.admin.must(200, "POST", "/v1/customers/"+c1+"/assignees", map[string]string{"user_id": leaver.userID})
	b.admin.must(200, "POST", "/v1/customers/"+c2+"/assignees", map[string]string{"user_id": other.userID})
	b.admin.must(200, "POST", "/v1/customers/"+c2+"/assignees", map[string]string{"user_id": leaver.userID})

	// Without a transfer the last member of c1 cannot leave.
	before := b.countEvents(t)
	if r := b.admin.do("POST", "/v1/users/"+leaver.userID+"/deactivate", nil); r.status != 409 || b.countEvents(t) != before {
		t.Fatalf("deactivation breaking require_assignee: %d %s", r.status, r.body)
	}
	r := b.admin.must(200, "POST", "/v1/users/"+leaver.userID+"/deactivate", map[string]string{"transfer_to": heir.userID})
	if r.json(t)["status"] != "deactivated" {
		t.Fatalf("deactivate: %s", r.body)
	}
	for cust, wantLead := range map[string]bool{c1: true, c2: false} {
		a := assignees(t, b.admin.must(200, "GET", "/v1/customers/"+cust, nil))
		found := false
		for _, m := range a {
			if m["user_id"] == leaver.userID {
				t.Fatalf("deactivated user still on %s", cust)
			}
			if m["user_id"] == heir.userID {
				found = true
				if m["lead"] != wantLead {
					t.Fatalf("heir on %s has lead=%v, want %v", cust, m["lead"], wantLead)
				}
			}
		}
		if !found {
			t.Fatalf("heir not on %s: %v", cust, a)
		}
	}
	var notes struct {
		Unread int `json:"unread"`
		Items  []struct {
			ID, Type, CustomerID string
			Read                 bool
		} `json:"items"`
	}
	heir.readAfter(r.header.Get("X-Ledger-Position"), "/v1/users/me/notifications").decode(t, &notes)
	if notes.Unread != 2 || len(notes.Items) != 2 {
		t.Fatalf("heir's notifications %+v", notes)
	}
	heir.must(200, "POST", "/v1/users/me/notifications/read", map[string]any{"ids": []string{notes.Items[0].ID}}).decode(t, &notes)
	if notes.Unread != 1 {
		t.Fatalf("after marking one read: %+v", notes)
	}
	if r := b.admin.do("POST", "/v1/customers/"+c1+"/assignees", map[string]string{"user_id": leaver.userID}); r.status != 409 || r.code() != "user_deactivated" {
		t.Fatalf("assign deactivated: %d %s", r.status, r.body)
	}
}

func TestAsOfAndHistory(t *testing.T) {
	b := setup(t)
	u1, u2 := b.createUser(t, "Uma One", "member"), b.createUser(t, "Ulf Two", "member")
	cust := b.createCustomer(t, "Carla")
	b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u1.userID})
	time.Sleep(20 * time.Millisecond)
	mid := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees/"+u1.userID+"/replace", map[string]string{"with_user_id": u2.userID})
	pos := b.admin.must(200, "PUT", "/v1/customers/"+cust+"/lead", map[string]string{"user_id": u2.userID}).header.Get("X-Ledger-Position")

	var team struct{ Items []map[string]any }
	b.admin.readAfter(pos, "/v1/customers/"+cust+"/assignees?as_of="+mid.Format(time.RFC3339Nano)).decode(t, &team)
	if len(team.Items) != 1 || team.Items[0]["user_id"] != u1.userID {
		t.Fatalf("team as of %s: %+v", mid, team)
	}
	b.admin.readAfter(pos, "/v1/customers/"+cust+"/assignees").decode(t, &team)
	if len(team.Items) != 1 || team.Items[0]["user_id"] != u2.userID || team.Items[0]["lead"] != true {
		t.Fatalf("team now: %+v", team)
	}
	var clients struct{ Items []map[string]any }
	u1.readAfter(pos, "/v1/users/me/clients?as_of="+mid.Format(time.RFC3339Nano)).decode(t, &clients)
	if len(clients.Items) != 1 || clients.Items[0]["id"] != cust {
		t.Fatalf("u1's clients as of then: %+v", clients)
	}
	u1.readAfter(pos, "/v1/users/me/clients").decode(t, &clients)
	if len(clients.Items) != 0 {
		t.Fatalf("u1's clients now: %+v", clients)
	}
	var hist struct {
		Items []struct {
			Position int64          `json:"position"`
			Type     string         `json:"type"`
			At       time.Time      `json:"at"`
			Actor    map[string]any `json:"actor"`
			Data     map[string]any `json:"data"`
		} `json:"items"`
	}
	b.admin.must(200, "GET", "/v1/customers/"+cust+"/history", nil).decode(t, &hist)
	types := []string{}
	for _, h := range hist.Items {
		types = append(types, h.Type)
		if h.Actor["user_id"] != b.admin.userID || h.Actor["name"] != "Ann Admin" || h.Data["customer_id"] != cust {
			t.Fatalf("history item %+v", h)
		}
	}
	if strings.Join(types, ",") != "CustomerRegistered,UserAssigned,TeamMemberReplaced,TeamLeadChanged" {
		t.Fatalf("history %v", types)
	}
}

func TestAuditLogAndExports(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "=Uma One", "member")
	cust := b.createCustomer(t, "Carla")
	pos := b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID}).header.Get("X-Ledger-Position")

	var audit struct {
		Items []struct {
			Position int64  `json:"position"`
			Type     string `json:"type"`
		} `json:"items"`
	}
	b.admin.readAfter(pos, "/v1/audit?customer_id="+cust).decode(t, &audit)
	if len(audit.Items) != 2 {
		t.Fatalf("audit for customer: %+v", audit)
	}
	// A user's ID is no customer's: nothing (found by hostile testing: the
	// user's own events).
	b.admin.readAfter(pos, "/v1/audit?customer_id="+u.userID).decode(t, &audit)
	if len(audit.Items) != 0 {
		t.Fatalf("audit for a user's ID as a customer: %+v", audit)
	}
	b.admin.readAfter(pos, "/v1/audit?type=UserAssigned&user_id="+u.userID).decode(t, &audit)
	if len(audit.Items) != 1 || audit.Items[0].Type != "UserAssigned" {
		t.Fatalf("audit by type and user: %+v", audit)
	}
	nd := b.admin.readAfter(pos, "/v1/audit?customer_id="+cust, hdr{"Accept": "application/x-ndjson"})
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(nd.body))
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("ndjson line %q: %v", sc.Text(), err)
		}
		lines++
	}
	if lines != 2 || !strings.HasPrefix(nd.header.Get("Content-Type"), "application/x-ndjson") {
		t.Fatalf("ndjson export: %d lines, %s", lines, nd.header.Get("Content-Type"))
	}
	c := b.admin.readAfter(pos, "/v1/audit?customer_id="+cust, hdr{"Accept": "text/csv"})
	recs, err := csv.NewReader(bytes.NewReader(c.body)).ReadAll()
	if err != nil || len(recs) != 3 {
		t.Fatalf("audit csv: %v %q", err, c.body)
	}
	cl := b.admin.readAfter(pos, "/v1/customers?assigned_user="+u.userID, hdr{"Accept": "text/csv"})
	recs, err = csv.NewReader(bytes.NewReader(cl.body)).ReadAll()
	if err != nil || len(recs) != 2 || recs[1][0] != cust || !strings.HasPrefix(recs[1][8], "'=") {
		t.Fatalf("customer csv (formula cells must be defused): %v %q", err, cl.body)
	}
}

func TestOperationsEndpoints(t *testing.T) {
	b := setup(t)
	anon := &client{t: t, base: b.base}
	anon.must(200, "GET", "/healthz", nil)
	anon.must(200, "GET", "/readyz", nil)
	b.admin.must(200, "GET", "/v1/users", nil)
	m := anon.must(200, "GET", "/metrics", nil)
	if !strings.Contains(string(m.body), `ledger_http_request_duration_seconds_bucket{method="GET",route="/v1/users"`) {
		t.Fatalf("per-route latency histogram missing from /metrics")
	}
	if r := anon.do("GET", "/v1/nope", nil); r.status != 404 || r.code() != "not_found" {
		t.Fatalf("unknown route: %d %s", r.status, r.body)
	}
	if r := anon.do("PATCH", "/healthz", nil); r.status != 405 {
		t.Fatalf("wrong method: %d", r.status)
	}
	if r := anon.do("GET", "/healthz", nil); r.header.Get("X-Request-ID") == "" {
		t.Fatal("no request id")
	}
}

func TestUsersAndHistoryArePaginated(t *testing.T) {
	b := setup(t)
	for i := range 4 {
		b.createUser(t, fmt.Sprintf("Member %d", i), "member")
	}
	seen := map[string]bool{}
	path := "/v1/users?limit=2"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		var pg struct {
			Items      []map[string]any `json:"items"`
			NextCursor string           `json:"next_cursor"`
		}
		b.admin.must(200, "GET", path, nil).decode(t, &pg)
		for _, u := range pg.Items {
			if seen[u["id"].(string)] {
				t.Fatalf("user %v twice", u["id"])
			}
			seen[u["id"].(string)] = true
		}
		if pg.NextCursor == "" {
			break
		}
		path = "/v1/users?limit=2&cursor=" + pg.NextCursor
	}
	if len(seen) != 5 {
		t.Fatalf("%d users listed, want 5", len(seen))
	}
	if r := b.admin.do("GET", "/v1/users?cursor=bm9wZQ", nil); r.status != 400 {
		t.Fatalf("bad cursor: %d", r.status)
	}

	cust := b.createCustomer(t, "Carla")
	for range 3 {
		b.admin.must(200, "POST", "/v1/customers/"+cust+"/block", nil)
		b.admin.must(200, "POST", "/v1/customers/"+cust+"/unblock", nil)
	}
	var first, second struct {
		Items      []struct{ Position int64 } `json:"items"`
		NextCursor string                     `json:"next_cursor"`
	}
	b.admin.must(200, "GET", "/v1/customers/"+cust+"/history?limit=4", nil).decode(t, &first)
	b.admin.must(200, "GET", "/v1/customers/"+cust+"/history?limit=4&cursor="+first.NextCursor, nil).decode(t, &second)
	if len(first.Items) != 4 || len(second.Items) != 3 || second.NextCursor != "" || second.Items[0].Position <= first.Items[3].Position {
		t.Fatalf("history pages %+v / %+v", first, second)
	}
}

func TestAssigneesAreNotified(t *testing.T) {
	b := setup(t)
	u1, u2, u3 := b.createUser(t, "Uma One", "member"), b.createUser(t, "Ulf Two", "member"), b.createUser(t, "Ute Three", "member")
	cust := b.createCustomer(t, "Carla")
	path := "/v1/customers/" + cust
	b.admin.must(200, "POST", path+"/assignees", map[string]string{"user_id": u1.userID})
	b.admin.must(200, "POST", path+"/assignees", map[string]string{"user_id": u2.userID})
	b.admin.must(200, "PUT", path+"/lead", map[string]string{"user_id": u2.userID})
	b.admin.must(200, "POST", path+"/assignees/"+u2.userID+"/replace", map[string]string{"with_user_id": u3.userID})
	pos := b.admin.must(200, "DELETE", path+"/assignees/"+u1.userID, nil).header.Get("X-Ledger-Position")

	types := func(c *client) []string {
		var n struct {
			Unread int `json:"unread"`
			Items  []struct {
				Type       string `json:"type"`
				CustomerID string `json:"customer_id"`
				Read       bool   `json:"read"`
			} `json:"items"`
		}
		c.readAfter(pos, "/v1/users/me/notifications").decode(t, &n)
		var out []string
		for _, it := range n.Items {
			if it.CustomerID != cust || it.Read {
				t.Fatalf("notification %+v", it)
			}
			out = append(out, it.Type)
		}
		if n.Unread != len(out) {
			t.Fatalf("unread %d of %d", n.Unread, len(out))
		}
		sort.Strings(out)
		return out
	}
	want := map[*client]string{
		u1: "assigned,unassigned",
		u2: "assigned,made_lead,unassigned",
		u3: "handed_over",
	}
	for c, w := range want {
		if got := strings.Join(types(c), ","); got != w {
			t.Errorf("user %s notified of %s, want %s", c.userID, got, w)
		}
	}
	// The admin, who assigned nobody to themself, was told nothing; a member
	// may not read someone else's notifications.
	if got := types(b.admin); len(got) != 0 {
		t.Errorf("admin notified of %v", got)
	}
	if r := u1.do("GET", "/v1/users/"+u2.userID+"/notifications", nil); r.status != 403 {
		t.Errorf("member reading another's notifications: %d", r.status)
	}
}

func TestSmallListsArePaginatedToo(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma One", "member")
	others := []*client{b.createUser(t, "Ulf Two", "member"), b.createUser(t, "Ute Three", "member")}
	cust := b.createCustomer(t, "Carla")
	var pos string
	for _, c := range []string{cust, b.createCustomer(t, "Cody"), b.createCustomer(t, "Cleo")} {
		pos = b.admin.must(200, "POST", "/v1/customers/"+c+"/assignees", map[string]string{"user_id": u.userID}).header.Get("X-Ledger-Position")
	}
	for _, o := range others {
		pos = b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": o.userID}).header.Get("X-Ledger-Position")
	}
	asOf := time.Now().UTC().Format(time.RFC3339Nano)
	type pageT struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	walk := func(c *client, path string) int {
		t.Helper()
		n := 0
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		next := path + sep + "limit=2"
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatalf("%s: pagination does not end", path)
			}
			var pg pageT
			c.readAfter(pos, next).decode(t, &pg)
			if len(pg.Items) > 2 {
				t.Fatalf("%s: %d items on a page of 2", path, len(pg.Items))
			}
			n += len(pg.Items)
			if pg.NextCursor == "" {
				return n
			}
			next = path + sep + "limit=2&cursor=" + pg.NextCursor
		}
	}
	if n := walk(u, "/v1/users/me/notifications"); n != 3 {
		t.Errorf("notifications: %d, want 3", n)
	}
	if n := walk(u, "/v1/users/me/clients?as_of="+asOf); n != 3 {
		t.Errorf("clients as of: %d, want 3", n)
	}
	if n := walk(b.admin, "/v1/customers/"+cust+"/assignees"); n != 3 {
		t.Errorf("team: %d, want 3", n)
	}
	if n := walk(b.admin, "/v1/customers/"+cust+"/assignees?as_of="+asOf); n != 3 {
		t.Errorf("team as of: %d, want 3", n)
	}
	if r := u.do("GET", "/v1/users/me/notifications?cursor=bm9wZQ", nil); r.status != 400 {
		t.Errorf("bad notifications cursor: %d", r.status)
	}
}

func TestSearchAndStatusFilters(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma One", "member")
	mk := func(first, last, email string) string {
		return b.admin.must(201, "POST", "/v1/customers", map[string]string{"first_name": first, "last_name": last, "email": email}).json(t)["id"].(string)
	}
	ada := mk("Ada", "Lovelace", "ada@analytical.example")
	grace := mk("Grace", "Hopper", "grace@navy.example")
	alan := mk("Alan", "Turing", "alan@bletchley.example")
	b.admin.must(200, "POST", "/v1/customers/"+grace+"/block", nil)
	b.admin.must(200, "POST", "/v1/customers/"+ada+"/assignees", map[string]string{"user_id": u.userID})
	pos := b.admin.must(200, "POST", "/v1/customers/"+alan+"/assignees", map[string]string{"user_id": u.userID}).header.Get("X-Ledger-Position")

	ids := func(c *client, path string) string {
		t.Helper()
		var pg struct{ Items []map[string]any }
		c.readAfter(pos, path).decode(t, &pg)
		var out []string
		for _, it := range pg.Items {
			switch it["id"] {
			case ada:
				out = append(out, "ada")
			case grace:
				out = append(out, "grace")
			case alan:
				out = append(out, "alan")
			}
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	cases := map[string]string{
		"/v1/customers?q=LOVE":                               "ada",
		"/v1/customers?q=navy.EXAMPLE":                       "grace",
		"/v1/customers?q=ada+love":                           "ada",
		"/v1/customers?q=zzz":                                "",
		"/v1/customers?status=blocked":                       "grace",
		"/v1/customers?status=active":                        "ada,alan",
		"/v1/customers?assigned_user=none":                   "grace",
		"/v1/customers?assigned_user=me":                     "",
		"/v1/customers?assigned_user=" + u.userID:            "ada,alan",
		"/v1/customers?assigned_user=" + u.userID + "&q=tur": "alan",
	}
	for path, want := range cases {
		if got := ids(b.admin, path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
	if got := ids(u, "/v1/users/me/clients?q=bletchley"); got != "alan" {
		t.Errorf("My Clients q: %q", got)
	}
	if got := ids(u, "/v1/users/me/clients"); got != "ada,alan" {
		t.Errorf("My Clients: %q", got)
	}
	var mine struct{ Items []map[string]any }
	u.readAfter(pos, "/v1/users/me/clients").decode(t, &mine)
	if len(mine.Items) != 2 || mine.Items[0]["id"] != alan {
		t.Errorf("My Clients must list the newest assignment first: %v", mine.Items)
	}
}

func TestUniquenessDefaultsAndPlainDeactivation(t *testing.T) {
	b := setup(t)
	var pol map[string]any
	b.admin.must(200, "GET", "/v1/policy", nil).decode(t, &pol)
	if pol["max_assignees"] != nil || pol["require_assignee"] != false || pol["require_lead"] != false || pol["members_can_self_assign"] != true {
		t.Fatalf("a new tenant's policy: %v", pol)
	}
	b.admin.must(201, "POST", "/v1/users", map[string]string{"name": "Uma", "email": "uma@acme.example", "role": "member"})
	if r := b.admin.do("POST", "/v1/users", map[string]string{"name": "Uma Two", "email": "UMA@acme.example", "role": "member"}); r.status != 409 || r.code() != "email_taken" {
		t.Fatalf("duplicate user email: %d %s", r.status, r.body)
	}
	b.admin.must(201, "POST", "/v1/customers", map[string]string{"first_name": "Ada", "email": "ada@x.example", "external_id": "crm-1"})
	if r := b.admin.do("POST", "/v1/customers", map[string]string{"first_name": "Ada2", "email": "ADA@x.example"}); r.status != 409 {
		t.Fatalf("duplicate customer email: %d %s", r.status, r.body)
	}
	if r := b.admin.do("POST", "/v1/customers", map[string]string{"first_name": "Ada3", "email": "ada3@x.example", "external_id": "crm-1"}); r.status != 409 {
		t.Fatalf("duplicate external_id: %d %s", r.status, r.body)
	}
	// Without transfer_to and with nothing to break, the user is unassigned everywhere.
	leaver := b.createUser(t, "Lea Leaver", "member")
	stay := b.createUser(t, "Sam Stay", "member")
	c1, c2 := b.createCustomer(t, "Carla"), b.createCustomer(t, "Cody")
	for _, c := range []string{c1, c2} {
		b.admin.must(200, "POST", "/v1/customers/"+c+"/assignees", map[string]string{"user_id": leaver.userID})
	}
	b.admin.must(200, "POST", "/v1/customers/"+c2+"/assignees", map[string]string{"user_id": stay.userID})
	b.admin.must(200, "POST", "/v1/users/"+leaver.userID+"/deactivate", nil)
	for cust, want := range map[string]int{c1: 0, c2: 1} {
		if a := assignees(t, b.admin.must(200, "GET", "/v1/customers/"+cust, nil)); len(a) != want {
			t.Fatalf("after plain deactivation %s has %v", cust, a)
		}
	}
	var u map[string]any
	b.admin.must(200, "GET", "/v1/users/"+leaver.userID, nil).decode(t, &u)
	if u["status"] != "deactivated" {
		t.Fatalf("user %v", u)
	}
	if r := b.admin.do("POST", "/v1/users/"+leaver.userID+"/deactivate", nil); r.status != 409 {
		t.Fatalf("deactivating twice: %d %s", r.status, r.body)
	}
}

// TestTamperedCursorsAreBadRequests: a cursor is the client's to send back,
// so it may come back edited; one no page could have ended on is a 400
// invalid_cursor, never handed to PostgreSQL (found by hostile testing: a
// cursor with a malformed or missing ID was a 500).
func TestTamperedCursorsAreBadRequests(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma User", "member")
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, c := range []struct{ path, kind string }{
		{"/v1/customers", "customers"},
		{"/v1/customers?assigned_user=" + u.userID, "customers"},
		{"/v1/users/" + u.userID + "/clients", "my_clients"},
	} {
		sep := "?"
		if strings.Contains(c.path, "?") {
			sep = "&"
		}
		for _, v := range []string{`null`, `{}`, `{"t":"2026-12-07T19:15:10Z","id":"not-uuid"}`, `{"t":"2026-12-07T19:15:10Z","id":""}`,
			`{"id":"0193f7c2-0000-7000-8000-000000000001"}`} {
			cursor := enc(`{"k":"` + c.kind + `","v":` + v + `}`)
			if r := b.admin.do("GET", c.path+sep+"cursor="+cursor, nil); r.status != 400 || r.code() != "invalid_cursor" {
				t.Errorf("%s with cursor value %s: %d %s", c.path, v, r.status, r.body)
			}
		}
	}
}

// TestCommandsThatChangeNothingAnswerAPosition: every successful command
// answers X-Ledger-Position (API.md, read-your-writes), 0 when it changed
// nothing, which X-Min-Position takes as nothing to wait for (found by
// hostile testing: a no-op answered position 0 and no header).
func TestCommandsThatChangeNothingAnswerAPosition(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "Uma User", "member")
	r := b.admin.must(200, "PATCH", "/v1/users/"+u.userID, map[string]any{})
	if h := r.header.Get("X-Ledger-Position"); h != "0" || r.json(t)["position"] != float64(0) {
		t.Fatalf("a PATCH that changes nothing: X-Ledger-Position %q, %s", h, r.body)
	}
	b.admin.must(200, "GET", "/v1/users/"+u.userID, nil, hdr{"X-Min-Position": "0"})
}
