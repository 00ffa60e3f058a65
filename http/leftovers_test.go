package http_test

import (
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/internal/smtptest"
)

// TestBulkEditListsAnErasedCustomerAsABadPair is issue 25 item 11: a bulk
// edit naming an erased customer answered 410 for the whole call; it lists
// the erased customer's pairs in the 409 report with code erased, beside
// every other bad pair, and the dry run reports them alike.
func TestBulkEditListsAnErasedCustomerAsABadPair(t *testing.T) {
	b := setup(t)
	u1 := b.createUser(t, "Uma One", "member")
	kept, erased := b.createCustomer(t, "Kept"), b.createCustomer(t, "Erased")
	b.admin.must(204, "DELETE", "/v1/customers/"+erased, nil)
	unknown := "01a00000-0000-7000-8000-000000000000"
	before := b.countEvents(t)

	req := map[string]any{"action": "add", "customer_ids": []string{kept, erased, unknown}, "user_ids": []string{u1.userID}}
	r := b.admin.do("POST", "/v1/assignments/bulk", req)
	var refused struct {
		Code   string `json:"code"`
		Errors []struct {
			CustomerID string `json:"customer_id"`
			UserID     string `json:"user_id"`
			Code       string `json:"code"`
		} `json:"errors"`
	}
	r.decode(t, &refused)
	if r.status != 409 || refused.Code != "bulk_edit_refused" || len(refused.Errors) != 2 {
		t.Fatalf("bulk edit naming an erased customer: %d %s", r.status, r.body)
	}
	codes := map[string]string{}
	for _, e := range refused.Errors {
		if e.UserID != u1.userID {
			t.Fatalf("pair %+v", e)
		}
		codes[e.CustomerID] = e.Code
	}
	if codes[erased] != "erased" || codes[unknown] != "not_found" {
		t.Fatalf("pair codes %v: %s", codes, r.body)
	}
	if n := b.countEvents(t); n != before {
		t.Fatalf("a refused bulk edit appended %d events", n-before)
	}

	req["dry_run"] = true
	var plan struct {
		ToBeAssigned []map[string]string `json:"to_be_assigned"`
		Errors       []map[string]any    `json:"errors"`
	}
	b.admin.must(200, "POST", "/v1/assignments/bulk", req).decode(t, &plan)
	if len(plan.ToBeAssigned) != 1 || plan.ToBeAssigned[0]["customer_id"] != kept || len(plan.Errors) != 2 {
		t.Fatalf("dry run %+v", plan)
	}
}

// TestDeliveryRecordsDoNotStaleAnETag is issue 25 item 11: the relay's
// InvitationEmailed (and a message's CustomerMessaged) moved the customer's
// version after the command answered, so If-Match with the ETag of that
// answer got 412 for a change the client did not make. The ETag stays the
// stream version, but If-Match accepts any version since the customer's
// last change; a real change still makes an older ETag fail.
func TestDeliveryRecordsDoNotStaleAnETag(t *testing.T) {
	srv := smtptest.Start(t)
	b := setup(t, setupOpts{smtpURL: srv.URL()})
	bob := b.createUser(t, "Bob Baker", "member")
	zoe := b.createUser(t, "Zoë Zed", "member")
	r := b.admin.must(201, "POST", "/v1/clients/invitations", map[string]any{"first_name": "Etta", "last_name": "Tag",
		"email": "etta@client.example", "team": []string{bob.userID}, "send_email": true})
	first := r.header.Get("ETag")
	id := r.json(t)["customer"].(map[string]any)["id"].(string)
	srv.Wait(t, 1, 15*time.Second)
	waitFor(t, 10*time.Second, func() bool {
		var st invitationState
		b.admin.must(200, "GET", "/v1/customers/"+id, nil).decode(t, &st)
		return st.Invitation != nil && st.Invitation.Email == "sent"
	})
	now := b.admin.must(200, "GET", "/v1/customers/"+id, nil).header.Get("ETag")
	if now == first {
		t.Fatalf("the delivery record did not move the stream version (ETag %s): the test proves nothing", now)
	}

	// A command with the invitation answer's ETag goes through.
	r = b.admin.must(200, "PATCH", "/v1/customers/"+id, map[string]any{"title": "Dr"}, hdr{"If-Match": first})
	changed := r.header.Get("ETag")
	// Now the customer changed: the old ETag is stale, the new one is not.
	if r := b.admin.do("POST", "/v1/customers/"+id+"/assignees", map[string]any{"user_id": zoe.userID}, hdr{"If-Match": first}); r.status != 412 {
		t.Fatalf("If-Match older than a change: %d %s", r.status, r.body)
	}
	r = b.admin.must(200, "POST", "/v1/customers/"+id+"/assignees", map[string]any{"user_id": zoe.userID}, hdr{"If-Match": changed})

	// A message's delivery record does the same; erasure honours it too.
	afterAssign := r.header.Get("ETag")
	msg := b.admin.must(202, "POST", "/v1/customers/messages", map[string]any{"customer_ids": []string{id}, "subject": "Hi", "body": "News"}).json(t)
	srv.Wait(t, 2, 15*time.Second)
	waitFor(t, 10*time.Second, func() bool {
		var counts struct{ Sent int }
		b.admin.must(200, "GET", "/v1/messages/"+msg["id"].(string), nil).decode(t, &counts)
		return counts.Sent == 1
	})
	b.admin.must(204, "DELETE", "/v1/customers/"+id, nil, hdr{"If-Match": afterAssign})
}
