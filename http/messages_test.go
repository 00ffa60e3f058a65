package http_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/assignment-ledger/ledger/internal/smtptest"
)

type messageState struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
	Queued  int    `json:"queued"`
	Sent    int    `json:"sent"`
	Failed  int    `json:"failed"`
}

func TestMessageToCustomersIsDeliveredCountedAndAudited(t *testing.T) {
	srv := smtptest.Start(t)
	// One mailbox refuses for good: its e-mail must count as failed.
	srv.SetHook(func(st smtptest.Stage, m *smtptest.Message) error {
		if st == smtptest.StageRcpt && m.To[len(m.To)-1] == "gone@client.example" {
			return smtptest.Permanent
		}
		return nil
	})
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	carla := b.createCustomer(t, "Carla")
	dan := b.createCustomer(t, "Dan")
	eve := b.createCustomer(t, "Eve")
	b.admin.must(200, "POST", "/v1/customers/"+eve+"/block", nil)
	frank := b.admin.must(201, "POST", "/v1/customers", map[string]string{"first_name": "Frank", "external_id": "F-1"}).json(t)["id"].(string)
	gone := b.admin.must(201, "POST", "/v1/customers", map[string]string{"first_name": "Gone", "email": "gone@client.example"}).json(t)["id"].(string)
	unknown := uuid.NewString()

	r := b.admin.must(202, "POST", "/v1/customers/messages", map[string]any{
		"customer_ids": []string{carla, dan, eve, frank, gone, unknown, carla},
		"subject":      "  Opening hours  ", "body": "Dear client,\n\nWe open at 9 from Monday.\n"})
	var res struct {
		ID         string `json:"id"`
		Recipients int    `json:"recipients"`
		Skipped    []struct {
			CustomerID string `json:"customer_id"`
			Reason     string `json:"reason"`
		} `json:"skipped"`
		Position int64 `json:"position"`
	}
	r.decode(t, &res)
	if res.Recipients != 3 || res.Position == 0 || r.header.Get("X-Ledger-Position") == "" {
		t.Fatalf("answer: %s", r.body)
	}
	skipped := map[string]string{}
	for _, s := range res.Skipped {
		skipped[s.CustomerID] = s.Reason
	}
	if len(skipped) != 3 || skipped[eve] != "blocked" || skipped[frank] != "no_email" || skipped[unknown] != "not_found" {
		t.Fatalf("skipped: %v", res.Skipped)
	}

	// Two e-mails arrive; the third is refused.
	got := srv.Wait(t, 2, 15*time.Second)
	to := map[string]bool{}
	for _, m := range got {
		h, text := mailBody(t, m)
		to[strings.SplitN(m.To[0], ".", 2)[0]] = true
		if h.Get("Subject") != "Opening hours" || !strings.Contains(text, "We open at 9 from Monday.") {
			t.Errorf("e-mail %q:\n%s", h.Get("Subject"), text)
		}
	}
	if !to["carla"] || !to["dan"] {
		t.Errorf("e-mails to %v", to)
	}

	// The counts become real: 2 sent, 1 failed, nothing left queued.
	var st messageState
	for deadline := time.Now().Add(15 * time.Second); ; {
		b.admin.must(200, "GET", "/v1/messages/"+res.ID, nil).decode(t, &st)
		if st.Queued == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message never delivered: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st != (messageState{ID: res.ID, Subject: "Opening hours", Sent: 2, Failed: 1}) {
		t.Fatalf("message: %+v", st)
	}
	// A member may read it too; another ID is not found.
	member := b.createUser(t, "Mia Member", "member")
	member.must(200, "GET", "/v1/messages/"+res.ID, nil)
	b.admin.must(404, "GET", "/v1/messages/"+uuid.NewString(), nil)

	// Each recipient's history says who messaged it, then how it went.
	outcome := map[string]string{carla: "sent", dan: "sent", gone: "failed"}
	for id, want := range outcome {
		var seen []string
		for _, it := range b.customerHistory(t, id) {
			if it.Type != "CustomerMessaged" {
				continue
			}
			if it.Data["message_id"] != res.ID || it.Data["customer_id"] != id {
				t.Errorf("%s: CustomerMessaged %v", id, it.Data)
			}
			o, _ := it.Data["outcome"].(string)
			seen = append(seen, fmt.Sprintf("%s:%s", it.Actor["name"], o))
		}
		if len(seen) != 2 || seen[0] != "Ann Admin:" || seen[1] != "mail relay:"+want {
			t.Errorf("%s: CustomerMessaged events %v, want the admin's then the relay's %s", id, seen, want)
		}
	}
	for _, id := range []string{eve, frank} {
		for _, it := range b.customerHistory(t, id) {
			if it.Type == "CustomerMessaged" {
				t.Errorf("skipped customer %s has %v", id, it.Data)
			}
		}
	}

	// The audit shows who contacted whom.
	var audit struct {
		Items []historyItem `json:"items"`
	}
	b.admin.readAfter(r.header.Get("X-Ledger-Position"), "/v1/audit?type=CustomerMessaged&actor="+b.admin.userID).decode(t, &audit)
	if len(audit.Items) != 3 {
		t.Fatalf("audit: %d CustomerMessaged by the admin", len(audit.Items))
	}
	for _, it := range audit.Items {
		if it.Actor["user_id"] != b.admin.userID || it.Data["message_id"] != res.ID {
			t.Errorf("audit item %v by %v", it.Data, it.Actor)
		}
	}

	// A selection by filter, as in the bulk calls.
	r = b.admin.must(202, "POST", "/v1/customers/messages", map[string]any{
		"filter": map[string]string{"q": "dan"}, "subject": "Hi Dan", "body": "Only you."})
	if n := r.json(t)["recipients"]; n != float64(1) {
		t.Fatalf("by filter: %s", r.body)
	}

	// Nobody left to send to: still a message, with nothing to deliver.
	r = b.admin.must(202, "POST", "/v1/customers/messages", map[string]any{
		"customer_ids": []string{eve}, "subject": "Blocked", "body": "Never sent."})
	id := r.json(t)["id"].(string)
	if n := r.json(t)["recipients"]; n != float64(0) {
		t.Fatalf("only a blocked customer: %s", r.body)
	}
	b.admin.must(200, "GET", "/v1/messages/"+id, nil).decode(t, &st)
	if st != (messageState{ID: id, Subject: "Blocked"}) {
		t.Fatalf("message without recipients: %+v", st)
	}
}

func TestMessageRefusalsChangeNothing(t *testing.T) {
	srv := smtptest.Start(t)
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	carla := b.createCustomer(t, "Carla")
	before := b.admin.must(200, "GET", "/v1/customers/"+carla, nil).json(t)["version"]

	long := strings.Repeat("x", 20_001)
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"customer_ids": []string{carla}, "subject": "", "body": "b"}, "subject"},
		{map[string]any{"customer_ids": []string{carla}, "subject": "s", "body": "   "}, "body"},
		{map[string]any{"customer_ids": []string{carla}, "subject": "s\r\nBcc: all@example.com", "body": "b"}, "subject"},
		{map[string]any{"customer_ids": []string{carla}, "subject": "s\x00", "body": "b"}, "subject"},
		{map[string]any{"customer_ids": []string{carla}, "subject": "s", "body": "b\x00"}, "body"},
		{map[string]any{"customer_ids": []string{carla}, "subject": strings.Repeat("s", 201), "body": "b"}, "subject"},
		{map[string]any{"customer_ids": []string{carla}, "subject": "s", "body": long}, "body"},
		{map[string]any{"customer_ids": []string{}, "subject": "s", "body": "b"}, "customer_ids"},
		{map[string]any{"customer_ids": []string{"nope"}, "subject": "s", "body": "b"}, "customer_ids"},
		{map[string]any{"customer_ids": []string{carla}, "filter": map[string]string{"q": "c"}, "subject": "s", "body": "b"}, "filter"},
		{map[string]any{"customer_ids": []string{carla}, "subject": "s", "body": "b", "cc": "x"}, "cc"},
	} {
		r := b.admin.do("POST", "/v1/customers/messages", tc.body)
		if r.status != 400 || r.json(t)["field"] != tc.field {
			t.Errorf("%v: %d %s, want 400 on %s", tc.body, r.status, r.body, tc.field)
		}
	}
	many := make([]string, 10_001)
	for i := range many {
		many[i] = uuid.NewString()
	}
	if r := b.admin.do("POST", "/v1/customers/messages", map[string]any{"customer_ids": many, "subject": "s", "body": "b"}); r.status != 422 ||
		r.code() != "too_many_customers" || r.json(t)["count"] != float64(10_001) {
		t.Errorf("10,001 customers: %d %s", r.status, r.body)
	}
	member := b.createUser(t, "Mia Member", "member")
	if r := member.do("POST", "/v1/customers/messages", map[string]any{"customer_ids": []string{carla}, "subject": "s", "body": "b"}); r.status != 403 {
		t.Errorf("member: %d %s", r.status, r.body)
	}
	if after := b.admin.must(200, "GET", "/v1/customers/"+carla, nil).json(t)["version"]; after != before {
		t.Errorf("a refused message moved the customer from version %v to %v", before, after)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d e-mails sent by refused requests", n)
	}
}

func TestMessageWithoutEmailConfigured(t *testing.T) {
	plain := setup(t)
	cu := plain.createCustomer(t, "Carla")
	// As for invitations: 422, before anything is selected or written.
	if r := plain.admin.do("POST", "/v1/customers/messages", map[string]any{"customer_ids": []string{cu}, "subject": "s", "body": "b"}); r.status != 422 ||
		r.code() != "email_not_configured" {
		t.Errorf("without e-mail: %d %s", r.status, r.body)
	}
}

// TestMessageRetriedWithAnIdempotencyKeyIsSentOnce: a retry with the same
// key answers the first 202 and queues no second e-mail.
func TestMessageRetriedWithAnIdempotencyKeyIsSentOnce(t *testing.T) {
	srv := smtptest.Start(t)
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	carla := b.createCustomer(t, "Carla")
	req := map[string]any{"customer_ids": []string{carla}, "subject": "Once", "body": "Only once."}
	first := b.admin.must(202, "POST", "/v1/customers/messages", req, hdr{"Idempotency-Key": "msg-1"}).json(t)
	again := b.admin.must(202, "POST", "/v1/customers/messages", req, hdr{"Idempotency-Key": "msg-1"}).json(t)
	if first["id"] != again["id"] || again["recipients"] != float64(1) || first["position"] != again["position"] {
		t.Fatalf("retry answered %v, first %v", again, first)
	}
	if r := b.admin.do("POST", "/v1/customers/messages", map[string]any{"customer_ids": []string{carla}, "subject": "Other", "body": "b"},
		hdr{"Idempotency-Key": "msg-1"}); r.status != 422 || r.code() != "idempotency_key_reused" {
		t.Fatalf("same key, other body: %d %s", r.status, r.body)
	}
	srv.Wait(t, 1, 15*time.Second)
	var st messageState
	for deadline := time.Now().Add(10 * time.Second); ; {
		b.admin.must(200, "GET", "/v1/messages/"+first["id"].(string), nil).decode(t, &st)
		if st.Queued == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if st.Sent != 1 || st.Failed != 0 || len(srv.Messages()) != 1 {
		t.Fatalf("after a retry: %+v, %d e-mails", st, len(srv.Messages()))
	}
}
