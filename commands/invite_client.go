package commands

import (
	"context"
	"fmt"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// InvitationResult is the answer of InviteClient. Token is the raw
// invitation token, from which HTTP builds the invitation URL; only its
// SHA-256 is stored, so an idempotent replay answers with Token "" (and
// Replayed true).
type InvitationResult struct {
	Customer CustomerView `json:"customer"`
	Token    string       `json:"-"`
	Position int64        `json:"position"`
	// Replayed is true when this is the stored answer of an earlier request
	// with the same idempotency key.
	Replayed bool `json:"-"`
}

func (r *InvitationResult) markReplayed() { r.Replayed = true }

// InviteClient creates an invited client with its first team, in one batch
// of events: ClientInvited, then UserAssigned for each of team in order
// (the first is lead under require_lead). Admin only. The team's users must
// exist in the tenant (else ErrNotFound) and be active.
//
// With sendEmail the client is also e-mailed its link and its team: the
// e-mail goes to the outbox in the append's transaction, and a relay
// delivers it (ErrEmailNotConfigured when there is none).
func (c *Commands) InviteClient(ctx context.Context, m Meta, p domain.Profile, team []string, sendEmail bool) (InvitationResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return InvitationResult{}, err
	}
	if sendEmail && !c.email {
		return InvitationResult{}, ErrEmailNotConfigured
	}
	m, err := m.prepare()
	if err != nil {
		return InvitationResult{}, err
	}
	team, err = parseIDs("user", team...)
	if err != nil {
		return InvitationResult{}, err
	}
	return transact(ctx, c, "InviteClient", m, func(ctx context.Context, tx *cmdTx) (InvitationResult, error) {
		var result InvitationResult
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
				return domain.InviteClient(id, p, members, pol)
			}); err != nil {
				return result, err
			}
		}
		events, err := domain.InviteClient(id, p, members, pol)
		if err != nil {
			return result, err
		}
		tagRule(events, pick)
		ruleStreams, err := rules.streams()
		if err != nil {
			return result, err
		}
		invited := events[0].(domain.ClientInvited)
		at := now()
		cu := c.newCustomer(m.TenantID, events, members, at)
		if err := c.checkCapacity(ctx, tx.Tx, m.TenantID, pol, []teamChange{{after: cu}}); err != nil {
			return result, err
		}
		data, dk, err := c.sealNew(id, events)
		if err != nil {
			return result, err
		}
		token, hash := randomToken()
		result = InvitationResult{Customer: c.customerView(cu), Token: token}
		result.Customer.Invitation = &InvitationView{Status: InvitationPending}
		var outbox []eventstore.OutboxMessage
		if sendEmail {
			users := make(map[string]domain.User, len(members))
			for _, u := range members {
				users[u.ID] = u
			}
			msg, err := invitationEmail(cu, token, users, dk)
			if err != nil {
				return result, err
			}
			outbox = append(outbox, msg)
			result.Customer.Invitation.Email = EmailQueued
		}
		side := func(ctx context.Context, tx execer) error {
			_, err := tx.Exec(ctx, `INSERT INTO invitations (token_hash, tenant_id, customer_id, created_at) VALUES ($1, $2, $3, $4)`,
				hash, m.TenantID, id, at)
			if err != nil {
				return fmt.Errorf("record invitation: %w", err)
			}
			return storeKeys(m.TenantID, dk)(ctx, tx)
		}
		if err := side(ctx, tx); err != nil {
			return result, translateClaim(err)
		}
		err = tx.appendNewCustomer(ctx, m, id, data, dk, c.profileClaims(id, invited.Profile), outbox, at, ruleStreams, &result, &result.Position)
		return result, err
	})
}
