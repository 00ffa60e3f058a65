package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"
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
	rows, err := pool.Query(ctx, `
SELECT e.tenant_id::text, e.data->>'name', e.recorded_at,
       (SELECT count(*) FROM users u WHERE u.tenant_id = e.tenant_id AND u.status = 'active')
FROM events e WHERE e.type = 'TenantCreated' ORDER BY e.position`)
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT ID\tNAME\tCREATED\tACTIVE USERS")
	for rows.Next() {
		var id, name string
		var at time.Time
		var users int64
		if err := rows.Scan(&id, &name, &at, &users); err != nil {
			return fmt.Errorf("list tenants: %w", err)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", id, name, at.UTC().Format(time.RFC3339), users)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	return tw.Flush()
}
