package projections

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/eventstore"
)

// The team reads answer from my_clients, the teams the one team fold
// (domain.Team) wrote, and name besides every customer that fold may not
// have caught up with: those with a team event past my_clients'
// checkpoint (read first, so a checkpoint that moves meanwhile only names
// more customers). Every event up to the checkpoint was committed and
// applied (it only moves past transactions that had ended), and each
// customer's my_clients rows and the checkpoint are written by one
// statement, so a customer without a team event past it has exactly the
// team my_clients shows. The caller folds the lagging ones itself from
// their streams.

const (
	qMyClientsCheckpoint = `SELECT coalesce(max(last_transaction_id), '0'::xid8)::text, coalesce(max(last_position), 0)
	 FROM projection_checkpoints WHERE consumer_group = 'my_clients'`

	qCustomersOfMember = `SELECT customer_id::text FROM my_clients WHERE tenant_id = $1 AND user_id = $2::text::uuid`

	qTeamsOverLimit = `SELECT customer_id::text FROM my_clients
	 WHERE tenant_id = $1 AND customer_id <> ALL($3::text[]::uuid[])
	 GROUP BY customer_id HAVING count(*) > $2`
)

// lagging names the tenant's customers with team events my_clients may not
// have applied yet.
func lagging(ctx context.Context, tx *eventstore.Tx, tenantID string) ([]string, error) {
	var txid string
	var c eventstore.Cursor
	if err := tx.QueryRow(ctx, qMyClientsCheckpoint).Scan(&txid, &c.Position); err != nil {
		return nil, fmt.Errorf("read my_clients' checkpoint: %w", err)
	}
	var err error
	if c.TransactionID, err = strconv.ParseUint(txid, 10, 64); err != nil {
		return nil, fmt.Errorf("read my_clients' checkpoint: %w", err)
	}
	return tx.StreamsWithEventsAfter(ctx, tenantID, teamEventTypes, c)
}

// TeamsOf names the tenant's customers whose team has userID on it as far
// as my_clients has folded them (up to date), and the customers with team
// events it may not have folded yet (lagging), whose teams the caller
// must fold itself. Erased customers keep no my_clients rows.
func TeamsOf(ctx context.Context, tx *eventstore.Tx, tenantID, userID string) (upToDate, lag []string, err error) {
	if lag, err = lagging(ctx, tx, tenantID); err != nil {
		return nil, nil, err
	}
	if upToDate, err = collectIDs(tx.Query(ctx, qCustomersOfMember, tenantID, userID)); err != nil {
		return nil, nil, fmt.Errorf("read the user's teams: %w", err)
	}
	return upToDate, lag, nil
}

// TeamsOverLimit names the tenant's up-to-date customers (see TeamsOf)
// with more than max members, and the lagging ones, whose teams the caller
// must count itself.
func TeamsOverLimit(ctx context.Context, tx *eventstore.Tx, tenantID string, max int) (over, lag []string, err error) {
	if lag, err = lagging(ctx, tx, tenantID); err != nil {
		return nil, nil, err
	}
	if over, err = collectIDs(tx.Query(ctx, qTeamsOverLimit, tenantID, max, lag)); err != nil {
		return nil, nil, fmt.Errorf("read the teams over the limit: %w", err)
	}
	return over, lag, nil
}

func collectIDs(rows pgx.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
