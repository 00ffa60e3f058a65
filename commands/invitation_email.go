package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/mail"
)

// InvitationView is where a client's invitation stands: accepted or not,
// and its e-mail (absent when none was asked for).
type InvitationView struct {
	Status string     `json:"status"`          // pending | accepted
	Email  string     `json:"email,omitempty"` // queued | sent | failed
	SentAt *time.Time `json:"sent_at"`
}

// Invitation statuses.
const (
	InvitationPending  = "pending"
	InvitationAccepted = "accepted"
	EmailQueued        = "queued"
)

// invitationEmail is the outbox message that e-mails the invited client cu
// its link (from token) and its team, named from users.
func invitationEmail(cu domain.Customer, token string, users map[string]domain.User) (eventstore.OutboxMessage, error) {
	inv := mail.Invitation{FirstName: cu.Profile.FirstName, LastName: cu.Profile.LastName, Email: cu.Profile.Email, Token: token,
		Team: make([]mail.TeamMember, 0, len(cu.Team))}
	for _, m := range cu.Team {
		u := users[m.UserID]
		inv.Team = append(inv.Team, mail.TeamMember{Name: u.Name, Email: u.Email, Lead: m.Lead})
	}
	payload, err := json.Marshal(inv)
	if err != nil {
		return eventstore.OutboxMessage{}, fmt.Errorf("encode invitation e-mail: %w", err)
	}
	return eventstore.OutboxMessage{ID: newID(), CustomerID: cu.ID, Kind: mail.KindInvitation, Payload: payload}, nil
}

// qInvitationOf reads a customer's invitation and its latest e-mail.
const qInvitationOf = `SELECT i.accepted_at IS NOT NULL, o.status, o.sent_at
FROM invitations i
LEFT JOIN LATERAL (SELECT status, sent_at FROM outbox
    WHERE customer_id = i.customer_id AND kind = '` + mail.KindInvitation + `' ORDER BY created_at DESC LIMIT 1) o ON true
WHERE i.tenant_id = $1 AND i.customer_id = $2`

// invitationOf reads where customerID's invitation stands (nil when it was
// not invited).
func invitationOf(ctx context.Context, q querier, tenantID, customerID string) (*InvitationView, error) {
	var (
		accepted bool
		email    *string
		sentAt   *time.Time
	)
	rows, err := q.Query(ctx, qInvitationOf, tenantID, customerID)
	if err == nil {
		_, err = pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (struct{}, error) {
			return struct{}{}, r.Scan(&accepted, &email, &sentAt)
		})
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read invitation: %w", err)
	}
	v := &InvitationView{Status: InvitationPending}
	if accepted {
		v.Status = InvitationAccepted
	}
	if email != nil {
		v.Email = *email
	}
	if sentAt != nil {
		t := sentAt.UTC()
		v.SentAt = &t
	}
	return v, nil
}

// InvitationPage is what the invited client's page shows.
type InvitationPage struct {
	FirstName string
	LastName  string
	Team      []InvitationMember
}

// InvitationMember is one team member on the invitation page.
type InvitationMember struct {
	Name  string
	Email string
	Lead  bool
}

// GetInvitation reads the open invitation holding token for its page: the
// client's name and team (names and e-mails, so the client can write to
// them). An unknown or used token, or one of a client that cannot accept
// (blocked), is ErrNotFound, as for AcceptInvitation.
func (c *Commands) GetInvitation(ctx context.Context, token string) (InvitationPage, error) {
	if token == "" || len(token) > maxTokenLen {
		return InvitationPage{}, ErrNotFound
	}
	pool := c.store.Pool()
	var tenantID, customerID string
	err := pool.QueryRow(ctx, `SELECT tenant_id::text, customer_id::text FROM invitations
		WHERE token_hash = $1 AND accepted_at IS NULL`, hashToken(token)).Scan(&tenantID, &customerID)
	if errors.Is(err, pgx.ErrNoRows) {
		return InvitationPage{}, ErrNotFound
	}
	if err != nil {
		return InvitationPage{}, fmt.Errorf("read invitation: %w", err)
	}
	cu, err := readCustomer(ctx, c.keys, pool, tenantID, customerID)
	if errors.Is(err, ErrErased) {
		return InvitationPage{}, ErrNotFound // erasure deletes the token too
	}
	if err != nil {
		return InvitationPage{}, err
	}
	if cu.Status != domain.CustomerStatusInvited {
		return InvitationPage{}, ErrNotFound
	}
	users, err := requireUsers(ctx, pool, tenantID, sortedUnique(teamIDs(cu)), noLock)
	if err != nil {
		return InvitationPage{}, err
	}
	page := InvitationPage{FirstName: cu.Profile.FirstName, LastName: cu.Profile.LastName}
	for _, m := range cu.Team {
		u := users[m.UserID]
		page.Team = append(page.Team, InvitationMember{Name: u.Name, Email: u.Email, Lead: m.Lead})
	}
	return page, nil
}

// relayActor is the actor recorded on InvitationEmailed: the outbox relay,
// not a user of the tenant.
var relayActor = eventstore.Actor{Name: "mail relay"}

// RecordEmailOutcome is the relay's mail.Config.Record: an invitation
// e-mail's final outcome ("sent" or "failed") becomes an InvitationEmailed
// event on the customer's stream. It is idempotent, keyed by the message
// and outcome: the relay calls it before it marks the outbox row, so a
// crash in between makes it call again, and the second call appends
// nothing.
func (c *Commands) RecordEmailOutcome(ctx context.Context, o mail.Outcome) error {
	if o.Kind != mail.KindInvitation {
		return nil
	}
	tenantID, ok1 := parseID(o.TenantID)
	customerID, ok2 := parseID(o.CustomerID)
	if !ok1 || !ok2 {
		return ErrNotFound
	}
	messageID, outcome := o.MessageID, o.Status
	data, err := encode([]domain.Event{domain.InvitationEmailed{CustomerID: customerID, MessageID: messageID, Outcome: outcome}})
	if err != nil {
		return err
	}
	key := "outbox:" + messageID + ":" + outcome
	err = c.withRetry(ctx, "RecordInvitationEmailed", false, func() error {
		_, err := c.store.Append(ctx, eventstore.AppendRequest{
			TenantID: tenantID,
			Streams:  []eventstore.StreamWrite{{StreamID: customerID, StreamType: streamCustomer, ExpectedVersion: eventstore.Any, Events: data}},
			Metadata: eventstore.Metadata{Actor: relayActor, CorrelationID: newID()},
			Idempotency: &eventstore.Idempotency{Key: key, RequestHash: hashToken(key),
				Response: func(eventstore.AppendResult) ([]byte, error) { return []byte(`{}`), nil }},
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("record invitation e-mail %s: %w", messageID, err)
	}
	return nil
}
