package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// CreateGroup creates a group (admin only): GroupCreated in a stream of
// its own. Names are unique in the tenant, case-insensitively (the RuleError
// name_taken), by a claim taken in the append.
func (c *Commands) CreateGroup(ctx context.Context, m Meta, name string) (GroupResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return GroupResult{}, err
	}
	m, err := m.prepare()
	if err != nil {
		return GroupResult{}, err
	}
	return idempotent(ctx, c, m, func(idem *eventstore.Idempotency, replay *[]byte) (GroupResult, error) {
		var result GroupResult
		err := c.withRetry(ctx, "CreateGroup", false, func() error {
			return c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
				id := newID()
				events, err := domain.CreateGroup(id, name)
				if err != nil {
					return err
				}
				created := events[0].(domain.GroupCreated)
				result = GroupResult{ID: id, Name: created.Name, Version: 1}
				data, err := encode(events)
				if err != nil {
					return err
				}
				res, err := appendOrReplay(ctx, tx, eventstore.AppendRequest{
					TenantID:    m.TenantID,
					Streams:     []eventstore.StreamWrite{{StreamID: id, StreamType: streamGroup, ExpectedVersion: eventstore.NoStream, Events: data}},
					Claims:      []eventstore.Claim{groupClaim(id, created.Name)},
					Metadata:    m.metadata(),
					Idempotency: withIdempotency(idem, &result, func(p int64) { result.Position = p }),
					Now:         now(),
				}, replay)
				if err != nil {
					return translateClaim(err)
				}
				result.Position = res.Position
				return nil
			})
		})
		return result, err
	})
}
