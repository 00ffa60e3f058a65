package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/domain"
)

// BlockCustomer blocks the customer (admin only); the team is kept.
func (c *Commands) BlockCustomer(ctx context.Context, m Meta, customerID string) (CustomerResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return CustomerResult{}, err
	}
	return c.customerCommand(ctx, "BlockCustomer", m, customerID, nil,
		func(cu domain.Customer, _ map[string]domain.User, _ domain.Policy) ([]domain.Event, error) {
			return cu.Block()
		})
}

// UnblockCustomer returns a blocked customer to its status before blocking
// (admin only).
func (c *Commands) UnblockCustomer(ctx context.Context, m Meta, customerID string) (CustomerResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return CustomerResult{}, err
	}
	return c.customerCommand(ctx, "UnblockCustomer", m, customerID, nil,
		func(cu domain.Customer, _ map[string]domain.User, _ domain.Policy) ([]domain.Event, error) {
			return cu.Unblock()
		})
}
