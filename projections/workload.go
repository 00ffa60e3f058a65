package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/eventstore"
)

// Load is how many customers a user serves, and leads, as my_clients
// folded them (erased customers keep no rows there).
type Load struct {
	Customers int
	Leads     int
}

// qLoads ends with its WHERE, so the visibility condition can follow.
const qLoads = `SELECT m.user_id::text, count(*)::int, (count(*) FILTER (WHERE m.lead))::int
	FROM my_clients m WHERE m.tenant_id = $1`

// Loads is every user's load in the tenant, from my_clients; a user with
// no customers is absent (zero). A member who sees only the customers
// they serve counts only those in a colleague's load too (found by
// hostile testing: the users' list gave colleagues' whole counts).
func (q *Queries) Loads(ctx context.Context, tenantID string) (map[string]Load, error) {
	args := sqlArgs{tenantID}
	sql := qLoads
	if cond := visibleCond(ctx, &args, "m.customer_id"); cond != "" {
		sql += " AND " + cond
	}
	rows, err := q.db(ctx).Query(ctx, sql+" GROUP BY m.user_id", args...)
	if err != nil {
		return nil, fmt.Errorf("read loads: %w", err)
	}
	defer rows.Close()
	out := map[string]Load{}
	for rows.Next() {
		var id string
		var l Load
		if err := rows.Scan(&id, &l.Customers, &l.Leads); err != nil {
			return nil, fmt.Errorf("read loads: %w", err)
		}
		out[id] = l
	}
	return out, rows.Err()
}

// WorkloadItem is one user's row of the workload report.
type WorkloadItem struct {
	UserID    string     `json:"user_id"`
	Name      string     `json:"name"`
	Customers int        `json:"customers"`
	Leads     int        `json:"leads"`
	AwayUntil *time.Time `json:"away_until"`
}

// Workload is the workload report: every active user who can be assigned
// (admins and members), by name, and the customers with no team.
type Workload struct {
	Items      []WorkloadItem `json:"items"`
	Unassigned int            `json:"unassigned"`
}

const qWorkload = `SELECT u.id::text, u.name, coalesce(l.customers, 0)::int, coalesce(l.leads, 0)::int, u.away_until
	FROM users u LEFT JOIN (
		SELECT user_id, count(*) AS customers, count(*) FILTER (WHERE lead) AS leads
		FROM my_clients WHERE tenant_id = $1 GROUP BY user_id
	) l ON l.user_id = u.id
	WHERE u.tenant_id = $1 AND u.status = 'active' AND u.role <> 'auditor'
	ORDER BY u.name, u.id`

const qUnassigned = `SELECT count(*)::int FROM customer_list WHERE tenant_id = $1 AND assignees = '[]'`

// Workload reads the workload report from the team directory and the read
// models (my_clients for the counts, customer_list for the unassigned).
func (q *Queries) Workload(ctx context.Context, tenantID string) (Workload, error) {
	items, err := queryAll(ctx, q.pool, func(row pgx.CollectableRow) (WorkloadItem, error) {
		var it WorkloadItem
		err := row.Scan(&it.UserID, &it.Name, &it.Customers, &it.Leads, &it.AwayUntil)
		if it.AwayUntil != nil {
			t := it.AwayUntil.UTC()
			it.AwayUntil = &t
		}
		return it, err
	}, qWorkload, tenantID)
	if err != nil {
		return Workload{}, fmt.Errorf("read workload: %w", err)
	}
	w := Workload{Items: items}
	if err := q.pool.QueryRow(ctx, qUnassigned, tenantID).Scan(&w.Unassigned); err != nil {
		return Workload{}, fmt.Errorf("read unassigned customers: %w", err)
	}
	return w, nil
}

const qCountsOfMembers = `SELECT user_id::text, count(*)::int FROM my_clients
	WHERE tenant_id = $1 AND user_id = ANY($2::text[]::uuid[]) AND customer_id <> ALL($3::text[]::uuid[])
	GROUP BY user_id`

// CountsOf counts, for each of userIDs, the tenant's customers whose team
// has the user on it as far as my_clients has folded them, leaving out the
// customers with team events it may not have folded yet (lag, see
// TeamsOf), whose teams the caller must fold and count itself.
func CountsOf(ctx context.Context, tx *eventstore.Tx, tenantID string, userIDs []string) (counts map[string]int, lag []string, err error) {
	if lag, err = lagging(ctx, tx, tenantID); err != nil {
		return nil, nil, err
	}
	rows, err := tx.Query(ctx, qCountsOfMembers, tenantID, userIDs, lag)
	if err != nil {
		return nil, nil, fmt.Errorf("count the users' customers: %w", err)
	}
	defer rows.Close()
	counts = map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, nil, fmt.Errorf("count the users' customers: %w", err)
		}
		counts[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("count the users' customers: %w", err)
	}
	return counts, lag, nil
}
