package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/domain"
)

// UnassignUser takes userID off the customer's team. Admins may unassign
// anyone; members only themselves, when the policy lets them.
func (c *Commands) UnassignUser(ctx context.Context, m Meta, customerID, userID string) (CustomerResult, error) {
	return c.selfServiceCommand(ctx, "UnassignUser", m, customerID, userID,
		func(cu domain.Customer, uid string, _ domain.User, pol domain.Policy) ([]domain.Event, error) {
			return cu.Unassign(uid, pol)
		})
}
