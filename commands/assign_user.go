package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/domain"
)

// AssignUser puts userID on the customer's team. Admins may assign anyone;
// members only themselves, when the policy lets them.
func (c *Commands) AssignUser(ctx context.Context, m Meta, customerID, userID string) (CustomerResult, error) {
	ids, err := parseIDs("user", userID)
	if err != nil {
		return CustomerResult{}, err
	}
	// Refuse a member acting on someone else before touching the database.
	if err := domain.AuthorizeAssignment(m.Actor, domain.Policy{MembersCanSelfAssign: true}, ids[0]); err != nil {
		return CustomerResult{}, err
	}
	uid := ids[0]
	return c.customerCommand(ctx, "AssignUser", m, customerID, ids,
		func(cu domain.Customer, users map[string]domain.User, pol domain.Policy) ([]domain.Event, error) {
			if err := domain.AuthorizeAssignment(m.Actor, pol, uid); err != nil {
				return nil, err
			}
			return cu.Assign(users[uid], pol)
		})
}
