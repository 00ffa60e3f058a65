package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/domain"
)

// ReplaceTeamMember hands userID's place on the team, lead flag included,
// to withUserID in one event (admin only).
func (c *Commands) ReplaceTeamMember(ctx context.Context, m Meta, customerID, userID, withUserID string) (CustomerResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return CustomerResult{}, err
	}
	ids, err := parseIDs("user", userID, withUserID)
	if err != nil {
		return CustomerResult{}, err
	}
	uid, with := ids[0], ids[1]
	return c.customerCommand(ctx, "ReplaceTeamMember", m, customerID, ids,
		func(cu domain.Customer, users map[string]domain.User, pol domain.Policy) ([]domain.Event, error) {
			return cu.Replace(uid, users[with], pol)
		})
}
