package commands

import (
	"context"
	"fmt"
	"time"

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

// UpdateUser changes a user's name and role (admin only); see ChangeUser.
func (c *Commands) UpdateUser(ctx context.Context, m Meta, userID string, name *string, role *domain.Role) (UserResult, error) {
	return c.ChangeUser(ctx, m, userID, UserChange{Name: name, Role: role})
}

// UserChange is what ChangeUser changes; a nil field is left as it is.
type UserChange struct {
	Name *string
	Role *domain.Role
	// CheckpointEmail is an admin's opt-in to the daily checkpoint e-mail.
	// Any admin may set it for any admin (like name and role); only an
	// admin may be opted in.
	CheckpointEmail *bool
	// Away asks to set AwayUntil (nil: the user is back); the user or an
	// admin may. NotifyByEmail is the user's own choice only.
	Away          bool
	AwayUntil     *time.Time
	NotifyByEmail *bool
}

// ChangeUser changes a user's name, role and checkpoint e-mail opt-in
// (admin only): one UserUpdated event, and the team directory row in the
// same transaction. The tenant's
// last active admin cannot be demoted (last_admin). No change appends
// nothing. The read models look names up when they are read, so a new name
// shows everywhere at once; events keep the names they were recorded with
// (an audit entry's actor name is what it was then).
func (c *Commands) ChangeUser(ctx context.Context, m Meta, userID string, ch UserChange) (UserResult, error) {
	role := ch.Role
	dch := domain.UserChange{Name: ch.Name, Role: ch.Role, CheckpointEmail: ch.CheckpointEmail,
		Away: ch.Away, AwayUntil: ch.AwayUntil, NotifyByEmail: ch.NotifyByEmail}
	uid, ok := parseID(userID)
	if err := domain.AuthorizeUserChange(m.Actor, uid, dch); err != nil {
		return UserResult{}, err
	}
	m, err := m.prepare()
	if err != nil {
		return UserResult{}, err
	}
	if !ok {
		return UserResult{}, notFound("user", userID)
	}
	res, err := transact(ctx, c, "UpdateUser", m, func(ctx context.Context, tx *cmdTx) (UserResult, error) {
		var result UserResult
		locked, err := collectUsers(tx.Query(ctx, qLockAdmins, m.TenantID, uid))
		if err != nil {
			return result, err
		}
		u, ok := locked[uid]
		if !ok {
			return result, notFound("user", uid)
		}
		admins := 0
		for _, a := range locked {
			if a.Role == domain.RoleAdmin && a.Active() {
				admins++
			}
		}
		events, err := u.Change(dch, admins)
		if err != nil {
			return result, err
		}
		if role != nil && *role == domain.RoleAuditor && u.Role != domain.RoleAuditor {
			// An auditor is never on a team. The user's FOR UPDATE lock
			// above keeps any assignment of it from committing meanwhile
			// (assignments lock their users FOR SHARE).
			if err := refuseAuditorOnTeams(ctx, c, tx, m.TenantID, u); err != nil {
				return result, err
			}
		}
		for _, e := range events {
			u.Apply(e, now())
		}
		// Command answers name the team from this cache; another
		// process's copy keeps the old name until it restarts
		// (the read models look names up when read).
		c.names.put(u.ID, u.Name)
		result = UserResult{UserView: userView(u)}
		if len(events) == 0 && !tx.keyed() {
			return result, nil
		}
		data, err := encode(events)
		if err != nil {
			return result, err
		}
		side := func(ctx context.Context, tx execer) error {
			if _, err := tx.Exec(ctx, `UPDATE users SET role = $3, name = $4, checkpoint_email = $5, away_until = $6, notify_by_email = $7,
				notify_since = CASE WHEN $7 AND NOT notify_by_email THEN now() WHEN $7 THEN notify_since END
				WHERE tenant_id = $1 AND id = $2`,
				m.TenantID, uid, string(u.Role), u.Name, u.CheckpointEmail, u.AwayUntil, u.NotifyByEmail); err != nil {
				return fmt.Errorf("update user row: %w", err)
			}
			return nil
		}
		if err := side(ctx, tx); err != nil {
			return result, err
		}
		res, err := tx.append(ctx, eventstore.AppendRequest{
			TenantID: m.TenantID,
			Streams:  []eventstore.StreamWrite{{StreamID: uid, StreamType: streamUser, ExpectedVersion: eventstore.Any, Events: data}},
			Metadata: m.metadata(),
			Now:      now(),
		}, &result, &result.Position)
		if err != nil {
			return result, err
		}
		result.Position = res.Position
		return result, nil
	})
	if err != nil {
		return UserResult{}, err
	}
	if role != nil {
		// A demoted admin's keys lose their power everywhere before the
		// answer (KeyLease).
		c.revoked(ctx, uid)
	}
	return res, nil
}

// refuseAuditorOnTeams loads every customer that may have u on its team and
// lets the domain refuse making u an auditor while it is on one.
func refuseAuditorOnTeams(ctx context.Context, c *Commands, tx *cmdTx, tenantID string, u domain.User) error {
	candidates, err := customersOf(ctx, tx.Tx, tenantID, u.ID)
	if err != nil {
		return err
	}
	if len(candidates) == 0 {
		return nil
	}
	l, err := loadCustomersWithErased(ctx, c.keys, tx.Tx, tenantID, candidates)
	if err != nil {
		return err
	}
	customers := make([]domain.Customer, 0, len(candidates))
	for _, id := range candidates {
		customers = append(customers, l.customers[id])
	}
	return u.RefuseAuditorOnTeams(customers)
}
