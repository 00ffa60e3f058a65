package http_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
)

// noFormulaCells fails when any cell of a CSV export would start a formula
// in a spreadsheet.
func noFormulaCells(t *testing.T, what string, body []byte) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for i, rec := range recs {
		for j, cell := range rec {
			if cell != "" && strings.ContainsAny(cell[:1], "=+-@\t\r") {
				t.Fatalf("%s: row %d column %q begins a formula: %q", what, i, recs[0][j], cell)
			}
		}
	}
	return recs
}

func TestCorrelationIDsAreServerMade(t *testing.T) {
	b := setup(t)
	u := b.createUser(t, "=Uma One", "member")
	cust := b.admin.must(201, "POST", "/v1/customers", map[string]string{"first_name": "@Carla", "last_name": "-Client",
		"email": "carla@client.example", "phone": "+1 555 0100", "external_id": "=crm-42"}).json(t)["id"].(string)

	evil := `=HYPERLINK("http://evil.example/","x")`
	r := b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID}, hdr{"X-Request-ID": evil})
	if got := r.header.Get("X-Request-ID"); got == evil || got == "" {
		t.Fatalf("a request ID outside the allowed characters was echoed: %q", got)
	}
	// A well-formed client ID is echoed, but two commands sending it do not
	// share a correlation ID.
	first := b.admin.must(200, "POST", "/v1/customers/"+cust+"/block", nil, hdr{"X-Request-ID": "client-req:1"})
	if got := first.header.Get("X-Request-ID"); got != "client-req:1" {
		t.Fatalf("well-formed X-Request-ID not echoed: %q", got)
	}
	pos := b.admin.must(200, "POST", "/v1/customers/"+cust+"/unblock", nil, hdr{"X-Request-ID": "client-req:1"}).header.Get("X-Ledger-Position")

	var hist struct {
		Items []struct {
			Type          string `json:"type"`
			CorrelationID string `json:"correlation_id"`
		} `json:"items"`
	}
	b.admin.must(200, "GET", "/v1/customers/"+cust+"/history", nil).decode(t, &hist)
	seen := map[string]string{}
	for _, e := range hist.Items {
		if e.CorrelationID == "" || e.CorrelationID == evil || e.CorrelationID == "client-req:1" {
			t.Fatalf("%s carries a client-made correlation id %q", e.Type, e.CorrelationID)
		}
		if other, dup := seen[e.CorrelationID]; dup {
			t.Fatalf("%s and %s share correlation id %s", other, e.Type, e.CorrelationID)
		}
		seen[e.CorrelationID] = e.Type
	}
	if len(hist.Items) != 4 {
		t.Fatalf("history: %+v", hist)
	}

	audit := noFormulaCells(t, "audit CSV", b.admin.readAfter(pos, "/v1/audit", hdr{"Accept": "text/csv"}).body)
	customers := noFormulaCells(t, "customer CSV", b.admin.readAfter(pos, "/v1/customers", hdr{"Accept": "text/csv"}).body)
	if len(audit) < 5 || len(customers) != 2 || customers[1][5] != "'=crm-42" || customers[1][4] != "'+1 555 0100" {
		t.Fatalf("exports: audit %d rows, customers %q", len(audit), customers)
	}
}
