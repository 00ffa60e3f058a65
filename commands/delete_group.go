package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/domain"
)

// DeleteGroup deletes a group (admin only): GroupDeleted ends its stream
// and frees its name. Its customers leave it without an event of their
// own (the read models stop showing a deleted group), and the group's
// stream keeps its history. A deleted group is not found afterwards.
func (c *Commands) DeleteGroup(ctx context.Context, m Meta, groupID string) (GroupResult, error) {
	return c.groupCommand(ctx, "DeleteGroup", m, groupID, func(g domain.Group) ([]domain.Event, error) {
		return g.Delete(), nil
	})
}
