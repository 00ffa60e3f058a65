package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/domain"
)

// AssignUser puts userID on the customer's team. Admins may assign anyone;
// members only themselves, when the policy lets them.
func (c *Commands) AssignUser(ctx context.Context, m Meta, customerID, userID string) (CustomerResult, error) {
	return c.selfServiceCommand(ctx, "AssignUser", m, customerID, userID,
		func(cu domain.Customer, _ string, user domain.User, pol domain.Policy) ([]domain.Event, error) {
			return cu.Assign(user, pol)
		})
}

// selfServiceCommand runs a command on userID's place in a team that a
// member may issue on themselves when the policy lets them (assign,
// unassign); admins may issue it on anyone.
func (c *Commands) selfServiceCommand(ctx context.Context, name string, m Meta, customerID, userID string,
	decide func(cu domain.Customer, uid string, user domain.User, pol domain.Policy) ([]domain.Event, error)) (CustomerResult, error) {
	ids, err := parseIDs("user", userID)
	if err != nil {
		return CustomerResult{}, err
	}
	// Refuse a member acting on someone else before touching the database;
	// the policy is only known once it is loaded.
	if err := domain.AuthorizeAssignment(m.Actor, domain.Policy{MembersCanSelfAssign: true}, ids[0]); err != nil {
		return CustomerResult{}, err
	}
	uid := ids[0]
	return c.customerCommand(ctx, name, m, customerID, ids,
		func(cu domain.Customer, users map[string]domain.User, pol domain.Policy) ([]domain.Event, error) {
			if err := domain.AuthorizeAssignment(m.Actor, pol, uid); err != nil {
				return nil, err
			}
			return decide(cu, uid, users[uid], pol)
		})
}
