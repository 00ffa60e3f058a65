package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
	"github.com/assignment-ledger/ledger/mail"
)

// MessageRequest is POST /v1/customers/messages: Subject and Body e-mailed
// to each of CustomerIDs.
type MessageRequest struct {
	CustomerIDs []string
	Subject     string
	Body        string
}

// MessageSkip is a selected customer the message is not sent to, and why
// (domain.SkipBlocked, domain.SkipNoEmail, domain.SkipUnknown).
type MessageSkip struct {
	CustomerID string `json:"customer_id"`
	Reason     string `json:"reason"`
}

// MessageResult is the answer of MessageCustomers: the message's ID (for
// GET /v1/messages/{id}), how many e-mails were queued, and who was
// skipped.
type MessageResult struct {
	ID         string        `json:"id"`
	Recipients int           `json:"recipients"`
	Skipped    []MessageSkip `json:"skipped"`
	Position   int64         `json:"position"`
}

// MessageView is where a message's e-mails stand: each is queued (being
// tried, with retries), sent or failed, as the relay recorded it.
type MessageView struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
	Queued  int    `json:"queued"`
	Sent    int    `json:"sent"`
	Failed  int    `json:"failed"`
}

// MessageCustomers e-mails a message to every listed customer (admin only)
// through the outbox, in one append: the message's row, a CustomerMessaged
// event on each recipient's stream (sharing one correlation_id, with the
// admin as actor) and each recipient's outbox row commit together, so an
// e-mail is queued exactly when its event is recorded. Customers the
// domain skips (blocked, no e-mail) and unknown IDs are listed in Skipped,
// not refused: a message to the others still goes. A selection with no
// customer of the tenant at all is refused (domain.CodeNoRecipients) and
// writes nothing. Without e-mail
// configured it is ErrEmailNotConfigured, and invalid text a
// *domain.ValidationError; both write nothing.
func (c *Commands) MessageCustomers(ctx context.Context, m Meta, req MessageRequest) (MessageResult, error) {
	text, err := c.CheckMessage(m, req.Subject, req.Body)
	if err != nil {
		return MessageResult{}, err
	}
	switch {
	case len(req.CustomerIDs) == 0:
		return MessageResult{}, &domain.ValidationError{Field: "customer_ids", Detail: "must not be empty"}
	case len(req.CustomerIDs) > MaxBulkCustomers:
		return MessageResult{}, &domain.ValidationError{Field: "customer_ids",
			Detail: fmt.Sprintf("at most %d customers per message", MaxBulkCustomers)}
	}
	m, err = m.prepare()
	if err != nil {
		return MessageResult{}, err
	}
	customerIDs := orderedIDs(req.CustomerIDs)
	return idempotent(ctx, c, m, func(idem *eventstore.Idempotency, replay *[]byte) (MessageResult, error) {
		var result MessageResult
		err := c.withRetry(ctx, "MessageCustomers", false, func() error {
			return c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
				// Locked like a bulk action: a customer blocked meanwhile
				// is skipped, not messaged.
				versions, err := lockCustomers(ctx, tx, m.TenantID, sortedUnique(validIDs(customerIDs)), forUpdate)
				if err != nil {
					return err
				}
				found := lockedOf(customerIDs, versions)
				if err := domain.RequireRecipients(len(found), len(customerIDs)); err != nil {
					return err
				}
				// Erased customers are skipped with a reason, not refused.
				l, err := loadCustomersWithErased(ctx, c.keys, tx, m.TenantID, found)
				if err != nil {
					return err
				}
				// The recipients' keys seal their e-mails' payloads.
				keys, err := c.keys.Load(ctx, tx, found)
				if err != nil {
					return err
				}
				messageID := newID()
				result = MessageResult{ID: messageID, Skipped: []MessageSkip{}}
				events := map[string][]domain.Event{}
				var outbox []eventstore.OutboxMessage
				for _, id := range customerIDs {
					cu, ok := l.customers[id]
					if !ok {
						result.Skipped = append(result.Skipped, MessageSkip{CustomerID: id, Reason: domain.SkipUnknown})
						continue
					}
					emailID := newID()
					e, reason := domain.MessageCustomer(cu, messageID, emailID)
					if reason != "" {
						result.Skipped = append(result.Skipped, MessageSkip{CustomerID: id, Reason: reason})
						continue
					}
					msg, err := messageEmail(cu, emailID, messageID, keys[id])
					if err != nil {
						return err
					}
					outbox = append(outbox, msg)
					events[id] = []domain.Event{e}
				}
				result.Recipients = len(outbox)
				streams, err := customerStreams(events, versions)
				if err != nil {
					return err
				}
				at := now()
				if _, err := tx.Exec(ctx, qInsertMessage, messageID, m.TenantID, text.Subject, text.Body,
					nullIfEmpty(m.Actor.UserID), at); err != nil {
					return fmt.Errorf("record message: %w", err)
				}
				res, err := appendOrReplay(ctx, tx, eventstore.AppendRequest{
					TenantID:    m.TenantID,
					Streams:     streams,
					Outbox:      outbox,
					Metadata:    m.metadata(),
					Idempotency: withIdempotency(idem, &result, func(p int64) { result.Position = p }),
					Now:         at,
				}, replay)
				if err != nil {
					return err
				}
				result.Position = res.Position
				return nil
			})
		})
		return result, err
	})
}

// CheckMessage refuses a message MessageCustomers would refuse whoever the
// recipients: a caller who is not an admin, no e-mail configured, invalid
// text. HTTP asks it before it selects recipients by filter, which waits
// for the read models.
func (c *Commands) CheckMessage(m Meta, subject, body string) (domain.MessageText, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return domain.MessageText{}, err
	}
	if !c.email {
		return domain.MessageText{}, ErrEmailNotConfigured
	}
	return domain.NewMessageText(subject, body)
}

const qInsertMessage = `INSERT INTO messages (id, tenant_id, subject, body, created_by, created_at)
VALUES ($1, $2, $3, $4, $5::text::uuid, $6)`

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// messageEmail is the outbox row that e-mails cu its copy of message
// messageID. The payload names the recipient as of now, sealed with its
// key dk (sealEmail); the subject and body stay with the message.
func messageEmail(cu domain.Customer, emailID, messageID string, dk keyring.DataKey) (eventstore.OutboxMessage, error) {
	payload, err := json.Marshal(mail.Message{FirstName: cu.Profile.FirstName, LastName: cu.Profile.LastName, Email: cu.Profile.Email})
	if err == nil {
		payload, err = sealEmail(dk, payload)
	}
	if err != nil {
		return eventstore.OutboxMessage{}, fmt.Errorf("encode message e-mail: %w", err)
	}
	return eventstore.OutboxMessage{ID: emailID, CustomerID: cu.ID, Kind: mail.KindMessage, Payload: payload, Message: messageID}, nil
}

// GetMessage reads where message id of the tenant stands (ErrNotFound for
// an unknown ID or another tenant's). The counts are the outbox rows'
// statuses, which the relay records as it delivers.
func (c *Commands) GetMessage(ctx context.Context, tenantID, id string) (MessageView, error) {
	tenant, ok1 := parseID(tenantID)
	mid, ok2 := parseID(id)
	if !ok1 || !ok2 {
		return MessageView{}, notFound("message", id)
	}
	v := MessageView{ID: mid}
	err := c.store.Pool().QueryRow(ctx, `SELECT subject FROM messages WHERE tenant_id = $1 AND id = $2`, tenant, mid).Scan(&v.Subject)
	if errors.Is(err, pgx.ErrNoRows) {
		return MessageView{}, notFound("message", id)
	}
	if err != nil {
		return MessageView{}, fmt.Errorf("read message: %w", translatePg(err))
	}
	counts, err := c.store.MessageOutboxCounts(ctx, mid)
	if err != nil {
		return MessageView{}, fmt.Errorf("read message: %w", err)
	}
	v.Queued, v.Sent, v.Failed = counts.Queued, counts.Sent, counts.Failed
	return v, nil
}

// recordMessageOutcome appends a recipient's CustomerMessaged with the
// outcome of its e-mail (see RecordEmailOutcome).
func (c *Commands) recordMessageOutcome(ctx context.Context, tenantID, customerID string, o mail.Outcome) error {
	messageID, ok := parseID(o.Message)
	if !ok {
		return fmt.Errorf("message e-mail %s: no message: %w", o.MessageID, ErrNotFound)
	}
	e := domain.CustomerMessaged{CustomerID: customerID, MessageID: messageID, EmailID: o.MessageID, Outcome: o.Status}
	return c.appendOutcome(ctx, tenantID, customerID, o, e)
}
