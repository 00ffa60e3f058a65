package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/domain"
)

// MakeTeamLead makes userID, already on the team, its lead (admin only).
// Making the current lead lead again changes nothing and appends nothing.
func (c *Commands) MakeTeamLead(ctx context.Context, m Meta, customerID, userID string) (CustomerResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return CustomerResult{}, err
	}
	ids, err := parseIDs("user", userID)
	if err != nil {
		return CustomerResult{}, err
	}
	uid := ids[0]
	return c.customerCommand(ctx, "MakeTeamLead", m, customerID, ids,
		func(cu domain.Customer, _ map[string]domain.User, _ domain.Policy) ([]domain.Event, error) {
			return cu.MakeLead(uid)
		})
}
