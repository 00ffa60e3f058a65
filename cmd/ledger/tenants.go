package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// runTenants lists the tenants, so that a user of `ledger history` can find
// the --tenant it needs.
func runTenants(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "tenants", "tenants",
		"Lists the tenants in DATABASE_URL's database: ID (the --tenant of `ledger history`), name,\n"+
			"when it was created and how many active users it has.")
	if err := parse(fs, args); err != nil {
		return err
	}
	_, pool, _, err := connect(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	created, err := eventstore.New(pool).EventsOfType(ctx, domain.TypeTenantCreated)
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	active := map[string]int64{}
	rows, err := pool.Query(ctx, `SELECT tenant_id::text, count(*) FROM users WHERE status = 'active' GROUP BY 1`)
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return fmt.Errorf("list tenants: %w", err)
		}
		active[id] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT ID\tNAME\tCREATED\tACTIVE USERS")
	for _, e := range created {
		ev, err := domain.DecodeEvent(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return fmt.Errorf("list tenants: tenant %s: %w", e.TenantID, err)
		}
		tc, _ := ev.(domain.TenantCreated)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", e.TenantID, tc.Name, e.RecordedAt.UTC().Format(time.RFC3339), active[e.TenantID])
	}
	return tw.Flush()
}
