package http_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Right after a 10,001-row import into a fresh tenant (the read model
// caught up with its position), a bulk dry run selecting 10 customers by
// q answers at once. It used to wait out the request limit now and then:
// the projection had just written 10,001 rows that no ANALYZE had seen, so
// the planner, believing customer_search tiny, walked the list in order and
// scanned customer_search whole for each row (10,001 × 10,001 LIKE tests).
func TestBulkDryRunRightAfterABigImport(t *testing.T) {
	b := setup(t, setupOpts{serial: true})
	var file strings.Builder
	file.WriteString("First Name,Last Name,Email,Phone Number,Team\n")
	for i := range 10_001 {
		fmt.Fprintf(&file, "Bulk%05d,Client,bulk%05d@client.example,,\n", i, i)
	}
	imp := b.admin.csv("POST", "/v1/clients/import", file.String())
	if imp.status != 200 {
		t.Fatalf("import: %d %.300s", imp.status, imp.body)
	}
	// As the client did: wait until the list answers at the import's
	// position (each try waits at most 5 s).
	waitFor(t, 2*time.Minute, func() bool {
		return b.admin.do("GET", "/v1/customers?limit=1", nil, hdr{"X-Min-Position": imp.header.Get("X-Ledger-Position")}).status == 200
	})
	// The planner knows the tables' size by then.
	for _, table := range []string{"customer_list", "customer_search"} {
		var tuples float64
		if err := b.pool.QueryRow(context.Background(), `SELECT reltuples FROM pg_class WHERE oid = $1::regclass`, table).Scan(&tuples); err != nil {
			t.Fatal(err)
		}
		if tuples < 5000 {
			t.Errorf("%s: the statistics know of %.0f rows of 10,001", table, tuples)
		}
	}
	var plan []string
	rows, err := b.pool.Query(context.Background(), `EXPLAIN SELECT c.customer_id FROM customer_list c WHERE c.tenant_id = $1
		AND EXISTS (SELECT 1 FROM customer_search s WHERE s.customer_id = c.customer_id AND s.tenant_id = c.tenant_id AND s.search LIKE '%bulk0000%')
		ORDER BY c.created_at, c.customer_id LIMIT 1001`, b.tenant)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		_ = rows.Scan(&line)
		plan = append(plan, line)
	}
	rows.Close()
	t.Logf("plan:\n%s", strings.Join(plan, "\n"))
	for i := range 5 {
		start := time.Now()
		r := b.admin.do("POST", "/v1/customers/bulk", `{"action":"block","filter":{"q":"bulk0000"},"dry_run":true}`)
		t.Logf("dry run %d: %d in %s", i, r.status, time.Since(start))
		if r.status != 200 {
			t.Fatalf("dry run %d: %d %.400s", i, r.status, r.body)
		}
	}
}
