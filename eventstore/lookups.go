package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lookups for operators' tools and views: typed reads of the event store's
// tables, so that no other package writes SQL against them.

// StreamOwner returns the tenant and type of stream id (ErrNotFound when
// there is no such stream).
func (s *Store) StreamOwner(ctx context.Context, id string) (tenantID, streamType string, err error) {
	err = s.pool.QueryRow(ctx, `SELECT tenant_id::text, stream_type FROM streams WHERE stream_id = $1::text::uuid`, id).Scan(&tenantID, &streamType)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", fmt.Errorf("stream %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", "", fmt.Errorf("stream %s: %w", id, translate(err))
	}
	return tenantID, streamType, nil
}

// StreamsWithEventsAtSchema names the streams, in ID order, that hold an
// event of one of types at schema version schema (events written before
// their type's schema moved on). A partial index over the same condition
// answers it without a scan of the log (the events_plaintext_profiles
// index, for customer profiles in clear).
func (s *Store) StreamsWithEventsAtSchema(ctx context.Context, schema int, types []string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT stream_id::text FROM events
	WHERE schema_version = $1 AND type = ANY($2::text[]) ORDER BY 1`, schema, types)
	if err != nil {
		return nil, fmt.Errorf("find streams with schema %d events: %w", schema, translate(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find streams with schema %d events: %w", schema, translate(err))
	}
	return ids, nil
}

// EventsOfType reads every event of type typ, of every tenant, in log
// order: an operator's listing (tenants, erased customers), not a path
// of the service.
func (s *Store) EventsOfType(ctx context.Context, typ string) ([]Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE type = $1 ORDER BY position`, typ)
	events, err := collect(rows, err)
	if err != nil {
		return nil, fmt.Errorf("read %s events: %w", typ, translate(err))
	}
	return events, nil
}

// OutboxDelivery is where the latest outbox message of a kind about a
// customer stands.
type OutboxDelivery struct {
	// Status is queued, sent or failed.
	Status string
	SentAt *time.Time
}

const qLatestOutbox = `SELECT status, sent_at FROM outbox
    WHERE customer_id = $1::text::uuid AND kind = $2 ORDER BY created_at DESC LIMIT 1`

// LatestOutbox reads the latest outbox message of kind about customerID
// (found false when there is none).
func (s *Store) LatestOutbox(ctx context.Context, customerID, kind string) (OutboxDelivery, bool, error) {
	return latestOutbox(s.pool.QueryRow(ctx, qLatestOutbox, customerID, kind))
}

// LatestOutbox is Store.LatestOutbox in the transaction.
func (t *Tx) LatestOutbox(ctx context.Context, customerID, kind string) (OutboxDelivery, bool, error) {
	return latestOutbox(t.QueryRow(ctx, qLatestOutbox, customerID, kind))
}

func latestOutbox(row pgx.Row) (OutboxDelivery, bool, error) {
	var d OutboxDelivery
	err := row.Scan(&d.Status, &d.SentAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return OutboxDelivery{}, false, nil
	}
	if err != nil {
		return OutboxDelivery{}, false, fmt.Errorf("read outbox: %w", translate(err))
	}
	if d.SentAt != nil {
		t := d.SentAt.UTC()
		d.SentAt = &t
	}
	return d, true, nil
}

// OutboxCounts counts outbox messages by status.
type OutboxCounts struct {
	Queued, Sent, Failed int
}

// MessageOutboxCounts counts the e-mails of a customer message
// (OutboxMessage.Message) by status: what the relay recorded.
func (s *Store) MessageOutboxCounts(ctx context.Context, messageID string) (OutboxCounts, error) {
	var c OutboxCounts
	err := s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'sent'),
    count(*) FILTER (WHERE status = 'failed')
FROM outbox WHERE message_id = $1::text::uuid`, messageID).Scan(&c.Queued, &c.Sent, &c.Failed)
	if err != nil {
		return OutboxCounts{}, fmt.Errorf("count message e-mails: %w", translate(err))
	}
	return c, nil
}
