package commands

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// ChangePolicy replaces the tenant's policy (admin only). The same policy
// again appends nothing and answers the current one.
func (c *Commands) ChangePolicy(ctx context.Context, m Meta, next domain.Policy) (PolicyResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return PolicyResult{}, err
	}
	m, err := m.prepare()
	if err != nil {
		return PolicyResult{}, err
	}
	if err := next.Validate(); err != nil {
		return PolicyResult{}, err
	}
	return idempotent(ctx, c, m, func(idem *eventstore.Idempotency, replay *[]byte) (PolicyResult, error) {
		var result PolicyResult
		err := c.withRetry(ctx, "ChangePolicy", false, func() error {
			return c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
				version, err := tx.LockStream(ctx, m.TenantID)
				if err != nil {
					return err
				}
				streams, err := readEvents(ctx, c.keys, tx, m.TenantID, []string{m.TenantID})
				if err != nil {
					return err
				}
				events := streams[m.TenantID]
				t, err := tenantOf(events)
				if err != nil {
					return err
				}
				decided, err := domain.ChangePolicy(t.Policy, next)
				if err != nil {
					return err
				}
				for _, e := range decided {
					t.Apply(e, now())
				}
				result = PolicyResult{Policy: t.Policy, Position: events[len(events)-1].Position}
				if max := t.Policy.MaxAssignees; max != nil {
					n, err := customersOverLimit(ctx, tx, m.TenantID, *max)
					if err != nil {
						return err
					}
					result.CustomersOverLimit = &n
				}
				if len(decided) == 0 && idem == nil {
					return nil
				}
				data, err := encode(decided)
				if err != nil {
					return err
				}
				res, err := appendOrReplay(ctx, tx, eventstore.AppendRequest{
					TenantID: m.TenantID,
					Streams:  []eventstore.StreamWrite{{StreamID: m.TenantID, StreamType: streamTenant, ExpectedVersion: version, Events: data}},
					Metadata: m.metadata(),
					Idempotency: withIdempotency(idem, &result, func(p int64) {
						if p != 0 {
							result.Position = p
						}
					}),
				}, replay)
				if err != nil {
					return err
				}
				if res.Position != 0 {
					result.Position = res.Position
				}
				return nil
			})
		})
		return result, err
	})
}

// qCustomersOverLimit counts the tenant's customers with more than $2
// members, from the events themselves (a projection may lag): a pair's
// membership is what its last team event in the customer's stream made it.
const qCustomersOverLimit = `
WITH touches AS (
	SELECT stream_id, data->>'user_id' AS user_id, stream_version, type = 'UserAssigned' AS member
	  FROM events WHERE tenant_id = $1 AND type IN ('UserAssigned', 'UserUnassigned', 'TeamMemberReplaced')
	UNION ALL
	SELECT stream_id, data->>'with_user_id', stream_version, true
	  FROM events WHERE tenant_id = $1 AND type = 'TeamMemberReplaced'
), now AS (
	SELECT DISTINCT ON (stream_id, user_id) stream_id, member
	  FROM touches ORDER BY stream_id, user_id, stream_version DESC
)
SELECT count(*) FROM (SELECT stream_id FROM now WHERE member GROUP BY stream_id HAVING count(*) > $2) over_limit`

func customersOverLimit(ctx context.Context, tx *eventstore.Tx, tenantID string, max int) (int, error) {
	rows, err := tx.Query(ctx, qCustomersOverLimit, tenantID, max)
	if err != nil {
		return 0, fmt.Errorf("count customers over the limit: %w", err)
	}
	n, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int])
	if err != nil {
		return 0, fmt.Errorf("count customers over the limit: %w", err)
	}
	return n, nil
}
