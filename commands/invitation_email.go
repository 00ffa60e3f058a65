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
	"github.com/assignment-ledger/ledger/keyring"
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
// its link (from token) and its team, named from users; the payload is
// sealed with the client's key dk (sealEmail).
func invitationEmail(cu domain.Customer, token string, users map[string]domain.User, dk keyring.DataKey) (eventstore.OutboxMessage, error) {
	inv := mail.Invitation{FirstName: cu.Profile.FirstName, LastName: cu.Profile.LastName, Email: cu.Profile.Email, Token: token,
		Team: make([]mail.TeamMember, 0, len(cu.Team))}
	for _, m := range cu.Team {
		u := users[m.UserID]
		inv.Team = append(inv.Team, mail.TeamMember{Name: u.Name, Email: u.Email, Lead: m.Lead})
	}
	payload, err := json.Marshal(inv)
	if err == nil {
		payload, err = sealEmail(dk, payload)
	}
	if err != nil {
		return eventstore.OutboxMessage{}, fmt.Errorf("encode invitation e-mail: %w", err)
	}
	return eventstore.OutboxMessage{ID: newID(), CustomerID: cu.ID, Kind: mail.KindInvitation, Payload: payload}, nil
}

// invitationSource reads an invitation: the invitations table and the
// event store's outbox (its e-mail), outside or inside a transaction.
type invitationSource interface {
	querier
	LatestOutbox(ctx context.Context, customerID, kind string) (eventstore.OutboxDelivery, bool, error)
}

// storeReader is the pool and the event store outside a transaction.
type storeReader struct {
	*eventstore.Store
}

func (r storeReader) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return r.Store.Pool().Query(ctx, sql, args...)
}

// invitationOf reads where customerID's invitation stands (nil when it was
// not invited).
func invitationOf(ctx context.Context, q invitationSource, tenantID, customerID string) (*InvitationView, error) {
	var accepted bool
	rows, err := q.Query(ctx, `SELECT accepted_at IS NOT NULL FROM invitations WHERE tenant_id = $1 AND customer_id = $2`, tenantID, customerID)
	if err == nil {
		accepted, err = pgx.CollectExactlyOneRow(rows, pgx.RowTo[bool])
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
	email, found, err := q.LatestOutbox(ctx, customerID, mail.KindInvitation)
	if err != nil {
		return nil, fmt.Errorf("read invitation e-mail: %w", err)
	}
	if found {
		v.Email, v.SentAt = email.Status, email.SentAt
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
	cu, err := readCustomer(ctx, c.keys, c.reads(), tenantID, customerID)
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

// relayActor is the actor recorded on an e-mail's outcome: the outbox relay,
// not a user of the tenant.
var relayActor = eventstore.Actor{Name: "mail relay"}

// RecordEmailOutcome is the relay's mail.Config.Record: an e-mail's final
// outcome ("sent" or "failed") becomes an event on the customer's stream,
// InvitationEmailed for an invitation, CustomerMessaged for a customer
// message. It is idempotent, keyed by the e-mail and outcome: the relay
// calls it before it marks the outbox row, so a crash in between makes it
// call again, and the second call appends nothing.
func (c *Commands) RecordEmailOutcome(ctx context.Context, o mail.Outcome) error {
	tenantID, ok1 := parseID(o.TenantID)
	customerID, ok2 := parseID(o.CustomerID)
	if !ok1 || !ok2 {
		return ErrNotFound
	}
	switch o.Kind {
	case mail.KindInvitation:
		e := domain.InvitationEmailed{CustomerID: customerID, MessageID: o.MessageID, Outcome: o.Status}
		return c.appendOutcome(ctx, tenantID, customerID, o, e)
	case mail.KindMessage:
		return c.recordMessageOutcome(ctx, tenantID, customerID, o)
	}
	return nil
}

// appendOutcome appends e, the outcome of the e-mail o, to the customer's
// stream as the relay, once per e-mail and outcome: a customer command, so
// that it takes the stream's lock as every command does and never lands
// after the customer's erasure (mail.ErrErased then; the relay forgets the
// row the erasure skipped while the relay held it).
func (c *Commands) appendOutcome(ctx context.Context, tenantID, customerID string, o mail.Outcome, e domain.Event) error {
	key := "outbox:" + o.MessageID + ":" + o.Status
	m := Meta{TenantID: tenantID, Actor: domain.Actor{Name: relayActor.Name}, IdempotencyKey: key, RequestHash: hashToken(key)}
	_, err := c.customerCommand(ctx, "Record"+e.EventType(), m, customerID, nil,
		func(domain.Customer, map[string]domain.User, domain.Policy) ([]domain.Event, error) {
			return []domain.Event{e}, nil
		})
	if errors.Is(err, ErrErased) || errors.Is(err, eventstore.ErrReplayUnavailable) {
		err = fmt.Errorf("%w: %w", mail.ErrErased, err)
	}
	if err != nil {
		return fmt.Errorf("record %s e-mail %s: %w", o.Kind, o.MessageID, err)
	}
	return nil
}
