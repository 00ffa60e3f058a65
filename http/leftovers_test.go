package http_test

import (
	"testing"
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
