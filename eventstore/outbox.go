package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// OutboxMessage is something to deliver outside (an e-mail) once the
// append that carries it commits: it is written in the append's
// transaction, so it exists exactly when the events that cause it do. A
// relay (package mail) delivers it at least once and records the outcome
// on its row.
type OutboxMessage struct {
	// ID identifies the message for good (the e-mail's Message-ID), so a
	// repeated delivery is recognisable as the same message.
	ID string
	// CustomerID is the customer the message is about, if any.
	CustomerID string
	// Kind says how the relay renders Payload ("invitation").
	Kind    string
	Payload json.RawMessage
	// Message is the customer message (POST /v1/customers/messages) this
	// e-mail is one of, if any: the relay takes its subject and body from
	// there, and the message's delivery counts are its e-mails' statuses.
	Message string
}

// qInsertOutbox writes an append's outbox rows, due at once by the
// database's clock, which the relay's query reads (created_at is the
// events' recording time, the e-mail's Date).
const qInsertOutbox = `
INSERT INTO outbox (id, tenant_id, customer_id, kind, payload, message_id, next_attempt_at, created_at)
SELECT i, $1, nullif(c, '')::uuid, k, p::jsonb, nullif(m, '')::uuid, now(), $6
FROM unnest($2::text[]::uuid[], $3::text[], $4::text[], $5::text[], $7::text[]) AS u(i, c, k, p, m)`

// outboxArgs are qInsertOutbox's parameters.
func outboxArgs(tenantID string, msgs []OutboxMessage, now time.Time) []any {
	ids := make([]string, len(msgs))
	customers := make([]string, len(msgs))
	kinds := make([]string, len(msgs))
	payloads := make([]string, len(msgs))
	messages := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i], customers[i], kinds[i], payloads[i], messages[i] = m.ID, m.CustomerID, m.Kind, string(m.Payload), m.Message
	}
	return []any{tenantID, ids, customers, kinds, payloads, now, messages}
}

// QueueOutbox writes outbox messages in the transaction without appending
// events: e-mails about no change of a stream (the auditors' daily
// checkpoint), which the relay delivers like any other.
func (t *Tx) QueueOutbox(ctx context.Context, tenantID string, msgs []OutboxMessage, now time.Time) error {
	if len(msgs) == 0 {
		return nil
	}
	if _, err := t.Exec(ctx, qInsertOutbox, outboxArgs(tenantID, msgs, now)...); err != nil {
		return fmt.Errorf("queue outbox messages: %w", translate(err))
	}
	return nil
}
