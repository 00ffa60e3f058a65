package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/domain"
)

// SetTeam makes the customer's team exactly userIDs in one append of the
// differences (Endear's toggles and one Save); lead names the lead ("" for
// the current one if kept, else the first listed under require_lead).
// Admins may set any team; members may only add or remove themselves, when
// the policy lets them. The listed users are share-locked like every
// assignment's, so a deactivation cannot slip between the decision and the
// commit; users only removed need no lock.
func (c *Commands) SetTeam(ctx context.Context, m Meta, customerID string, userIDs []string, lead string) (CustomerResult, error) {
	ids, err := parseIDs("user", userIDs...)
	if err != nil {
		return CustomerResult{}, err
	}
	if lead != "" {
		l, ok := parseID(lead)
		if !ok {
			return CustomerResult{}, notFound("user", lead)
		}
		lead = l
	}
	return c.customerCommand(ctx, "SetTeam", m, customerID, ids,
		func(cu domain.Customer, users map[string]domain.User, pol domain.Policy) ([]domain.Event, error) {
			team := make([]domain.User, len(ids))
			for i, id := range ids {
				team[i] = users[id]
			}
			return cu.SetTeamBy(m.Actor, team, lead, pol)
		})
}
