package commands

import (
	"context"
	"fmt"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
	"github.com/assignment-ledger/ledger/projections"
)

// PolicyField names a policy field that PUT may leave out (contract v3):
// ChangePolicy then keeps its current value.
type PolicyField string

// KeepMaxCustomersPerUser keeps max_customers_per_user as it is.
const KeepMaxCustomersPerUser PolicyField = "max_customers_per_user"

// keepFields sets the fields of next named in keep to cur's.
func keepFields(next, cur domain.Policy, keep []PolicyField) domain.Policy {
	for _, f := range keep {
		if f == KeepMaxCustomersPerUser {
			next.MaxCustomersPerUser = cur.MaxCustomersPerUser
		}
	}
	return next
}

// ChangePolicy replaces the tenant's policy (admin only), but for the
// fields named in keep, which stay as they are. The same policy again
// appends nothing and answers the current one.
func (c *Commands) ChangePolicy(ctx context.Context, m Meta, next domain.Policy, keep ...PolicyField) (PolicyResult, error) {
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
				// Every command deciding on the policy now has committed, and
				// none starts deciding until this one has (qPolicyShared).
				if _, err := tx.Exec(ctx, qPolicyExclusive, m.TenantID); err != nil {
					return fmt.Errorf("lock the tenant's policy: %w", translatePg(err))
				}
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
				if next.MembersSee == "" {
					// Optional in a request (contract v3): absent is unchanged.
					next.MembersSee = t.Policy.MembersSee
				}
				decided, err := domain.ChangePolicy(t.Policy, keepFields(next, t.Policy, keep))
				if err != nil {
					return err
				}
				if len(decided) > 0 && next.MembersSee != t.Policy.MembersSee {
					// The read models' row-level security reads members_see
					// from tenants (migration visibility): written with the
					// event, in its transaction, so a read after the answer
					// is under the new rule, in every process.
					tag, err := tx.Exec(ctx, `UPDATE tenants SET members_see = $2 WHERE id = $1`, m.TenantID, string(next.MembersSee))
					if err != nil {
						return fmt.Errorf("record members_see: %w", err)
					}
					if tag.RowsAffected() != 1 {
						return fmt.Errorf("record members_see: tenant %s has no tenants row", m.TenantID)
					}
				}
				for _, e := range decided {
					t.Apply(e, now())
				}
				result = PolicyResult{Policy: t.Policy, Position: events[len(events)-1].Position}
				if max := t.Policy.MaxAssignees; max != nil {
					n, err := customersOverLimit(ctx, c.keys, tx, m.TenantID, *max)
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

// customersOverLimit counts the tenant's customers with more than max
// members: from the teams my_clients folded, and for the customers it may
// not have caught up with (a projection may lag) from their streams, folded
// here. Both folds are domain.Team's. Erased customers are not counted:
// they keep no team anyone can change.
func customersOverLimit(ctx context.Context, kr *keyring.Keyring, tx *eventstore.Tx, tenantID string, max int) (int, error) {
	over, lagging, err := projections.TeamsOverLimit(ctx, tx, tenantID, max)
	if err != nil {
		return 0, fmt.Errorf("count customers over the limit: %w", err)
	}
	n := len(over)
	if len(lagging) == 0 {
		return n, nil
	}
	l, err := loadCustomersWithErased(ctx, kr, tx, tenantID, lagging)
	if err != nil {
		return 0, fmt.Errorf("count customers over the limit: %w", err)
	}
	for _, c := range l.customers {
		if !c.Erased && len(c.Team) > max {
			n++
		}
	}
	return n, nil
}
