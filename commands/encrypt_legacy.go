package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
)

// LegacyReport is what EncryptLegacy did.
type LegacyReport struct {
	Customers int `json:"customers"`
	Events    int `json:"events"`
	Claims    int `json:"claims"`
	// Erased are customers erased while their events were in clear: their
	// events are sealed with a key that is thrown away at once.
	Erased int `json:"erased"`
}

// EncryptLegacy is `ledger encrypt-legacy`, the one-off migration of
// customer events written in clear (schema version 1) before erasure
// existed. Stream by stream, each in its own transaction, it seals their
// personal fields with the customer's data key (made and stored in the same
// transaction when the customer has none; thrown away when the customer was
// erased) and recomputes the stream's hash chain (eventstore.RewriteStream,
// an operator rewrite that bypasses the append-only trigger). Then it
// replaces the plaintext values of customer uniqueness claims with their
// HMAC. Run it with the service stopped, then rebuild the read models (the
// audit log keeps a copy of each event's data).
func (c *Commands) EncryptLegacy(ctx context.Context) (LegacyReport, error) {
	var rep LegacyReport
	ids, err := c.legacyStreams(ctx)
	if err != nil {
		return rep, err
	}
	for _, id := range ids {
		n, erased, err := c.encryptStream(ctx, id)
		if err != nil {
			return rep, err
		}
		rep.Customers++
		rep.Events += n
		if erased {
			rep.Erased++
		}
	}
	rep.Claims, err = c.store.RehashClaims(ctx, []string{claimCustomerEmail, claimCustomerExternalID}, keyring.ClaimPrefix, c.keys.ClaimValue)
	return rep, err
}

// LegacyCustomers counts the customers whose personal data is still in
// clear in the event store: `ledger serve` warns until encrypt-legacy ran.
func (c *Commands) LegacyCustomers(ctx context.Context) (int, error) {
	ids, err := c.legacyStreams(ctx)
	return len(ids), err
}

// legacyStreams names the customers with profile events in clear (schema
// version 1), answered by the partial index events_plaintext_profiles
// (migration 0020): none once encrypt-legacy has run.
func (c *Commands) legacyStreams(ctx context.Context) ([]string, error) {
	ids, err := c.store.StreamsWithEventsAtSchema(ctx, 1,
		[]string{domain.TypeCustomerRegistered, domain.TypeClientInvited, domain.TypeCustomerUpdated})
	if err != nil {
		return nil, fmt.Errorf("find plaintext customer events: %w", err)
	}
	return ids, nil
}

// encryptStream seals one customer's plaintext events.
func (c *Commands) encryptStream(ctx context.Context, id string) (int, bool, error) {
	pool := c.store.Pool()
	tenantID, _, err := c.store.StreamOwner(ctx, id)
	if err != nil {
		return 0, false, fmt.Errorf("customer %s: %w", id, err)
	}
	var hasKey, tombstone bool
	err = pool.QueryRow(ctx, `SELECT wrapped_key IS NOT NULL, erased_at IS NOT NULL FROM customer_keys WHERE customer_id = $1`, id).
		Scan(&hasKey, &tombstone)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, false, fmt.Errorf("customer %s: %w", id, translatePg(err))
	}
	var dk keyring.DataKey
	if hasKey {
		keys, err := c.keys.Load(ctx, pool, []string{id})
		if err != nil {
			return 0, false, err
		}
		dk = keys[id]
	} else if dk, err = c.keys.NewDataKey(id); err != nil {
		return 0, false, err
	}
	erased := tombstone
	n, err := c.store.RewriteStream(ctx, id, func(e eventstore.Event) (eventstore.Rewrite, error) {
		if e.Type == domain.TypeCustomerErased {
			erased = true
		}
		if e.SchemaVersion != 1 || !keyring.Sensitive(e.Type) {
			return eventstore.Rewrite{}, nil
		}
		schema, data, err := dk.Seal(e.Type, e.SchemaVersion, e.Data)
		return eventstore.Rewrite{SchemaVersion: schema, Data: data, Changed: true}, err
	}, func(ctx context.Context, tx pgx.Tx) error {
		switch {
		case erased:
			// Sealed with a key nobody keeps: the erasure now holds.
			return keyring.Destroy(ctx, tx, tenantID, []string{id})
		case !hasKey:
			return keyring.Store(ctx, tx, tenantID, []keyring.DataKey{dk})
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	if erased {
		if err := c.store.Forget(ctx, tenantID, []string{id}); err != nil {
			return 0, false, err
		}
	}
	return n, erased, nil
}

// ReapplyReport is what ReapplyErasures did.
type ReapplyReport struct {
	// Erased are the customers whose erasure was applied again (key
	// destroyed, side records deleted).
	Erased []string `json:"erased"`
	// Appended are listed customers the restored event store did not know
	// erased: CustomerErased was appended for them now.
	Appended []string `json:"appended"`
	// Unknown are listed IDs the database has no customer of.
	Unknown []string `json:"unknown"`
}

// ReapplyErasures is `ledger erase --reapply`, run after restoring a
// backup: every customer with a CustomerErased event (the event store is the
// erasure list), and every customer of listed (the IDs `ledger erase
// --list` printed on the live system, for a backup older than some
// erasures), ends erased: its key destroyed, its claims, invitations,
// outbox rows and idempotency records deleted, and CustomerErased appended
// where missing. The read models must be rebuilt afterwards.
func (c *Commands) ReapplyErasures(ctx context.Context, listed []string) (ReapplyReport, error) {
	rep := ReapplyReport{Erased: []string{}, Appended: []string{}, Unknown: []string{}}
	erased, err := c.ErasedCustomers(ctx)
	if err != nil {
		return rep, err
	}
	byTenant := map[string][]string{}
	for _, e := range erased {
		byTenant[e.TenantID] = append(byTenant[e.TenantID], e.CustomerID)
	}
	known := map[string]bool{}
	for tenant, ids := range byTenant {
		if err := keyring.Destroy(ctx, c.store.Pool(), tenant, ids); err != nil {
			return rep, err
		}
		if err := c.store.Forget(ctx, tenant, ids); err != nil {
			return rep, err
		}
		for _, id := range ids {
			known[id] = true
		}
		rep.Erased = append(rep.Erased, ids...)
	}
	for _, raw := range listed {
		id, ok := parseID(raw)
		if !ok {
			rep.Unknown = append(rep.Unknown, raw)
			continue
		}
		if known[id] {
			continue
		}
		tenantID, streamType, err := c.store.StreamOwner(ctx, id)
		if errors.Is(err, eventstore.ErrNotFound) || (err == nil && streamType != streamCustomer) {
			rep.Unknown = append(rep.Unknown, id)
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("customer %s: %w", id, err)
		}
		m := Meta{TenantID: tenantID, Actor: domain.Actor{Name: "erasure reapplied", Role: domain.RoleAdmin}}
		if _, err := c.BulkCustomers(ctx, m, CustomerBulkRequest{Action: domain.CustomerActionDelete, CustomerIDs: []string{id}}); err != nil {
			return rep, fmt.Errorf("erase customer %s: %w", id, err)
		}
		known[id] = true
		rep.Appended = append(rep.Appended, id)
	}
	slices.Sort(rep.Erased)
	return rep, nil
}

// ErasedCustomer is a customer with a CustomerErased event.
type ErasedCustomer struct {
	TenantID   string `json:"tenant_id"`
	CustomerID string `json:"customer_id"`
}

// ErasedCustomers lists every erased customer (`ledger erase --list`): IDs
// only, to keep beside the KEK, outside the database's backups.
func (c *Commands) ErasedCustomers(ctx context.Context) ([]ErasedCustomer, error) {
	events, err := c.store.EventsOfType(ctx, domain.TypeCustomerErased)
	if err != nil {
		return nil, fmt.Errorf("list erased customers: %w", err)
	}
	out := make([]ErasedCustomer, len(events))
	for i, e := range events {
		out[i] = ErasedCustomer{TenantID: e.TenantID, CustomerID: e.StreamID}
	}
	return out, nil
}
