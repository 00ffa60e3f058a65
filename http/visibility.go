package http

import (
	"context"
	"errors"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/projections"
)

// withViewer makes the authenticated caller the viewer of every read model
// read under ctx (projections.Viewer: the reads run as ledger_reader with
// the caller's tenant, user and role, and row-level security applies).
// Set once, by requireAuth and the console's guard, so no handler can read
// the read models as anyone but its caller.
func withViewer(ctx context.Context, p Principal) context.Context {
	return projections.WithViewer(ctx, projections.ViewerFor(p.TenantID, p.Actor))
}

// errUnseen is how a customer the caller may not see answers: exactly as
// an unknown ID does (404 not_found, same body).
var errUnseen = commands.ErrNotFound

// seeCustomer answers errUnseen when the caller, a member under
// members_see "assigned", is not on the team of customer c (read from its
// stream, so as current as the profile shown).
func (s *Server) seeCustomer(ctx context.Context, c commands.CustomerView) error {
	team := make([]string, len(c.Assignees))
	for i, a := range c.Assignees {
		team[i] = a.UserID
	}
	ok, err := s.q.SeesTeam(ctx, team)
	if err != nil {
		return err
	}
	if !ok {
		return errUnseen
	}
	return nil
}

// seeCustomerID is seeCustomer for a customer known by ID, for reads that
// do not load its view themselves (history, assignees). An erased customer
// has no team: only a viewer who sees all sees its remains.
func (s *Server) seeCustomerID(ctx context.Context, customerID string) error {
	if ok, err := s.q.SeesTeam(ctx, nil); err != nil || ok {
		return err
	}
	c, err := s.cmd.GetCustomer(ctx, principal(ctx).TenantID, customerID)
	if errors.Is(err, commands.ErrErased) {
		return errUnseen
	}
	if err != nil {
		return err
	}
	return s.seeCustomer(ctx, c)
}
