package commands

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// qLockAdmins locks, in ID order (the users-first order of every command),
// the tenant's active admins and the user being changed: two admins
// demoting each other at once are serialised, and the second counts the
// admins the first left.
const qLockAdmins = `SELECT ` + userColumns + ` FROM users
	WHERE tenant_id = $1 AND (id = $2 OR (role = 'admin' AND status = 'active'))
	ORDER BY id FOR UPDATE`

// UpdateUser changes a user's role (admin only): a UserUpdated event, and
// the team directory row in the same transaction. The tenant's last active
// admin cannot be demoted (last_admin). The same role again appends nothing.
//
// name, when given, must be the user's current name: names are copied into
// the read models (the assigned-user column, My Clients, notifications) on
// the assumption that they never change, so renaming needs the projections
// to follow UserUpdated first. Until then a new name is refused, rather
// than shown in some places and not others.
func (c *Commands) UpdateUser(ctx context.Context, m Meta, userID string, name *string, role *domain.Role) (UserResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return UserResult{}, err
	}
	m, err := m.prepare()
	if err != nil {
		return UserResult{}, err
	}
	uid, ok := parseID(userID)
	if !ok {
		return UserResult{}, notFound("user", userID)
	}
	return idempotent(ctx, c, m, func(idem *eventstore.Idempotency, replay *[]byte) (UserResult, error) {
		var result UserResult
		err := c.withRetry(ctx, "UpdateUser", false, func() error {
			return c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
				locked, err := collectUsers(tx.Query(ctx, qLockAdmins, m.TenantID, uid))
				if err != nil {
					return err
				}
				u, ok := locked[uid]
				if !ok {
					return notFound("user", uid)
				}
				if name != nil && *name != u.Name {
					return &domain.ValidationError{Field: "name", Detail: "renaming a user is not supported yet (the read models copy names); only role can change"}
				}
				var events []domain.Event
				if role != nil {
					admins := 0
					for _, a := range locked {
						if a.Role == domain.RoleAdmin && a.Active() {
							admins++
						}
					}
					if events, err = u.ChangeRole(*role, admins); err != nil {
						return err
					}
				}
				for _, e := range events {
					u.Apply(e, now())
				}
				result = UserResult{UserView: userView(u)}
				if len(events) == 0 && idem == nil {
					return nil
				}
				data, err := encode(events)
				if err != nil {
					return err
				}
				res, err := tx.Append(ctx, eventstore.AppendRequest{
					TenantID: m.TenantID,
					Streams:  []eventstore.StreamWrite{{StreamID: uid, StreamType: streamUser, ExpectedVersion: eventstore.Any, Events: data}},
					Metadata: m.metadata(),
					Side: func(ctx context.Context, tx pgx.Tx) error {
						if _, err := tx.Exec(ctx, `UPDATE users SET role = $3 WHERE tenant_id = $1 AND id = $2`,
							m.TenantID, uid, string(u.Role)); err != nil {
							return fmt.Errorf("update user row: %w", err)
						}
						return nil
					},
					Idempotency: withIdempotency(idem, &result, func(p int64) { result.Position = p }),
					Now:         now(),
				})
				if err != nil {
					return err
				}
				if res.Replayed {
					*replay = res.Response
					return errReplayed
				}
				result.Position = res.Position
				return nil
			})
		})
		return result, err
	})
}
