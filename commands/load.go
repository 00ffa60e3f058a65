package commands

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
)

// lockMode is how a command locks a row it reads.
type lockMode string

const (
	noLock    lockMode = ""
	forShare  lockMode = " FOR SHARE"
	forUpdate lockMode = " FOR UPDATE"
)

const userColumns = `id::text, tenant_id::text, name, email, role, status, created_at, checkpoint_email, away_until, notify_by_email`

func scanUser(row pgx.Row) (domain.User, error) {
	var u domain.User
	var role, status string
	if err := row.Scan(&u.ID, &u.TenantID, &u.Name, &u.Email, &role, &status, &u.CreatedAt, &u.CheckpointEmail, &u.AwayUntil, &u.NotifyByEmail); err != nil {
		return domain.User{}, err
	}
	u.Role = domain.Role(role)
	u.Status = domain.UserStatus(status)
	u.CreatedAt = u.CreatedAt.UTC()
	if u.AwayUntil != nil {
		t := u.AwayUntil.UTC()
		u.AwayUntil = &t
	}
	return u, nil
}

// lockUsers reads the tenant's users among ids from the team directory,
// locking their rows in ID order with mode. Unknown IDs are simply absent.
func lockUsers(ctx context.Context, q querier, tenantID string, ids []string, mode lockMode) (map[string]domain.User, error) {
	out := make(map[string]domain.User, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	return collectUsers(q.Query(ctx, qUsers+string(mode), tenantID, ids))
}

const qUsers = `SELECT ` + userColumns + ` FROM users WHERE tenant_id = $1 AND id = ANY($2::text[]::uuid[]) ORDER BY id`

func collectUsers(rows pgx.Rows, err error) (map[string]domain.User, error) {
	if err != nil {
		return nil, fmt.Errorf("read users: %w", translatePg(err))
	}
	defer rows.Close()
	out := map[string]domain.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("read users: %w", err)
		}
		out[u.ID] = u
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read users: %w", translatePg(err))
	}
	return out, nil
}

// requireUsers is lockUsers for commands that need every listed user:
// any unknown one is ErrNotFound.
func requireUsers(ctx context.Context, q querier, tenantID string, ids []string, mode lockMode) (map[string]domain.User, error) {
	users, err := lockUsers(ctx, q, tenantID, ids, mode)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if _, ok := users[id]; !ok {
			return nil, notFound("user", id)
		}
	}
	return users, nil
}

// execer runs the commands' own statements (side records on the tables the
// commands own) in a command's transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// lockedOf returns the ids that lockCustomers found (locked), in the order
// of ids: the customers a bulk command goes on to load.
func lockedOf(ids []string, versions map[string]int64) []string {
	out := make([]string, 0, len(versions))
	for _, id := range ids {
		if _, ok := versions[id]; ok {
			out = append(out, id)
		}
	}
	return out
}

// streamSource is where a command reads streams: its transaction
// (*eventstore.Tx, which locks) or, outside one, the store (storeReads).
// Query reads the commands' own tables (users) and the keyring's.
type streamSource interface {
	ReadStreamsAfter(ctx context.Context, ids []string, after []int64) (map[string][]eventstore.Event, error)
	StreamVersions(ctx context.Context, tenantID, streamType string, ids []string, lock eventstore.Lock) (map[string]int64, error)
	querier
}

// storeReads reads through the store, without locks.
type storeReads struct{ store *eventstore.Store }

func (r storeReads) ReadStreamsAfter(ctx context.Context, ids []string, after []int64) (map[string][]eventstore.Event, error) {
	return r.store.ReadStreamsAfter(ctx, ids, after)
}

func (r storeReads) StreamVersions(ctx context.Context, tenantID, streamType string, ids []string, lock eventstore.Lock) (map[string]int64, error) {
	if lock != eventstore.NoLock {
		return nil, errors.New("commands: locks need a transaction")
	}
	return r.store.StreamVersions(ctx, tenantID, streamType, ids)
}

// Query reads the users and the customers' data keys, tables the event
// store does not own.
func (r storeReads) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return r.store.Pool().Query(ctx, sql, args...)
}

// reads is the source of reads outside a transaction.
func (c *Commands) reads() storeReads { return storeReads{c.store} }

var storeLock = map[lockMode]eventstore.Lock{noLock: eventstore.NoLock, forShare: eventstore.LockShare, forUpdate: eventstore.LockUpdate}

// lockCustomers locks the tenant's customer streams among ids (FOR UPDATE,
// in ID order, unless mode says otherwise) and returns their versions.
// Unknown IDs, and other tenants' streams, are absent.
func lockCustomers(ctx context.Context, q streamSource, tenantID string, ids []string, mode lockMode) (map[string]int64, error) {
	v, err := q.StreamVersions(ctx, tenantID, streamCustomer, ids, storeLock[mode])
	if err != nil {
		return nil, fmt.Errorf("lock customers: %w", err)
	}
	return v, nil
}

// loaded is the customers a command decides on, as of their locked
// versions, with the tenant's policy.
type loaded struct {
	customers map[string]domain.Customer
	// lastPosition is each customer's last event position: the
	// read-your-writes token of a command that changes nothing.
	lastPosition map[string]int64
	policy       domain.Policy
	// policyVersion is the tenant stream's version the policy is as of.
	policyVersion int64
}

// qGenericPlans makes the rest of a group's transaction (unit.go) run its
// prepared statements on their cached generic plans. Their
// parameters are ID arrays, for which PostgreSQL's cost comparison keeps
// choosing a fresh custom plan on every execution; planning was then about a
// quarter of the database's CPU per command. The statements look rows up by
// key (one customer, its users, the tenant), which a generic plan does by
// index as well as a custom one. SET LOCAL: it ends with the transaction.
const qGenericPlans = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true)`

// loadCustomers reads the customer streams ids and the tenant stream in one
// query and rebuilds them. The customers' tenant must have been checked
// already (lockCustomers): a stream never changes tenant.
func loadCustomers(ctx context.Context, kr *keyring.Keyring, q streamSource, tenantID string, ids []string) (loaded, error) {
	l, err := loadCustomersWithErased(ctx, kr, q, tenantID, ids)
	if err != nil {
		return loaded{}, err
	}
	return l, refuseErased(l.customers)
}

// loadCustomersWithErased is loadCustomers for the one command that decides
// on erased customers too (a bulk action: deleting one again is unchanged).
func loadCustomersWithErased(ctx context.Context, kr *keyring.Keyring, q streamSource, tenantID string, ids []string) (loaded, error) {
	streams, err := readEvents(ctx, kr, q, tenantID, append(slices.Clip(ids), tenantID))
	if err != nil {
		return loaded{}, err
	}
	return rebuild(tenantID, ids, streams)
}

// refuseErased is ErrErased for the first erased customer, if any.
func refuseErased(customers map[string]domain.Customer) error {
	for _, id := range slices.Sorted(maps.Keys(customers)) {
		if customers[id].Erased {
			return fmt.Errorf("customer %s: %w", id, ErrErased)
		}
	}
	return nil
}

func rebuild(tenantID string, ids []string, streams map[string][]storedEvent) (loaded, error) {
	var err error
	l := loaded{customers: make(map[string]domain.Customer, len(ids)), lastPosition: make(map[string]int64, len(ids))}
	if l.policy, err = policyOf(streams[tenantID]); err != nil {
		return loaded{}, err
	}
	if ts := streams[tenantID]; len(ts) > 0 {
		l.policyVersion = ts[len(ts)-1].Version
	}
	for _, id := range ids {
		c, last, err := customerOf(tenantID, streams[id])
		if err != nil {
			return loaded{}, err
		}
		if c.ID != id {
			return loaded{}, notFound("customer", id)
		}
		l.customers[id] = c
		l.lastPosition[id] = last
	}
	return l, nil
}

// storedEvent is what rebuilding an aggregate needs of an event.
type storedEvent struct {
	StreamID   string
	Version    int64
	Position   int64
	Type       string
	Schema     int
	Data       []byte
	RecordedAt time.Time
}

// readEvents reads the tenant's streams whole (by ID alone, on the
// (stream_id, stream_version) index; events of another tenant's stream are
// dropped), opening sealed events with their customers' keys (kr may be nil
// for streams that hold nothing sealed): the commands decide on the
// personal fields in clear, or on an erased customer's IDs alone.
func readEvents(ctx context.Context, kr *keyring.Keyring, q streamSource, tenantID string, streamIDs []string) (map[string][]storedEvent, error) {
	if slices.Contains(streamIDs, tenantID) {
		if err := lockPolicy(ctx, q, tenantID); err != nil {
			return nil, err
		}
	}
	evs, err := q.ReadStreamsAfter(ctx, streamIDs, nil)
	if err != nil {
		return nil, err
	}
	var sealed []string
	for id, es := range evs {
		for _, e := range es {
			if kr != nil && keyring.Sealed(e.Type, e.SchemaVersion) {
				sealed = append(sealed, id)
				break
			}
		}
	}
	keys := map[string]keyring.DataKey{}
	if len(sealed) > 0 {
		if keys, err = kr.Load(ctx, q, sortedUnique(sealed)); err != nil {
			return nil, err
		}
	}
	out := make(map[string][]storedEvent, len(evs))
	for id, es := range evs {
		for _, e := range es {
			if e.TenantID != tenantID {
				continue
			}
			schema, data := e.SchemaVersion, []byte(e.Data)
			if kr != nil {
				if dk, ok := keys[id]; ok {
					schema, data, _, err = dk.Open(e.Type, schema, data)
				} else {
					schema, data, _, err = kr.Open(e.Type, schema, data, nil)
				}
				if err != nil {
					return nil, fmt.Errorf("read streams: %w", err)
				}
			}
			out[id] = append(out[id], storedEvent{StreamID: id, Version: e.Version, Position: e.Position, Type: e.Type,
				Schema: schema, Data: data, RecordedAt: e.RecordedAt})
		}
	}
	return out, nil
}

func customerOf(tenantID string, events []storedEvent) (domain.Customer, int64, error) {
	f := domain.FoldCustomer(domain.Customer{TenantID: tenantID})
	var last int64
	for _, ev := range events {
		e, err := domain.DecodeEvent(ev.Type, ev.Schema, ev.Data)
		if err != nil {
			return domain.Customer{}, 0, fmt.Errorf("customer %s version %d: %w", ev.StreamID, ev.Version, err)
		}
		f.Apply(e, ev.RecordedAt)
		last = ev.Position
	}
	return f.Customer(), last, nil
}

func policyOf(events []storedEvent) (domain.Policy, error) {
	t, err := tenantOf(events)
	if err != nil {
		return domain.Policy{}, err
	}
	return t.Policy, nil
}

func tenantOf(events []storedEvent) (domain.Tenant, error) {
	var t domain.Tenant
	for _, ev := range events {
		e, err := domain.DecodeEvent(ev.Type, ev.Schema, ev.Data)
		if err != nil {
			return domain.Tenant{}, fmt.Errorf("tenant version %d: %w", ev.Version, err)
		}
		t.Apply(e, ev.RecordedAt)
	}
	if t.ID == "" {
		return domain.Tenant{}, ErrNotFound
	}
	return t, nil
}

// The policy lock keeps a command from deciding on a policy that changes
// before it commits (a write skew: ChangePolicy counts the teams over a
// lowered max_assignees while a command, decided on the old policy, grows
// one). Every command that reads a tenant's stream holds the tenant's lock
// shared, from before the read until it commits (readEvents; the unit of
// work in its lock round trip); ChangePolicy takes it exclusively before
// anything else. Shared holders never wait for each other. It is taken
// after the stream heads, like the capacity locks (capacity.go), so the
// global order stays users, customers, policy, capacity. Outside a
// transaction it only waits for a policy change under way.
const (
	qPolicyShared    = `SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 803))`
	qPolicyExclusive = `SELECT pg_advisory_xact_lock(hashtextextended($1, 803))`
)

// lockPolicy takes the tenant's policy lock shared (see qPolicyShared).
func lockPolicy(ctx context.Context, q querier, tenantID string) error {
	rows, err := q.Query(ctx, qPolicyShared, tenantID)
	if err == nil {
		rows.Close()
		err = rows.Err()
	}
	if err != nil {
		return fmt.Errorf("lock the tenant's policy: %w", translatePg(err))
	}
	return nil
}

// readPolicy reads the tenant's policy without locking.
func readPolicy(ctx context.Context, q streamSource, tenantID string) (domain.Policy, error) {
	t, err := readTenant(ctx, q, tenantID)
	return t.Policy, err
}

func readTenant(ctx context.Context, q streamSource, tenantID string) (domain.Tenant, error) {
	streams, err := readEvents(ctx, nil, q, tenantID, []string{tenantID}) // the tenant's stream holds nothing sealed
	if err != nil {
		return domain.Tenant{}, err
	}
	return tenantOf(streams[tenantID])
}

// readCustomer reads one of the tenant's customers without locking.
func readCustomer(ctx context.Context, kr *keyring.Keyring, q streamSource, tenantID, customerID string) (domain.Customer, error) {
	versions, err := lockCustomers(ctx, q, tenantID, []string{customerID}, noLock)
	if err != nil {
		return domain.Customer{}, err
	}
	if _, ok := versions[customerID]; !ok {
		return domain.Customer{}, notFound("customer", customerID)
	}
	streams, err := readEvents(ctx, kr, q, tenantID, []string{customerID})
	if err != nil {
		return domain.Customer{}, err
	}
	cu, _, err := customerOf(tenantID, streams[customerID])
	if err != nil {
		return domain.Customer{}, err
	}
	if cu.ID != customerID {
		return domain.Customer{}, notFound("customer", customerID)
	}
	if cu.Erased {
		return domain.Customer{}, fmt.Errorf("customer %s: %w", customerID, ErrErased)
	}
	return cu, nil
}

// translatePg maps the driver's errors to the event store's sentinels
// (eventstore.ErrConflict for the retryable ones, ErrUnavailable, ...) for
// queries the commands run themselves.
func translatePg(err error) error {
	return eventstore.Translate(err)
}
