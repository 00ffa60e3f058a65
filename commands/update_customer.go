package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// ProfilePatch is a partial profile: nil fields are kept.
type ProfilePatch struct {
	FirstName, LastName, Email, Phone, ExternalID, Title *string
}

func (p ProfilePatch) apply(to domain.Profile) domain.Profile {
	for _, f := range []struct {
		v   *string
		dst *string
	}{{p.FirstName, &to.FirstName}, {p.LastName, &to.LastName}, {p.Email, &to.Email}, {p.Phone, &to.Phone}, {p.ExternalID, &to.ExternalID}, {p.Title, &to.Title}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	return to
}

// UpdateCustomer changes some of a customer's profile fields (admin only):
// one CustomerUpdated carrying the whole new profile, or nothing when no
// field changes. A changed email or external_id moves its uniqueness claim
// in the same transaction (email_taken, external_id_taken when another
// customer holds it). Honours If-Match.
func (c *Commands) UpdateCustomer(ctx context.Context, m Meta, customerID string, patch ProfilePatch) (CustomerResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return CustomerResult{}, err
	}
	m, err := m.prepare()
	if err != nil {
		return CustomerResult{}, err
	}
	cid, ok := parseID(customerID)
	if !ok {
		return CustomerResult{}, notFound("customer", customerID)
	}
	return transact(ctx, c, "UpdateCustomer", m, func(ctx context.Context, tx *cmdTx) (CustomerResult, error) {
		versions, err := lockCustomers(ctx, tx.Tx, m.TenantID, []string{cid}, forUpdate)
		if err != nil {
			return CustomerResult{}, err
		}
		version, ok := versions[cid]
		if !ok {
			return CustomerResult{}, notFound("customer", cid)
		}
		l, err := loadCustomers(ctx, c.keys, tx.Tx, m.TenantID, []string{cid})
		if err != nil {
			return CustomerResult{}, err
		}
		cu := l.customers[cid]
		if err := checkIfMatch(cu, m.IfMatch); err != nil {
			return CustomerResult{}, err
		}
		old := cu.Profile
		events, err := cu.UpdateProfile(patch.apply(old))
		if err != nil {
			return CustomerResult{}, err
		}
		at := now()
		for _, e := range events {
			cu.Apply(e, at)
		}
		if err := c.fillNames(ctx, tx.Tx, m.TenantID, teamIDs(cu)); err != nil {
			return CustomerResult{}, err
		}
		result := CustomerResult{CustomerView: c.customerView(cu), Position: l.lastPosition[cid]}
		if len(events) == 0 && !tx.keyed() {
			return result, nil
		}
		var claims, releases []eventstore.Claim
		if cu.Profile.Email != old.Email || cu.Profile.ExternalID != old.ExternalID {
			// Release the old values and claim the new ones (claiming
			// a value one owns is a no-op).
			releases = c.profileClaims(cid, old)
			claims = c.profileClaims(cid, cu.Profile)
		}
		keys, err := c.keys.Load(ctx, tx.Tx, []string{cid})
		if err != nil {
			return CustomerResult{}, err
		}
		data, err := encodeSealed(events, keys[cid])
		if err != nil {
			return CustomerResult{}, err
		}
		_, err = tx.appendSealed(ctx, eventstore.AppendRequest{
			TenantID: m.TenantID,
			Streams:  []eventstore.StreamWrite{{StreamID: cid, StreamType: streamCustomer, ExpectedVersion: version, Events: data}},
			Claims:   claims,
			Releases: releases,
			Metadata: m.metadata(),
			Now:      at,
		}, keys[cid], &result, &result.Position)
		return result, translateClaim(err)
	})
}
