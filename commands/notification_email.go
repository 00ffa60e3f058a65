package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/mail"
)

// NotificationEmailPoll is how often `serve` looks for notifications of
// users with notify_by_email that have not been e-mailed yet. The claim,
// not the timer, keeps each to one e-mail.
const NotificationEmailPoll = 2 * time.Second

// notificationEmailBatch bounds the notifications one transaction claims.
const notificationEmailBatch = 500

// qClaimNotificationEmails claims, oldest first, notifications (any type:
// the notifications read model decides what a notification is) of active
// users with notify_by_email on since before the notification, that no
// e-mail was queued for. A concurrent claimer of the same rows waits on
// the insert and then claims nothing (ON CONFLICT DO NOTHING), so each is
// claimed once. It reads the notifications read model: an e-mail follows
// its notification, never the event directly.
const qClaimNotificationEmails = `WITH due AS (
	SELECT n.tenant_id, n.user_id, n.position, n.type, n.customer_id, n.at, u.name, u.email
	FROM users u
	JOIN notifications n ON n.tenant_id = u.tenant_id AND n.user_id = u.id AND n.at >= u.notify_since
	WHERE u.notify_by_email AND u.status = 'active'
	  AND NOT EXISTS (SELECT 1 FROM notification_emails e
	                  WHERE e.tenant_id = n.tenant_id AND e.user_id = n.user_id AND e.position = n.position)
	ORDER BY n.position
	LIMIT $1
), claimed AS (
	INSERT INTO notification_emails (tenant_id, user_id, position, email_id, queued_at)
	SELECT tenant_id, user_id, position, gen_random_uuid(), $2 FROM due
	ON CONFLICT DO NOTHING
	RETURNING tenant_id, user_id, position, email_id
)
SELECT c.tenant_id::text, c.user_id::text, c.position, c.email_id::text, d.type, coalesce(d.customer_id::text, ''), d.at, d.name, d.email
FROM claimed c JOIN due d USING (tenant_id, user_id, position)
ORDER BY c.position, c.user_id`

// EmailNotifications queues, through the outbox, an e-mail for each
// notification of a user with notify_by_email that has none yet, claimed
// in the same transaction (notification_emails): exactly one e-mail per
// notification, whatever the number of processes and restarts. It answers
// how many it queued.
func (c *Commands) EmailNotifications(ctx context.Context, at time.Time) (int, error) {
	if !c.email {
		return 0, ErrEmailNotConfigured
	}
	total := 0
	for {
		n := 0
		err := c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
			n = 0
			rows, err := tx.Query(ctx, qClaimNotificationEmails, notificationEmailBatch, at)
			if err != nil {
				return err
			}
			type claimed struct {
				Tenant, User string
				Position     int64
				EmailID      string
				Type         string
				Customer     string
				At           time.Time
				Name, Email  string
			}
			got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[claimed])
			if err != nil {
				return err
			}
			byTenant := map[string][]eventstore.OutboxMessage{}
			var order []string
			for _, r := range got {
				payload, err := json.Marshal(mail.Notification{Name: r.Name, Email: r.Email,
					ID: fmt.Sprintf("%d-%s", r.Position, r.User), Type: r.Type, CustomerID: r.Customer, At: r.At.UTC()})
				if err != nil {
					return err
				}
				if _, seen := byTenant[r.Tenant]; !seen {
					order = append(order, r.Tenant)
				}
				// No CustomerID: the e-mail is the user's, and no delivery
				// event is recorded on the customer's stream.
				byTenant[r.Tenant] = append(byTenant[r.Tenant], eventstore.OutboxMessage{ID: r.EmailID, Kind: mail.KindNotification, Payload: payload})
			}
			for _, t := range order {
				if err := tx.QueueOutbox(ctx, t, byTenant[t], at); err != nil {
					return err
				}
			}
			n = len(got)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("notification e-mails: %w", err)
		}
		total += n
		if n < notificationEmailBatch {
			return total, nil
		}
	}
}

// RunNotificationEmails queues notification e-mails now and then every
// poll until ctx ends (see EmailNotifications).
func (c *Commands) RunNotificationEmails(ctx context.Context, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		n, err := c.EmailNotifications(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			c.log.Error("notification e-mails failed", slog.String("error", err.Error()))
		case n > 0:
			c.log.Debug("notification e-mails queued", slog.Int("emails", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
