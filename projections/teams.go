package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Querier runs a query in the caller's transaction: the team reads below
// are taken inside a command's, beside its locks.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// The team reads answer from my_clients, the teams the one team fold
// (domain.Team) wrote, and name besides every customer that fold may not
// have caught up with: those with a team event past my_clients'
// checkpoint. Every event up to the checkpoint was committed and applied
// (it only moves past transactions that had ended), and each customer's
// my_clients rows and the checkpoint are written by one statement, so a
// customer without a team event past it has exactly the team my_clients
// shows. The caller folds the lagging ones itself from their streams.
const qLaggingTeams = `lagging AS (
	SELECT DISTINCT e.stream_id AS customer_id FROM events e
	 WHERE e.tenant_id = $1 AND e.type IN ('UserAssigned', 'UserUnassigned', 'TeamLeadChanged', 'TeamMemberReplaced')
	   AND (e.transaction_id, e.position) > (
	       SELECT coalesce(max(c.last_transaction_id), '0'::xid8), coalesce(max(c.last_position), 0)
	         FROM projection_checkpoints c WHERE c.consumer_group = 'my_clients'))`

const (
	qCustomersOfMember = `WITH ` + qLaggingTeams + `
SELECT m.customer_id::text, false FROM my_clients m WHERE m.tenant_id = $1 AND m.user_id = $2::text::uuid
UNION
SELECT customer_id::text, true FROM lagging`

	qTeamsOverLimit = `WITH ` + qLaggingTeams + `
SELECT o.customer_id::text, false FROM my_clients o
 WHERE o.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM lagging l WHERE l.customer_id = o.customer_id)
 GROUP BY o.customer_id HAVING count(*) > $2
UNION ALL
SELECT customer_id::text, true FROM lagging`
)

// TeamsOf names the tenant's customers whose team has userID on it as far
// as my_clients has folded them (up to date), and the customers with team
// events it may not have folded yet (lagging), whose teams the caller
// must fold itself. Erased customers keep no my_clients rows.
func TeamsOf(ctx context.Context, q Querier, tenantID, userID string) (upToDate, lagging []string, err error) {
	upToDate, lagging, err = collectTeams(q.Query(ctx, qCustomersOfMember, tenantID, userID))
	if err != nil {
		return nil, nil, fmt.Errorf("read the user's teams: %w", err)
	}
	return upToDate, lagging, nil
}

// TeamsOverLimit names the tenant's up-to-date customers (see TeamsOf)
// with more than max members, and the lagging ones, whose teams the caller
// must count itself.
func TeamsOverLimit(ctx context.Context, q Querier, tenantID string, max int) (over, lagging []string, err error) {
	over, lagging, err = collectTeams(q.Query(ctx, qTeamsOverLimit, tenantID, max))
	if err != nil {
		return nil, nil, fmt.Errorf("read the teams over the limit: %w", err)
	}
	return over, lagging, nil
}

func collectTeams(rows pgx.Rows, err error) (upToDate, lagging []string, _ error) {
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var lags bool
		if err := rows.Scan(&id, &lags); err != nil {
			return nil, nil, err
		}
		if lags {
			lagging = append(lagging, id)
		} else {
			upToDate = append(upToDate, id)
		}
	}
	return upToDate, lagging, rows.Err()
}
