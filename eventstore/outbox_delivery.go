package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// The outbox's delivery side, for a relay (package mail): a watermill-sql
// subscriber over the outbox claims one due row per message
// (OutboxSubscription's adapters), and the relay records the row's
// outcome in the subscriber's transaction that holds it (MarkOutboxSent,
// RetryOutbox, FailOutbox). The SQL stays here, with the table.

// OutboxExecer is the subscriber's transaction (wsql.TxFromContext) that
// holds a claimed row.
type OutboxExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// DueOutbox is one claimed outbox row, as a subscriber's message carries
// it (DueOutboxOf).
type DueOutbox struct {
	ID         string
	TenantID   string
	CustomerID string
	// Message is the customer message the e-mail is one of; its subject
	// and body are merged into Payload.
	Message  string
	Kind     string
	Payload  []byte
	Attempts int
	Created  time.Time
}

// OutboxSubscription returns the watermill-sql adapters of a subscriber
// over the outbox: a message is the one due row the subscriber's
// transaction claims (FOR UPDATE SKIP LOCKED, so several relays never hold
// the same row), and the row's status, not an offset, is its progress.
func OutboxSubscription() (wsql.SchemaAdapter, wsql.OffsetsAdapter) {
	return outboxSchema{}, outboxOffsets{}
}

// MarkOutboxSent records that the claimed row id was delivered. A sent
// e-mail keeps no payload: the token is a secret, and the rest is personal
// data nothing reads any more.
func MarkOutboxSent(ctx context.Context, tx OutboxExecer, id string) error {
	if _, err := tx.ExecContext(ctx, qOutboxSent, id); err != nil {
		return fmt.Errorf("mark outbox message %s sent: %w", id, translate(err))
	}
	return nil
}

// RetryOutbox records a failed attempt at the claimed row id and makes it
// due again after wait.
func RetryOutbox(ctx context.Context, tx OutboxExecer, id, lastErr string, wait time.Duration) error {
	if _, err := tx.ExecContext(ctx, qOutboxRetry, id, lastErr, wait.Microseconds()); err != nil {
		return fmt.Errorf("reschedule outbox message %s: %w", id, translate(err))
	}
	return nil
}

// FailOutbox records that the claimed row id failed for good (its payload
// dropped, as a sent one's).
func FailOutbox(ctx context.Context, tx OutboxExecer, id, lastErr string) error {
	if _, err := tx.ExecContext(ctx, qOutboxFailed, id, lastErr); err != nil {
		return fmt.Errorf("mark outbox message %s failed: %w", id, translate(err))
	}
	return nil
}

// ForgetOutbox deletes the claimed row id: its customer was erased while
// it was being delivered (the erasure skips rows a relay holds). Its
// message loses its subject and body when no other e-mail of it is left,
// as the erasure's own forget statement does for the rows it deletes.
func ForgetOutbox(ctx context.Context, tx OutboxExecer, id string) error {
	if _, err := tx.ExecContext(ctx, qOutboxForget, id); err != nil {
		return fmt.Errorf("forget outbox message %s: %w", id, translate(err))
	}
	return nil
}

const (
	qOutboxForget = `WITH o AS (DELETE FROM outbox WHERE id = $1 RETURNING message_id)
		UPDATE messages SET subject = '', body = '' WHERE id IN (SELECT message_id FROM o)
		AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.message_id = messages.id AND x.id <> $1)`
	qOutboxSent = `UPDATE outbox SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL,
		payload = '{}' WHERE id = $1`
	qOutboxRetry = `UPDATE outbox SET attempts = attempts + 1, last_error = $2,
		next_attempt_at = now() + $3 * interval '1 microsecond' WHERE id = $1`
	qOutboxFailed = `UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $2,
		payload = '{}' WHERE id = $1`
)

const (
	metaKind     = "kind"
	metaAttempts = "attempts"
	metaCreated  = "created_at"
	metaTenant   = "tenant_id"
	metaCustomer = "customer_id"
	metaMessage  = "message_id"
)

// DueOutboxOf is the row a subscriber's message carries.
func DueOutboxOf(msg *message.Message) (DueOutbox, error) {
	row := DueOutbox{ID: msg.UUID, Kind: msg.Metadata.Get(metaKind), Payload: msg.Payload,
		TenantID: msg.Metadata.Get(metaTenant), CustomerID: msg.Metadata.Get(metaCustomer), Message: msg.Metadata.Get(metaMessage)}
	if _, err := fmt.Sscan(msg.Metadata.Get(metaAttempts), &row.Attempts); err != nil {
		return row, fmt.Errorf("outbox message %s: attempts: %w", row.ID, err)
	}
	created, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(metaCreated))
	if err != nil {
		return row, fmt.Errorf("outbox message %s: created_at: %w", row.ID, err)
	}
	row.Created = created
	return row, nil
}

// outboxSchema is a watermill-sql SchemaAdapter over the outbox table: a
// message is the one due row the select locks.
type outboxSchema struct{}

// A customer message's e-mail takes its subject and body from the message
// (kept once for all its recipients).
const qSelectDue = `SELECT o.id::text, o.tenant_id::text, coalesce(o.customer_id::text, ''), coalesce(o.message_id::text, ''), o.kind,
    CASE WHEN m.id IS NULL THEN o.payload ELSE o.payload || jsonb_build_object('subject', m.subject, 'body', m.body) END,
    o.attempts, o.created_at
FROM outbox o LEFT JOIN messages m ON m.id = o.message_id
WHERE o.status = 'queued' AND o.next_attempt_at <= now()
ORDER BY o.next_attempt_at, o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED`

func (outboxSchema) SelectQuery(string, string, wsql.OffsetsAdapter) wsql.Query {
	return wsql.Query{Query: qSelectDue}
}

func (outboxSchema) UnmarshalMessage(row wsql.Scanner) (wsql.Row, error) {
	var (
		id, tenant, customer, messageID, kind string
		payload                               []byte
		attempts                              int
		created                               time.Time
	)
	if err := row.Scan(&id, &tenant, &customer, &messageID, &kind, &payload, &attempts, &created); err != nil {
		return wsql.Row{}, fmt.Errorf("scan outbox row: %w", err)
	}
	msg := message.NewMessage(id, payload)
	msg.Metadata = message.Metadata{
		metaKind: kind, metaAttempts: fmt.Sprint(attempts), metaCreated: created.UTC().Format(time.RFC3339Nano),
		metaTenant: tenant, metaCustomer: customer, metaMessage: messageID,
	}
	// Offset only has to be non-zero for Watermill to ack; the outcome
	// is recorded by the relay.
	return wsql.Row{Offset: 1, UUID: []byte(id), Msg: msg}, nil
}

// InsertQuery refuses: outbox rows are written by appends only.
func (outboxSchema) InsertQuery(string, message.Messages) (wsql.Query, error) {
	return wsql.Query{}, errors.New("eventstore: the outbox is written by appends only")
}

func (outboxSchema) SchemaInitializingQueries(string) []wsql.Query { return nil }

func (outboxSchema) SubscribeIsolationLevel() sql.IsolationLevel { return sql.LevelReadCommitted }

// outboxOffsets keeps no offsets: a row's status is its progress.
type outboxOffsets struct{}

func (outboxOffsets) NextOffsetQuery(string, string) wsql.Query { return wsql.Query{} }

func (outboxOffsets) AckMessageQuery(string, wsql.Row, string) wsql.Query {
	return wsql.Query{Query: `SELECT 1`}
}

func (outboxOffsets) ConsumedMessageQuery(string, wsql.Row, string, []byte) wsql.Query {
	return wsql.Query{}
}

func (outboxOffsets) BeforeSubscribingQueries(string, string) []wsql.Query { return nil }

func (outboxOffsets) SchemaInitializingQueries(string) []wsql.Query { return nil }
