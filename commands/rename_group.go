package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/domain"
)

// RenameGroup renames a group (admin only); the new name must be free
// (name_taken). The same name again appends nothing.
func (c *Commands) RenameGroup(ctx context.Context, m Meta, groupID, name string) (GroupResult, error) {
	return c.groupCommand(ctx, "RenameGroup", m, groupID, func(g domain.Group) ([]domain.Event, error) {
		return g.Rename(name)
	})
}
