package commands

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
	"github.com/assignment-ledger/ledger/projections"
)

// DeactivateUser deactivates userID (admin only): the user can no longer be
// assigned or authenticate. With transferTo ("" for none) each of the
// user's customers is handed to transferTo in the same role; without, the
// user is unassigned everywhere, or the whole deactivation is refused if
// that would break a customer's policy.
//
// It answers once no process trusts the user's keys any more (KeyLease).
//
// The user's row is locked FOR UPDATE first, which waits for every command
// that is using the user (they hold it FOR SHARE) and holds off new ones;
// so the customers found afterwards are all of them, and no assignment of
// the user can commit after the deactivation.
func (c *Commands) DeactivateUser(ctx context.Context, m Meta, userID, transferTo string) (UserResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return UserResult{}, err
	}
	m, err := m.prepare()
	if err != nil {
		return UserResult{}, err
	}
	ids := []string{userID}
	if transferTo != "" {
		ids = append(ids, transferTo)
	}
	ids, err = parseIDs("user", ids...)
	if err != nil {
		return UserResult{}, err
	}
	uid := ids[0]
	res, err := idempotent(ctx, c, m, func(idem *eventstore.Idempotency, replay *[]byte) (UserResult, error) {
		var result UserResult
		err := c.withRetry(ctx, "DeactivateUser", false, func() error {
			return c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
				// Deactivating an admin locks every active admin of the
				// tenant FOR UPDATE, so that two admins deactivating each
				// other at once cannot both see the other still active.
				admins, err := activeAdmins(ctx, tx, m.TenantID)
				if err != nil {
					return err
				}
				lockIDs := ids
				targetAdmin := slices.Contains(admins, uid)
				if targetAdmin {
					lockIDs = append(slices.Clone(ids), admins...)
				}
				// Users in ID order, whatever their lock mode.
				users := make(map[string]domain.User, len(lockIDs))
				for _, id := range sortedUnique(lockIDs) {
					mode := forShare
					if id == uid || (targetAdmin && slices.Contains(admins, id)) {
						mode = forUpdate
					}
					got, err := requireUsers(ctx, tx, m.TenantID, []string{id}, mode)
					if err != nil {
						return err
					}
					users[id] = got[id]
				}
				u := users[uid]
				var to *domain.User
				if len(ids) == 2 {
					t := users[ids[1]]
					to = &t
				}
				// Refuse early (already deactivated, transfer to self or to a
				// deactivated user) before reading any customer.
				if _, err := u.Deactivate(to); err != nil {
					return err
				}
				if u.Role == domain.RoleAdmin {
					others := 0
					for _, id := range admins {
						if o := users[id]; id != uid && o.Role == domain.RoleAdmin && o.Active() {
							others++
						}
					}
					if others == 0 {
						return lastAdminError(uid)
					}
				}

				candidates, err := customersOf(ctx, tx, m.TenantID, uid)
				if err != nil {
					return err
				}
				versions, err := lockCustomers(ctx, tx, m.TenantID, candidates, forUpdate)
				if err != nil {
					return err
				}
				locked := slices.Sorted(maps.Keys(versions))
				// An erased customer keeps its last team in its history; a
				// deactivation leaves it as it is.
				l, err := loadCustomersWithErased(ctx, c.keys, tx, m.TenantID, locked)
				if err != nil {
					return err
				}
				var customers []domain.Customer
				for _, id := range locked {
					if _, on := l.customers[id].Member(uid); on && !l.customers[id].Erased {
						customers = append(customers, l.customers[id])
					}
				}
				userEvents, customerEvents, err := domain.DeactivateUser(u, to, customers, l.policy)
				if err != nil {
					return err
				}
				if to != nil {
					capErrs, err := c.heirCapacityErrors(ctx, tx, m.TenantID, l.policy, customers, uid, to.ID, true)
					if err != nil {
						return err
					}
					if len(capErrs) > 0 {
						return &domain.RuleError{Code: capErrs[0].Code, Detail: fmt.Sprintf("%s: %d of the %d customers handed over are past the cap",
							capErrs[0].Detail, len(capErrs), len(customers))}
					}
				}

				at := now()
				data, err := encode(userEvents)
				if err != nil {
					return err
				}
				customerWrites, err := customerStreams(customerEvents, versions)
				if err != nil {
					return err
				}
				streams := append([]eventstore.StreamWrite{{StreamID: uid, StreamType: streamUser, ExpectedVersion: eventstore.Any, Events: data}}, customerWrites...)
				u.Status = domain.UserStatusDeactivated
				result = UserResult{UserView: userView(u)}
				if _, err := tx.Exec(ctx, `UPDATE users SET status = $3 WHERE tenant_id = $1 AND id = $2`,
					m.TenantID, uid, string(domain.UserStatusDeactivated)); err != nil {
					return fmt.Errorf("deactivate user row: %w", err)
				}
				res, err := appendOrReplay(ctx, tx, eventstore.AppendRequest{
					TenantID:    m.TenantID,
					Streams:     streams,
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
	if err != nil {
		return UserResult{}, err
	}
	// The user's keys stop working everywhere before the answer.
	c.revoked(ctx, uid)
	return res, nil
}

// customersOf names every customer that may have userID on its team: the
// teams my_clients folded with the user on them, and every customer that
// fold may not have caught up with (a projection may lag). The caller
// loads them and asks the domain's fold who is on each team. Under the
// user's FOR UPDATE lock no assignment of the user can commit meanwhile.
func customersOf(ctx context.Context, tx *eventstore.Tx, tenantID, userID string) ([]string, error) {
	on, lagging, err := projections.TeamsOf(ctx, tx, tenantID, userID)
	if err != nil {
		return nil, fmt.Errorf("find the user's customers: %w", err)
	}
	return sortedUnique(append(on, lagging...)), nil
}

// DeactivationPreview is what DeactivateUser would do: the customers the
// user would leave (handed to transfer_to, or without it simply unassigned)
// and every customer whose policy refuses.
type DeactivationPreview struct {
	ToBeTransferred []string           `json:"to_be_transferred"`
	Errors          []domain.PairError `json:"errors"`
}

// PreviewDeactivation answers what DeactivateUser with the same arguments
// would do now, and writes nothing (a dry run). It reads without locks: a
// preview is a picture, not a promise. A refusal of the user itself
// (already deactivated, transfer to self or to a deactivated user) is an
// error, as for the real thing.
func (c *Commands) PreviewDeactivation(ctx context.Context, m Meta, userID, transferTo string) (DeactivationPreview, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return DeactivationPreview{}, err
	}
	m, err := m.prepare()
	if err != nil {
		return DeactivationPreview{}, err
	}
	ids := []string{userID}
	if transferTo != "" {
		ids = append(ids, transferTo)
	}
	if ids, err = parseIDs("user", ids...); err != nil {
		return DeactivationPreview{}, err
	}
	var preview DeactivationPreview
	err = c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
		users, err := requireUsers(ctx, tx, m.TenantID, sortedUnique(ids), noLock)
		if err != nil {
			return err
		}
		var to *domain.User
		if len(ids) == 2 {
			t := users[ids[1]]
			to = &t
		}
		// The tenant's last active admin is refused as by the real call
		// (found by hostile testing: the dry run answered no error).
		if u := users[ids[0]]; u.Role == domain.RoleAdmin && u.Active() {
			admins, err := activeAdmins(ctx, tx, m.TenantID)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(admins, func(id string) bool { return id != u.ID }) {
				return lastAdminError(u.ID)
			}
		}
		customers, pol, err := customersWith(ctx, c.keys, tx, m.TenantID, ids[0], nil, noLock)
		if err != nil {
			return err
		}
		plan, err := domain.PlanDeactivation(users[ids[0]], to, customers, pol)
		if err != nil {
			return err
		}
		preview = DeactivationPreview{ToBeTransferred: nonNil(plan.Leaving), Errors: nonNil(plan.Errors)}
		if to != nil {
			// The real deactivation refuses these too (found by hostile
			// testing: the preview showed no error, the call a 409).
			var leaving []domain.Customer
			for _, cu := range customers {
				if slices.Contains(plan.Leaving, cu.ID) {
					leaving = append(leaving, cu)
				}
			}
			capErrs, err := c.heirCapacityErrors(ctx, tx, m.TenantID, pol, leaving, ids[0], to.ID, false)
			if err != nil {
				return err
			}
			preview.Errors = append(preview.Errors, capErrs...)
		}
		return nil
	})
	return preview, err
}

// lastAdminError refuses deactivating userID, the tenant's last active
// admin.
func lastAdminError(userID string) error {
	return &domain.RuleError{Code: domain.CodeLastAdmin,
		Detail: fmt.Sprintf("user %s is the tenant's last active admin; make another user admin first", userID)}
}

// heirCapacityErrors are the customers that handing leaver's place on
// each of customers to heir would give heir past the policy's
// max_customers_per_user, as pair errors (lock false: a dry run counts
// without the capacity locks).
func (c *Commands) heirCapacityErrors(ctx context.Context, tx *eventstore.Tx, tenantID string, pol domain.Policy, customers []domain.Customer, leaver, heir string, lock bool) ([]domain.PairError, error) {
	var gained, lost []domain.Pair
	for _, cu := range customers {
		if _, on := cu.Member(heir); !on {
			gained = append(gained, domain.Pair{CustomerID: cu.ID, UserID: heir})
		}
		lost = append(lost, domain.Pair{CustomerID: cu.ID, UserID: leaver})
	}
	return c.capacityPairErrors(ctx, tx, tenantID, pol, gained, lost, lock)
}

// customersWith loads the candidate customers of userID (listed, or when
// nil every customer the user was ever put on), locked with mode, in ID
// order, with the tenant's policy. Listed IDs that are not the tenant's
// customers are left out.
func customersWith(ctx context.Context, kr *keyring.Keyring, tx *eventstore.Tx, tenantID, userID string, listed []string, mode lockMode) ([]domain.Customer, domain.Policy, error) {
	candidates := listed
	if candidates == nil {
		var err error
		if candidates, err = customersOf(ctx, tx, tenantID, userID); err != nil {
			return nil, domain.Policy{}, err
		}
	}
	versions, err := lockCustomers(ctx, tx, tenantID, sortedUnique(validIDs(candidates)), mode)
	if err != nil {
		return nil, domain.Policy{}, err
	}
	found := slices.Sorted(maps.Keys(versions))
	l, err := loadCustomersWithErased(ctx, kr, tx, tenantID, found)
	if err != nil {
		return nil, domain.Policy{}, err
	}
	customers := make([]domain.Customer, 0, len(found))
	for _, id := range found {
		if !l.customers[id].Erased { // erased customers keep their last team
			customers = append(customers, l.customers[id])
		}
	}
	return customers, l.policy, nil
}

// activeAdmins lists the tenant's active admins as they stand (unlocked).
func activeAdmins(ctx context.Context, tx *eventstore.Tx, tenantID string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT id::text FROM users WHERE tenant_id = $1 AND role = $2 AND status = $3 ORDER BY id`,
		tenantID, string(domain.RoleAdmin), string(domain.UserStatusActive))
	if err != nil {
		return nil, fmt.Errorf("find the tenant's admins: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find the tenant's admins: %w", err)
	}
	return ids, nil
}
