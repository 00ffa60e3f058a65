package commands

import (
	"context"

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
				streams, err := readEvents(ctx, tx, []string{m.TenantID})
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
				if len(decided) == 0 && idem == nil {
					return nil
				}
				data, err := encode(decided)
				if err != nil {
					return err
				}
				res, err := tx.Append(ctx, eventstore.AppendRequest{
					TenantID: m.TenantID,
					Streams:  []eventstore.StreamWrite{{StreamID: m.TenantID, StreamType: streamTenant, ExpectedVersion: version, Events: data}},
					Metadata: m.metadata(),
					Idempotency: withIdempotency(idem, &result, func(p int64) {
						if p != 0 {
							result.Position = p
						}
					}),
				})
				if err != nil {
					return err
				}
				if res.Replayed {
					*replay = res.Response
					return errReplayed
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
