package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// CreateUser adds a team member (admin only). Emails are unique in a
// tenant: a duplicate is the RuleError email_taken.
func (c *Commands) CreateUser(ctx context.Context, m Meta, name, email string, role domain.Role) (UserResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return UserResult{}, err
	}
	m, err := m.prepare()
	if err != nil {
		return UserResult{}, err
	}
	return transact(ctx, c, "CreateUser", m, func(ctx context.Context, tx *cmdTx) (UserResult, error) {
		id := newID()
		events, err := domain.CreateUser(id, m.TenantID, name, email, role)
		if err != nil {
			return UserResult{}, err
		}
		created := events[0].(domain.UserCreated)
		at := now()
		result := UserResult{UserView: userView(domain.User{ID: id, Name: created.Name, Email: created.Email,
			Role: created.Role, Status: domain.UserStatusActive, CreatedAt: at})}
		data, err := encode(events)
		if err != nil {
			return UserResult{}, err
		}
		if err := insertUser(m.TenantID, created, at)(ctx, tx); err != nil {
			return UserResult{}, translateClaim(err)
		}
		if _, err := tx.append(ctx, eventstore.AppendRequest{
			TenantID: m.TenantID,
			Streams:  []eventstore.StreamWrite{{StreamID: id, StreamType: streamUser, ExpectedVersion: eventstore.NoStream, Events: data}},
			Claims:   []eventstore.Claim{{Kind: claimUserEmail, Value: created.Email, OwnerID: id}},
			Metadata: m.metadata(),
			Now:      at,
		}, &result, &result.Position); err != nil {
			return UserResult{}, translateClaim(err)
		}
		c.names.put(id, created.Name)
		return result, nil
	})
}

// insertUser writes the team directory row of a new user, in the
// transaction of its UserCreated.
func insertUser(tenantID string, u domain.UserCreated, at time.Time) func(context.Context, execer) error {
	return func(ctx context.Context, tx execer) error {
		_, err := tx.Exec(ctx, `INSERT INTO users (id, tenant_id, name, email, role, status, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, u.UserID, tenantID, u.Name, u.Email, string(u.Role), string(domain.UserStatusActive), at)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return &domain.RuleError{Code: domain.CodeEmailTaken, Detail: fmt.Sprintf("email %q is already used by another user", u.Email)}
		}
		if err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		return nil
	}
}
