package commands

import (
	"context"
	"time"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
)

// RegisterCustomer creates an active customer (admin only) with its first
// team, in one batch of events: CustomerRegistered, then UserAssigned for
// each of team in order (the first is lead under require_lead). Under
// require_assignee the team must not be empty (team_required). The team's
// users must exist in the tenant (else ErrNotFound) and be active. Its
// email and external_id, when given, are unique in the tenant: a duplicate
// is the RuleError email_taken or external_id_taken.
func (c *Commands) RegisterCustomer(ctx context.Context, m Meta, p domain.Profile, team ...string) (CustomerResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return CustomerResult{}, err
	}
	m, err := m.prepare()
	if err != nil {
		return CustomerResult{}, err
	}
	team, err = parseIDs("user", team...)
	if err != nil {
		return CustomerResult{}, err
	}
	return transact(ctx, c, "RegisterCustomer", m, func(ctx context.Context, tx *cmdTx) (CustomerResult, error) {
		var result CustomerResult
		members, pol, err := teamAndPolicy(ctx, tx.Tx, m.TenantID, team)
		if err != nil {
			return result, err
		}
		id := newID()
		// Without a team, the assignment rules choose one (rule_apply.go).
		rules := c.newRuleApplier(tx.Tx, m.TenantID, pol, true, now())
		var pick rulePick
		if len(members) == 0 {
			if members, pick, err = rules.ruleMembers(ctx, func(members []domain.User, pol domain.Policy) ([]domain.Event, error) {
				return domain.RegisterCustomer(id, m.TenantID, p, members, pol)
			}); err != nil {
				return result, err
			}
		}
		events, err := domain.RegisterCustomer(id, m.TenantID, p, members, pol)
		if err != nil {
			return result, err
		}
		tagRule(events, pick)
		ruleStreams, err := rules.streams()
		if err != nil {
			return result, err
		}
		reg := events[0].(domain.CustomerRegistered)
		at := now()
		cu := c.newCustomer(m.TenantID, events, members, at)
		if err := c.checkCapacity(ctx, tx.Tx, m.TenantID, pol, []teamChange{{after: cu}}); err != nil {
			return result, err
		}
		result = CustomerResult{CustomerView: c.customerView(cu)}
		data, dk, err := c.sealNew(id, events)
		if err != nil {
			return result, err
		}
		if err := storeKeys(m.TenantID, dk)(ctx, tx); err != nil {
			return result, translateClaim(err)
		}
		err = tx.appendNewCustomer(ctx, m, id, data, dk, c.profileClaims(id, reg.Profile), nil, at, ruleStreams, &result, &result.Position)
		return result, err
	})
}

// newCustomer is the customer a creating command's events make, its team's
// names remembered for the answer.
func (c *Commands) newCustomer(tenantID string, events []domain.Event, members []domain.User, at time.Time) domain.Customer {
	cu := domain.Customer{TenantID: tenantID}
	for _, e := range events {
		cu.Apply(e, at)
	}
	for _, u := range members {
		c.names.put(u.ID, u.Name)
	}
	return cu
}

// appendNewCustomer appends a new customer's first events (sealed with dk,
// which also seals the stored answer) with its uniqueness claims, outbox
// messages and the writes also made (an assignment rule's turn); a lost
// claim is the rule it breaks.
func (t *cmdTx) appendNewCustomer(ctx context.Context, m Meta, id string, data []eventstore.EventData, dk keyring.DataKey,
	claims []eventstore.Claim, outbox []eventstore.OutboxMessage, at time.Time, also []eventstore.StreamWrite, result any, position *int64) error {
	_, err := t.appendSealed(ctx, eventstore.AppendRequest{
		TenantID: m.TenantID,
		Streams:  append([]eventstore.StreamWrite{{StreamID: id, StreamType: streamCustomer, ExpectedVersion: eventstore.NoStream, Events: data}}, also...),
		Claims:   claims,
		Outbox:   outbox,
		Metadata: m.metadata(),
		Now:      at,
	}, dk, result, position)
	return translateClaim(err)
}

// profileClaims reserves a customer's email and external_id. The claims
// hold an HMAC of each value (keyring.ClaimValue), never the value, so
// unique_claims keeps no personal data; erasure deletes them.
func (c *Commands) profileClaims(customerID string, p domain.Profile) []eventstore.Claim {
	var claims []eventstore.Claim
	if p.Email != "" {
		claims = append(claims, eventstore.Claim{Kind: claimCustomerEmail, Value: c.keys.ClaimValue(claimCustomerEmail, p.Email), OwnerID: customerID})
	}
	if p.ExternalID != "" {
		claims = append(claims, eventstore.Claim{Kind: claimCustomerExternalID, Value: c.keys.ClaimValue(claimCustomerExternalID, p.ExternalID), OwnerID: customerID})
	}
	return claims
}

// storeKeys is the Side of an append creating customers: their wrapped
// data keys commit with their first events, or not at all.
func storeKeys(tenantID string, keys ...keyring.DataKey) func(context.Context, execer) error {
	return func(ctx context.Context, tx execer) error { return keyring.Store(ctx, tx, tenantID, keys) }
}

// teamAndPolicy reads a new customer's team members, in the order given,
// and the tenant's policy in the append's transaction (users share-locked),
// so neither can change between the decision and the commit.
func teamAndPolicy(ctx context.Context, tx *eventstore.Tx, tenantID string, team []string) ([]domain.User, domain.Policy, error) {
	users, err := requireUsers(ctx, tx, tenantID, sortedUnique(team), forShare)
	if err != nil {
		return nil, domain.Policy{}, err
	}
	pol, err := readPolicy(ctx, tx, tenantID)
	if err != nil {
		return nil, domain.Policy{}, err
	}
	members := make([]domain.User, len(team))
	for i, id := range team {
		members[i] = users[id]
	}
	return members, pol, nil
}
