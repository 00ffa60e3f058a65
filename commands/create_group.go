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
	return transact(ctx, c, "CreateGroup", m, func(ctx context.Context, tx *cmdTx) (GroupResult, error) {
		id := newID()
		events, err := domain.CreateGroup(id, name)
		if err != nil {
			return GroupResult{}, err
		}
		created := events[0].(domain.GroupCreated)
		result := GroupResult{ID: id, Name: created.Name, Version: 1}
		data, err := encode(events)
		if err != nil {
			return GroupResult{}, err
		}
		_, err = tx.append(ctx, eventstore.AppendRequest{
			TenantID: m.TenantID,
			Streams:  []eventstore.StreamWrite{{StreamID: id, StreamType: streamGroup, ExpectedVersion: eventstore.NoStream, Events: data}},
			Claims:   []eventstore.Claim{groupClaim(id, created.Name)},
			Metadata: m.metadata(),
			Now:      now(),
		}, &result, &result.Position)
		return result, translateClaim(err)
	})
}
