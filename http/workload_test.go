package http_test

import (
	"bytes"
	"encoding/csv"
	"slices"
	"testing"

	"github.com/xuri/excelize/v2"
)

// TestWorkloadReport: GET /v1/reports/workload answers customers and leads
// per active assignable user with away_until, and the unassigned count, in
// JSON, CSV and XLSX (the same rows); admins and auditors read it, members
// do not.
func TestWorkloadReport(t *testing.T) {
	b := setup(t)
	mia := b.createUser(t, "Mia Member", "member")
	auditor := b.createUser(t, "Aldo Auditor", "auditor")
	gone := b.createUser(t, "Gus Gone", "member")
	b.admin.must(200, "POST", "/v1/users/"+gone.userID+"/deactivate", map[string]any{})
	b.admin.must(200, "PATCH", "/v1/users/"+mia.userID, map[string]any{"away_until": "2030-01-02T03:04:05Z"})
	c1, c2 := b.createCustomer(t, "Una"), b.createCustomer(t, "Uli")
	b.createCustomer(t, "Unassigned")
	b.admin.must(200, "POST", "/v1/customers/"+c1+"/assignees", map[string]string{"user_id": mia.userID})
	b.admin.must(200, "POST", "/v1/customers/"+c1+"/assignees", map[string]string{"user_id": b.admin.userID})
	b.admin.must(200, "PUT", "/v1/customers/"+c1+"/lead", map[string]string{"user_id": mia.userID})
	r := b.admin.must(200, "POST", "/v1/customers/"+c2+"/assignees", map[string]string{"user_id": mia.userID})
	pos := hdr{"X-Min-Position": r.header.Get("X-Ledger-Position")}

	var wl struct {
		Items []struct {
			UserID    string  `json:"user_id"`
			Name      string  `json:"name"`
			Customers int     `json:"customers"`
			Leads     int     `json:"leads"`
			AwayUntil *string `json:"away_until"`
		} `json:"items"`
		Unassigned int `json:"unassigned"`
	}
	auditor.must(200, "GET", "/v1/reports/workload", nil, pos).decode(t, &wl)
	if len(wl.Items) != 2 || wl.Unassigned != 1 {
		t.Fatalf("workload: %+v", wl)
	}
	ann, m := wl.Items[0], wl.Items[1]
	if ann.Name != "Ann Admin" || ann.Customers != 1 || ann.Leads != 0 || ann.AwayUntil != nil ||
		m.UserID != mia.userID || m.Customers != 2 || m.Leads != 1 || m.AwayUntil == nil || *m.AwayUntil != "2030-01-02T03:04:05Z" {
		t.Fatalf("rows: %+v", wl.Items)
	}
	want := [][]string{{"user_id", "name", "customers", "leads", "away_until"},
		{b.admin.userID, "Ann Admin", "1", "0", ""},
		{mia.userID, "Mia Member", "2", "1", "2030-01-02T03:04:05Z"},
		{"", "(unassigned)", "1", "", ""}}

	c := b.admin.must(200, "GET", "/v1/reports/workload", nil, hdr{"Accept": "text/csv"})
	rows, err := csv.NewReader(bytes.NewReader(c.body)).ReadAll()
	if err != nil || !slices.EqualFunc(rows, want, slices.Equal) {
		t.Fatalf("csv %v: %q", err, rows)
	}
	x := b.admin.must(200, "GET", "/v1/reports/workload?format=xlsx", nil)
	if ct := x.header.Get("Content-Type"); ct != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" {
		t.Fatalf("content type %q", ct)
	}
	f, err := excelize.OpenReader(bytes.NewReader(x.body))
	if err != nil {
		t.Fatal(err)
	}
	xrows, err := f.GetRows("Workload")
	if err != nil {
		t.Fatal(err)
	}
	// excelize drops trailing empty cells.
	for i := range want {
		for len(want[i]) > 0 && want[i][len(want[i])-1] == "" {
			want[i] = want[i][:len(want[i])-1]
		}
	}
	if !slices.EqualFunc(xrows, want, slices.Equal) {
		t.Fatalf("xlsx: %q", xrows)
	}
	if r := mia.do("GET", "/v1/reports/workload", nil); r.status != 403 {
		t.Fatalf("member: %d", r.status)
	}
	if r := b.admin.do("GET", "/v1/reports/workload?format=pdf", nil); r.status != 400 {
		t.Fatalf("pdf: %d", r.status)
	}
}
