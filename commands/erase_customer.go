package commands

import (
	"context"
	"errors"

	"github.com/assignment-ledger/ledger/domain"
)

// EraseCustomer is DELETE /v1/customers/{id} (admin only): the bulk action
// "delete" on one customer, so both run the same decision and the same
// append. It appends CustomerErased and, in the same transaction, destroys
// the customer's data key (crypto-shredding: the personal fields of its
// events can no longer be opened, the events keep their bytes and hashes)
// and deletes its uniqueness claims, invitations and outbox rows, and
// scrubs the idempotency records whose answers name it (their keys stay
// used: a retry answers eventstore.ErrReplayUnavailable). An unknown customer is
// ErrNotFound, one erased already ErrErased; honours If-Match.
func (c *Commands) EraseCustomer(ctx context.Context, m Meta, customerID string) (int64, error) {
	id, ok := parseID(customerID)
	if !ok {
		return 0, notFound("customer", customerID)
	}
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return 0, err
	}
	res, err := c.BulkCustomers(ctx, m, CustomerBulkRequest{Action: domain.CustomerActionDelete, CustomerIDs: []string{id}, IfMatch: m.IfMatch})
	var rejected *CustomerBulkRejectedError
	if errors.As(err, &rejected) && len(rejected.Errors) == 1 && rejected.Errors[0].Code == CodeNotFound {
		return 0, notFound("customer", id)
	}
	if err != nil {
		return 0, err
	}
	if len(res.Changed) == 0 {
		return 0, ErrErased // erased already: a replay of the first answer has it changed
	}
	return res.Position, nil
}
