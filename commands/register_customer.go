package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// RegisterCustomer creates an active customer (admin only). Its email and
// external_id, when given, are unique in the tenant: a duplicate is the
// RuleError email_taken or external_id_taken.
func (c *Commands) RegisterCustomer(ctx context.Context, m Meta, p domain.Profile) (CustomerResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return CustomerResult{}, err
	}
	m, err := m.prepare()
	if err != nil {
		return CustomerResult{}, err
	}
	return idempotent(ctx, c, m, func(idem *eventstore.Idempotency, replay *[]byte) (CustomerResult, error) {
		var result CustomerResult
		err := c.withRetry(ctx, "RegisterCustomer", false, func() error {
			id := newID()
			events, err := domain.RegisterCustomer(id, m.TenantID, p)
			if err != nil {
				return err
			}
			reg := events[0].(domain.CustomerRegistered)
			at := now()
			cu := domain.Customer{TenantID: m.TenantID}
			for _, e := range events {
				cu.Apply(e, at)
			}
			result = CustomerResult{CustomerView: c.customerView(cu)}
			data, err := encode(events)
			if err != nil {
				return err
			}
			res, err := c.store.Append(ctx, eventstore.AppendRequest{
				TenantID:    m.TenantID,
				Streams:     []eventstore.StreamWrite{{StreamID: id, StreamType: streamCustomer, ExpectedVersion: eventstore.NoStream, Events: data}},
				Claims:      profileClaims(id, reg.Profile),
				Metadata:    m.metadata(),
				Idempotency: withIdempotency(idem, &result, func(p int64) { result.Position = p }),
				Now:         at,
			})
			if err != nil {
				return translateClaim(err)
			}
			if res.Replayed {
				*replay = res.Response
				return errReplayed
			}
			result.Position = res.Position
			return nil
		})
		return result, err
	})
}

// profileClaims reserves a customer's email and external_id.
func profileClaims(customerID string, p domain.Profile) []eventstore.Claim {
	var claims []eventstore.Claim
	if p.Email != "" {
		claims = append(claims, eventstore.Claim{Kind: claimCustomerEmail, Value: p.Email, OwnerID: customerID})
	}
	if p.ExternalID != "" {
		claims = append(claims, eventstore.Claim{Kind: claimCustomerExternalID, Value: p.ExternalID, OwnerID: customerID})
	}
	return claims
}
