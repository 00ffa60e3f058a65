package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/ledgerlog"
	"github.com/assignment-ledger/ledger/mail"
)

// CheckpointSource is what the daily checkpoint e-mail needs of the ledger
// log (a *ledgerlog.Log): the tenant's latest signed checkpoint, signed on
// demand when the tree has grown, and the key it verifies with.
type CheckpointSource interface {
	Latest(ctx context.Context, tenantID string) (ledgerlog.Signed, error)
	VerifierKey() string
}

// CheckpointEmailPoll is how often `serve` looks for tenants whose
// recipients have not had today's checkpoint e-mail. Looking is cheap (one
// query over the recipients, one over today's claims); the claim, not the
// timer, keeps it to one e-mail a day.
const CheckpointEmailPoll = 10 * time.Minute

// qRecipientsWhere picks, among a tenant's users, the checkpoint e-mail's
// recipients: active auditors, and active admins who opted in.
const qRecipientsWhere = `u.status = '` + string(domain.UserStatusActive) + `'
  AND (u.role = '` + string(domain.RoleAuditor) + `' OR (u.role = '` + string(domain.RoleAdmin) + `' AND u.checkpoint_email))`

// qAuditedTenants are the tenants with a recipient of the checkpoint
// e-mail that have not had it on day $1.
const qAuditedTenants = `SELECT DISTINCT u.tenant_id::text FROM users u
WHERE ` + qRecipientsWhere + `
  AND NOT EXISTS (SELECT 1 FROM checkpoint_emails e WHERE e.tenant_id = u.tenant_id AND e.day = $1::date)
ORDER BY 1`

// qClaimCheckpointEmail claims the tenant's e-mail of the day; the process
// that inserts nothing (another one, or this one before a restart, got
// there first) queues nothing.
const qClaimCheckpointEmail = `INSERT INTO checkpoint_emails (tenant_id, day, tree_size, recipients, queued_at)
VALUES ($1, $2::date, $3, $4, $5) ON CONFLICT DO NOTHING`

const qRecipients = `SELECT u.name, u.email FROM users u
WHERE u.tenant_id = $1 AND ` + qRecipientsWhere + `
ORDER BY u.id`

// EmailCheckpoints queues the daily checkpoint e-mail of the UTC day of
// at: every tenant with active auditors, or active admins who opted in
// (checkpoint_email), that has not had it that day gets, for each of them,
// an e-mail holding its latest signed checkpoint.
// The day's claim (checkpoint_emails) is inserted in the same transaction
// as the outbox rows, so however many processes run this and however
// often they restart, a tenant's recipients are e-mailed once a day: an
// admin who opts in after the day's e-mail went out gets it the next day.
// It answers how many e-mails it queued.
func (c *Commands) EmailCheckpoints(ctx context.Context, src CheckpointSource, at time.Time) (int, error) {
	if !c.email {
		return 0, ErrEmailNotConfigured
	}
	day := at.UTC().Format(time.DateOnly)
	var tenants []string
	err := c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
		rows, err := tx.Query(ctx, qAuditedTenants, day)
		if err == nil {
			tenants, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("checkpoint e-mails: find tenants: %w", err)
	}
	queued := 0
	for _, tenant := range tenants {
		n, err := c.emailCheckpoint(ctx, src, tenant, day, at)
		if err != nil {
			return queued, fmt.Errorf("checkpoint e-mail of tenant %s: %w", tenant, err)
		}
		queued += n
	}
	return queued, nil
}

// emailCheckpoint queues tenant's checkpoint e-mails of day, unless it has
// no tree yet (nothing to sign) or its day's claim is taken.
func (c *Commands) emailCheckpoint(ctx context.Context, src CheckpointSource, tenant, day string, at time.Time) (int, error) {
	cp, err := src.Latest(ctx, tenant)
	if errors.Is(err, ledgerlog.ErrNoTree) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	queued := 0
	err = c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
		queued = 0
		rows, err := tx.Query(ctx, qRecipients, tenant)
		if err != nil {
			return err
		}
		recipients, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Name, Email string }])
		if err != nil || len(recipients) == 0 {
			return err
		}
		tag, err := tx.Exec(ctx, qClaimCheckpointEmail, tenant, day, cp.TreeSize, len(recipients), at)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		// Each is about no customer, so no delivery event is recorded.
		msgs := make([]eventstore.OutboxMessage, len(recipients))
		for i, a := range recipients {
			payload, err := json.Marshal(mail.Checkpoint{Name: a.Name, Email: a.Email, Day: day, Origin: cp.Origin,
				TreeSize: cp.TreeSize, Note: cp.Note, VerifierKey: src.VerifierKey()})
			if err != nil {
				return err
			}
			msgs[i] = eventstore.OutboxMessage{ID: newID(), Kind: mail.KindCheckpoint, Payload: payload}
		}
		if err := tx.QueueOutbox(ctx, tenant, msgs, at); err != nil {
			return err
		}
		queued = len(msgs)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return queued, nil
}

// RunCheckpointEmails queues the day's checkpoint e-mails now and then
// every poll until ctx ends (see EmailCheckpoints).
func (c *Commands) RunCheckpointEmails(ctx context.Context, src CheckpointSource, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		n, err := c.EmailCheckpoints(ctx, src, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			c.log.Error("checkpoint e-mails failed", slog.String("error", err.Error()))
		case n > 0:
			c.log.Info("checkpoint e-mails queued", slog.Int("emails", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
