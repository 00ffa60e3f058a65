package commands

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

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

const userColumns = `id::text, tenant_id::text, name, email, role, status, created_at`

func scanUser(row pgx.Row) (domain.User, error) {
	var u domain.User
	var role, status string
	if err := row.Scan(&u.ID, &u.TenantID, &u.Name, &u.Email, &role, &status, &u.CreatedAt); err != nil {
		return domain.User{}, err
	}
	u.Role = domain.Role(role)
	u.Status = domain.UserStatus(status)
	u.CreatedAt = u.CreatedAt.UTC()
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

// lockCustomers locks the tenant's customer streams among ids (FOR UPDATE,
// in ID order, unless mode says otherwise) and returns their versions.
// Unknown IDs, and other tenants' streams, are absent.
func lockCustomers(ctx context.Context, q querier, tenantID string, ids []string, mode lockMode) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	return collectVersions(q.Query(ctx, qCustomerStreams+string(mode), tenantID, ids))
}

const qCustomerStreams = `SELECT stream_id::text, version FROM streams
	WHERE tenant_id = $1 AND stream_type = '` + streamCustomer + `' AND stream_id = ANY($2::text[]::uuid[])
	ORDER BY stream_id`

func collectVersions(rows pgx.Rows, err error) (map[string]int64, error) {
	if err != nil {
		return nil, fmt.Errorf("lock customers: %w", translatePg(err))
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, fmt.Errorf("lock customers: %w", err)
		}
		out[id] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock customers: %w", translatePg(err))
	}
	return out, nil
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
func loadCustomers(ctx context.Context, kr *keyring.Keyring, q querier, tenantID string, ids []string) (loaded, error) {
	l, err := loadCustomersWithErased(ctx, kr, q, tenantID, ids)
	if err != nil {
		return loaded{}, err
	}
	return l, refuseErased(l.customers)
}

// loadCustomersWithErased is loadCustomers for the one command that decides
// on erased customers too (a bulk action: deleting one again is unchanged).
func loadCustomersWithErased(ctx context.Context, kr *keyring.Keyring, q querier, tenantID string, ids []string) (loaded, error) {
	streams, err := readEvents(ctx, kr, q, append(slices.Clip(ids), tenantID))
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

// readEvents reads whole streams by ID alone. Unlike the event store's
// tenant-filtered reads it cannot be steered onto the (tenant_id, position)
// index, which the planner likes on fresh statistics and which then scans
// the whole tenant. Callers check the streams' tenant first.
func readEvents(ctx context.Context, kr *keyring.Keyring, q querier, streamIDs []string) (map[string][]storedEvent, error) {
	return collectEvents(kr)(q.Query(ctx, qEvents, streamIDs))
}

// qEvents reads streams with, beside each sealed event, its customer's
// wrapped key (NULL once erased), opened by collectEvents.
const qEvents = `SELECT e.stream_id::text, e.stream_version, e.position, e.type, e.schema_version, e.data, e.recorded_at,
	` + keyring.WrappedKeySQL + `
	FROM events e WHERE e.stream_id = ANY($1::text[]::uuid[]) ORDER BY e.stream_id, e.stream_version`

// collectEvents reads what qEvents selects, opening sealed events: the
// commands decide on the personal fields in clear, or on an erased
// customer's IDs alone.
func collectEvents(kr *keyring.Keyring) func(pgx.Rows, error) (map[string][]storedEvent, error) {
	return func(rows pgx.Rows, err error) (map[string][]storedEvent, error) { return collectOpened(kr, rows, err) }
}

func collectOpened(kr *keyring.Keyring, rows pgx.Rows, err error) (map[string][]storedEvent, error) {
	if err != nil {
		return nil, fmt.Errorf("read streams: %w", translatePg(err))
	}
	defer rows.Close()
	out := map[string][]storedEvent{}
	for rows.Next() {
		var e storedEvent
		var schema int32
		var wrapped []byte
		if err := rows.Scan(&e.StreamID, &e.Version, &e.Position, &e.Type, &schema, &e.Data, &e.RecordedAt, &wrapped); err != nil {
			return nil, fmt.Errorf("read streams: %w", err)
		}
		if e.Schema, e.Data, _, err = kr.Open(e.Type, int(schema), e.Data, wrapped); err != nil {
			return nil, fmt.Errorf("read streams: %w", err)
		}
		e.RecordedAt = e.RecordedAt.UTC()
		out[e.StreamID] = append(out[e.StreamID], e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read streams: %w", translatePg(err))
	}
	return out, nil
}

func customerOf(tenantID string, events []storedEvent) (domain.Customer, int64, error) {
	c := domain.Customer{TenantID: tenantID}
	var last int64
	for _, ev := range events {
		e, err := domain.DecodeEvent(ev.Type, ev.Schema, ev.Data)
		if err != nil {
			return domain.Customer{}, 0, fmt.Errorf("customer %s version %d: %w", ev.StreamID, ev.Version, err)
		}
		c.Apply(e, ev.RecordedAt)
		last = ev.Position
	}
	return c, last, nil
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

// readPolicy reads the tenant's policy without locking.
func readPolicy(ctx context.Context, q querier, tenantID string) (domain.Policy, error) {
	t, err := readTenant(ctx, q, tenantID)
	return t.Policy, err
}

func readTenant(ctx context.Context, q querier, tenantID string) (domain.Tenant, error) {
	streams, err := readEvents(ctx, nil, q, []string{tenantID}) // the tenant's stream holds nothing sealed
	if err != nil {
		return domain.Tenant{}, err
	}
	return tenantOf(streams[tenantID])
}

// readCustomer reads one of the tenant's customers without locking.
func readCustomer(ctx context.Context, kr *keyring.Keyring, q querier, tenantID, customerID string) (domain.Customer, error) {
	versions, err := lockCustomers(ctx, q, tenantID, []string{customerID}, noLock)
	if err != nil {
		return domain.Customer{}, err
	}
	if _, ok := versions[customerID]; !ok {
		return domain.Customer{}, notFound("customer", customerID)
	}
	streams, err := readEvents(ctx, kr, q, []string{customerID})
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

// fillNames makes sure the cache knows the names of ids.
func (c *Commands) fillNames(ctx context.Context, q querier, tenantID string, ids []string) error {
	var missing []string
	for _, id := range ids {
		if _, ok := c.names.get(id); !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	rows, err := q.Query(ctx, `SELECT id::text, name FROM users WHERE tenant_id = $1 AND id = ANY($2::text[]::uuid[])`, tenantID, missing)
	if err != nil {
		return fmt.Errorf("read user names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return fmt.Errorf("read user names: %w", err)
		}
		c.names.put(id, name)
	}
	return rows.Err()
}
