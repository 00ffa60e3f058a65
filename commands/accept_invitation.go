package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/eventstore"
)

// invitationActor is the actor recorded on InvitationAccepted: whoever
// holds the token, who is not a user of the tenant.
var invitationActor = eventstore.Actor{Name: "invited client"}

// maxTokenLen bounds what is hashed; real tokens are 43 characters.
const maxTokenLen = 256

// AcceptInvitation accepts the invitation holding token: the client
// becomes active. No authentication; an unknown or already used token is
// ErrNotFound. The invitation row is locked, so of two concurrent accepts
// exactly one succeeds. m carries only the idempotency key: the tenant is
// the invitation's. A retry with the key replays the first answer, where a
// retry without it finds the token used.
func (c *Commands) AcceptInvitation(ctx context.Context, m Meta, token string) (CustomerResult, error) {
	if token == "" || len(token) > maxTokenLen {
		return CustomerResult{}, ErrNotFound
	}
	hash := hashToken(token)
	correlation := newID()
	var idem *eventstore.Idempotency
	if m.IdempotencyKey != "" {
		if len(m.RequestHash) == 0 {
			return CustomerResult{}, errors.New("commands: an idempotency key needs a request hash")
		}
		err := c.store.Pool().QueryRow(ctx, `SELECT tenant_id::text FROM invitations WHERE token_hash = $1`, hash).Scan(&m.TenantID)
		if errors.Is(err, pgx.ErrNoRows) {
			return CustomerResult{}, ErrNotFound
		}
		if err != nil {
			return CustomerResult{}, fmt.Errorf("read invitation: %w", err)
		}
		if r, ok, err := lookupReplay[CustomerResult](ctx, c, m); ok || err != nil {
			return r, err
		}
		idem = &eventstore.Idempotency{Key: m.IdempotencyKey, RequestHash: c.keys.RequestMAC(m.RequestHash)}
	}
	var result CustomerResult
	err := c.withRetry(ctx, "AcceptInvitation", false, func() error {
		return c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
			var tenantID, customerID string
			var accepted bool
			err := tx.QueryRow(ctx, `SELECT tenant_id::text, customer_id::text, accepted_at IS NOT NULL
				FROM invitations WHERE token_hash = $1 FOR UPDATE`, hash).Scan(&tenantID, &customerID, &accepted)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && accepted) {
				return ErrNotFound
			}
			if err != nil {
				return fmt.Errorf("read invitation: %w", err)
			}
			versions, err := lockCustomers(ctx, tx, tenantID, []string{customerID}, forUpdate)
			if err != nil {
				return err
			}
			version, ok := versions[customerID]
			if !ok {
				return ErrNotFound
			}
			l, err := loadCustomers(ctx, c.keys, tx, tenantID, []string{customerID})
			if errors.Is(err, ErrErased) {
				return ErrNotFound // an erased client's token is unknown (erasure deletes it too)
			}
			if err != nil {
				return err
			}
			cu := l.customers[customerID]
			events, err := cu.AcceptInvitation()
			if err != nil {
				return err
			}
			at := now()
			for _, e := range events {
				cu.Apply(e, at)
			}
			if err := c.fillNames(ctx, tx, tenantID, teamIDs(cu)); err != nil {
				return err
			}
			data, err := encode(events)
			if err != nil {
				return err
			}
			result = CustomerResult{CustomerView: c.customerView(cu)}
			if result.Invitation, err = invitationOf(ctx, tx, tenantID, customerID); err != nil {
				return err
			}
			if result.Invitation != nil {
				result.Invitation.Status = InvitationAccepted
			}
			if idem != nil {
				dk, err := c.answerKey(ctx, tx, idem, customerID)
				if err != nil {
					return err
				}
				idem.Response = func(r eventstore.AppendResult) ([]byte, error) {
					result.Position = r.Position
					answer, err := json.Marshal(result)
					if err != nil {
						return nil, err
					}
					return sealAnswer(dk, answer)
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE invitations SET accepted_at = $2 WHERE token_hash = $1`, hash, at); err != nil {
				return fmt.Errorf("mark invitation accepted: %w", err)
			}
			res, err := tx.Append(ctx, eventstore.AppendRequest{
				TenantID:    tenantID,
				Idempotency: idem,
				Streams:     []eventstore.StreamWrite{{StreamID: customerID, StreamType: streamCustomer, ExpectedVersion: version, Events: data}},
				Metadata:    eventstore.Metadata{Actor: invitationActor, CorrelationID: correlation},
				Now:         at,
			})
			if err != nil {
				return err
			}
			if res.Replayed {
				if result, err = decodeReplay[CustomerResult](ctx, c, res.Response); err != nil {
					return err
				}
				return errReplayed
			}
			result.Position = res.Position
			return nil
		})
	})
	if errors.Is(err, errReplayed) {
		return result, nil
	}
	if err != nil {
		return CustomerResult{}, err
	}
	return result, nil
}
