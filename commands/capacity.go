package commands

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
	"github.com/assignment-ledger/ledger/projections"
)

// Capacity (max_customers_per_user) is race-safe like max_assignees, but a
// user's load spans many customer streams, so no stream lock covers it.
// Every command that may give a user a customer under a capped policy
// takes a per-user lock (a transaction-level advisory lock keyed by the
// user's ID) for each user it may give one, and only then counts the
// user's customers: a command counting while another holds the lock waits
// for its commit and then sees its events. The locks are taken after the
// stream heads, in ID order, and nothing is locked after them but the
// append: the global order (users, customers, capacity) stays acyclic.
// Without a cap nothing is locked or counted.

// qCapacityLock is one user's capacity lock; the hash's seed keeps it
// apart from any other advisory lock on the same ID.
const qCapacityLock = `SELECT pg_advisory_xact_lock(hashtextextended($1, 802))`

// userLoads counts the customers each of ids (sorted, unique) serves in
// the tenant, after taking their capacity locks unless lock is false (a
// dry run reads a picture); with tenantID "" it only locks. Erased
// customers count for nobody.
func userLoads(ctx context.Context, kr *keyring.Keyring, tx *eventstore.Tx, tenantID string, ids []string, lock bool) (domain.Loads, error) {
	loads := domain.Loads{}
	if len(ids) == 0 {
		return loads, nil
	}
	if lock {
		b := &pgx.Batch{}
		for _, id := range ids {
			b.Queue(qCapacityLock, id)
		}
		br := tx.SendBatch(ctx, b)
		for range ids {
			if _, err := br.Exec(); err != nil {
				_ = br.Close()
				return nil, fmt.Errorf("lock the users' capacity: %w", translatePg(err))
			}
		}
		if err := br.Close(); err != nil {
			return nil, fmt.Errorf("lock the users' capacity: %w", translatePg(err))
		}
		if tenantID == "" {
			return loads, nil
		}
	}
	counts, lag, err := projections.CountsOf(ctx, tx, tenantID, ids)
	if err != nil {
		return nil, err
	}
	for id, n := range counts {
		loads[id] = n
	}
	if len(lag) == 0 {
		return loads, nil
	}
	l, err := loadCustomersWithErased(ctx, kr, tx, tenantID, lag)
	if err != nil {
		return nil, fmt.Errorf("count the users' customers: %w", err)
	}
	for _, cu := range l.customers {
		if cu.Erased {
			continue
		}
		for _, id := range ids {
			if _, on := cu.Member(id); on {
				loads[id]++
			}
		}
	}
	return loads, nil
}

// capacityLoads takes the capacity locks of the users the group's commands
// name in tenants whose policy caps customers per user (all in one ID
// order, whatever their tenant) and counts their customers, by tenant.
func (u *unit) capacityLoads(ctx context.Context, tx *eventstore.Tx, group []*customerOp, tenants map[string]domain.Tenant) (map[string]domain.Loads, error) {
	byTenant := map[string][]string{}
	var all []string
	for _, op := range group {
		if tenants[op.m.TenantID].Policy.Capped() {
			byTenant[op.m.TenantID] = append(byTenant[op.m.TenantID], op.userIDs...)
			all = append(all, op.userIDs...)
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	if _, err := userLoads(ctx, u.c.keys, tx, "", sortedUnique(all), true); err != nil {
		return nil, err
	}
	out := map[string]domain.Loads{}
	for t, ids := range byTenant {
		loads, err := userLoads(ctx, u.c.keys, tx, t, sortedUnique(ids), false)
		if err != nil {
			return nil, err
		}
		out[t] = loads
	}
	return out, nil
}

// teamChange is one customer's team before and after a command.
type teamChange struct{ before, after domain.Customer }

// gainedUsers lists, sorted and unique, the users changes give a customer.
func gainedUsers(changes []teamChange) []string {
	var ids []string
	for _, ch := range changes {
		ids = append(ids, domain.Gained(ch.before, ch.after)...)
	}
	return sortedUnique(ids)
}

// checkCapacity refuses (user_at_capacity) changes, taken in order, that
// give a user a customer beyond pol's max_customers_per_user, under the
// capacity locks of the users they give customers (none without a cap).
func (c *Commands) checkCapacity(ctx context.Context, tx *eventstore.Tx, tenantID string, pol domain.Policy, changes []teamChange) error {
	if !pol.Capped() {
		return nil
	}
	ids := gainedUsers(changes)
	if len(ids) == 0 {
		return nil
	}
	loads, err := userLoads(ctx, c.keys, tx, tenantID, ids, true)
	if err != nil {
		return err
	}
	for _, ch := range changes {
		if err := pol.CheckCapacity(loads, ch.before, ch.after); err != nil {
			return err
		}
		loads.Move(ch.before, ch.after)
	}
	return nil
}

// capacityPairErrors is checkCapacity for the all-or-nothing bulk calls:
// the gained pairs past a user's cap, as pair errors (lock false: a dry
// run counts without the locks).
func (c *Commands) capacityPairErrors(ctx context.Context, tx *eventstore.Tx, tenantID string, pol domain.Policy, gained, lost []domain.Pair, lock bool) ([]domain.PairError, error) {
	if !pol.Capped() || len(gained) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(gained))
	for _, p := range gained {
		ids = append(ids, p.UserID)
	}
	loads, err := userLoads(ctx, c.keys, tx, tenantID, sortedUnique(ids), lock)
	if err != nil {
		return nil, err
	}
	return pol.CapacityErrors(loads, gained, lost), nil
}
