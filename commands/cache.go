package commands

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// stateCache remembers what single-customer commands decide on (the
// customer as of its head, the tenant's policy, the users' statuses) so the
// next command on the same customer can decide before it touches the
// database and then check and append in one round trip (decideCached).
//
// Nothing in it is trusted: the append moves the customer's head by
// compare-and-set and re-checks, inside its transaction, that the policy
// and the users are as cached (the users share-locked, as the locking path
// does). Whatever another process or command changed makes that append
// fail, and the command then runs on the locking path, which refreshes the
// cache. So the cache only decides how fast a command is, never what it
// decides.
type stateCache struct {
	// hits counts commands decided on the cache; stale those that found it
	// missing or out of date and took the locking path.
	hits, stale atomic.Uint64

	mu        sync.Mutex
	customers map[string]cachedCustomer
	users     map[string]domain.User
	policies  map[string]cachedPolicy
}

type cachedCustomer struct {
	customer     domain.Customer
	head         eventstore.Head
	lastPosition int64
	// recordedAt is the time of the customer's last event: a later event
	// must not be recorded before it.
	recordedAt time.Time
}

type cachedPolicy struct {
	policy  domain.Policy
	version int64
}

// maxCachedCustomers bounds the cache; past it the cache starts over
// (a miss only costs a command the locking path).
const maxCachedCustomers = 100_000

func newStateCache() *stateCache {
	return &stateCache{customers: map[string]cachedCustomer{}, users: map[string]domain.User{}, policies: map[string]cachedPolicy{}}
}

// cachedState is a consistent copy of what one command decides on.
type cachedState struct {
	cachedCustomer
	users         map[string]domain.User
	policy        domain.Policy
	policyVersion int64
}

// get returns the cached state of customerID in tenantID with userIDs, or
// false when any of it is missing.
func (sc *stateCache) get(tenantID, customerID string, userIDs []string) (cachedState, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	cc, ok := sc.customers[customerID]
	if !ok || cc.customer.TenantID != tenantID {
		return cachedState{}, false
	}
	pol, ok := sc.policies[tenantID]
	if !ok {
		return cachedState{}, false
	}
	users := make(map[string]domain.User, len(userIDs))
	for _, id := range userIDs {
		u, ok := sc.users[id]
		if !ok || u.TenantID != tenantID {
			return cachedState{}, false
		}
		users[id] = u
	}
	cc.customer.Team = slices.Clone(cc.customer.Team)
	return cachedState{cachedCustomer: cc, users: users, policy: pol.policy, policyVersion: pol.version}, true
}

// putCustomer records a customer as of head; an older head never replaces
// a newer one.
func (sc *stateCache) putCustomer(cu domain.Customer, head eventstore.Head, lastPosition int64, at time.Time) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if old, ok := sc.customers[cu.ID]; ok && old.head.Version > head.Version {
		return
	}
	if len(sc.customers) >= maxCachedCustomers {
		sc.customers = map[string]cachedCustomer{}
		sc.users = map[string]domain.User{}
	}
	cu.Team = slices.Clone(cu.Team)
	sc.customers[cu.ID] = cachedCustomer{customer: cu, head: head, lastPosition: lastPosition, recordedAt: at}
}

func (sc *stateCache) putUsers(users map[string]domain.User) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for id, u := range users {
		sc.users[id] = u
	}
}

func (sc *stateCache) putPolicy(tenantID string, pol domain.Policy, version int64) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if old, ok := sc.policies[tenantID]; ok && old.version > version {
		return
	}
	sc.policies[tenantID] = cachedPolicy{policy: pol, version: version}
}

// forget drops a customer whose cached state turned out stale.
func (sc *stateCache) forget(customerID string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	delete(sc.customers, customerID)
}

// The preconditions of a cached decision, checked in the append's
// transaction. The users are share-locked as on the locking path, so a
// deactivation waits for the append and then finds the assignment.
const (
	// By primary key: a join with the unnested IDs was planned as a hash
	// join over a scan of every user.
	qUsersAsCached = `SELECT count(*) = cardinality($2::text[]) FROM (
    SELECT 1 FROM users u
    WHERE u.id = ANY($2::text[]::uuid[]) AND u.tenant_id = $1
      AND u.status = ($3::text[])[array_position($2::text[], u.id::text)]
    FOR SHARE OF u) s`
	qPolicyAsCached = `SELECT coalesce((SELECT version FROM streams WHERE stream_id = $1), -1) = $2`
)

// CacheStats counts single-customer commands by how they were decided.
type CacheStats struct {
	// Cached commands were decided on cached state and appended in one
	// round trip.
	Cached uint64
	// Locked commands took the locking path: nothing cached, the cache
	// was out of date, the command carried an Idempotency-Key, or the
	// cached state refused or did not change the customer.
	Locked uint64
}

// CacheStats returns the counts since the Commands were created.
func (c *Commands) CacheStats() CacheStats {
	return CacheStats{Cached: c.cache.hits.Load(), Locked: c.cache.stale.Load()}
}

// errStale means a cached decision could not be used; the locking path
// decides instead.
var errStale = errors.New("cached state is stale")

// decideCached runs a single-customer command on the cached state: decide,
// then check and append in one round trip. It returns errStale whenever
// the locking path must decide instead: nothing cached, an If-Match the
// cache cannot confirm, a refusal or a no-op (both answered authoritatively
// by the locking path), or an append that found the database moved on.
func (c *Commands) decideCached(ctx context.Context, m Meta, customerID string, userIDs []string, decide customerDecide) (CustomerResult, error) {
	st, ok := c.cache.get(m.TenantID, customerID, userIDs)
	if !ok {
		if err := c.loadIntoCache(ctx, m.TenantID, customerID, userIDs); err != nil {
			return CustomerResult{}, errStale
		}
		if st, ok = c.cache.get(m.TenantID, customerID, userIDs); !ok {
			return CustomerResult{}, errStale
		}
	}
	if (m.IfMatch != nil && *m.IfMatch != st.head.Version) || st.customer.Version != st.head.Version {
		return CustomerResult{}, errStale
	}
	events, err := decide(st.customer, st.users, st.policy)
	if err != nil || len(events) == 0 {
		return CustomerResult{}, errStale
	}
	cu := st.customer
	at := now()
	if at.Before(st.recordedAt) {
		return CustomerResult{}, errStale
	}
	for _, e := range events {
		cu.Apply(e, at)
	}
	if err := c.fillNames(ctx, c.store.Pool(), m.TenantID, teamIDs(cu)); err != nil {
		return CustomerResult{}, err
	}
	data, err := encode(events)
	if err != nil {
		return CustomerResult{}, err
	}
	ids, statuses := make([]string, 0, len(st.users)), make([]string, 0, len(st.users))
	for id, u := range st.users {
		ids, statuses = append(ids, id), append(statuses, string(u.Status))
	}
	checks := []eventstore.Check{{Name: "policy_as_cached", Query: qPolicyAsCached, Args: []any{m.TenantID, st.policyVersion}}}
	if len(ids) > 0 {
		checks = append(checks, eventstore.Check{Name: "users_as_cached", Query: qUsersAsCached, Args: []any{m.TenantID, ids, statuses}})
	}
	res, err := c.store.AppendExpected(ctx, eventstore.AppendRequest{
		TenantID: m.TenantID,
		Streams:  []eventstore.StreamWrite{{StreamID: customerID, StreamType: streamCustomer, ExpectedVersion: st.head.Version, Events: data}},
		Metadata: m.metadata(),
		Now:      at,
	}, st.head, checks...)
	if errors.Is(err, eventstore.ErrVersionMismatch) || errors.Is(err, eventstore.ErrCheckFailed) || errors.Is(err, eventstore.ErrConflict) {
		c.cache.forget(customerID)
		return CustomerResult{}, errStale
	}
	if err != nil {
		return CustomerResult{}, err
	}
	c.cache.putCustomer(cu, eventstore.Head{Version: res.Versions[customerID], LastHash: res.Hashes[customerID]}, res.Position, at)
	c.cache.hits.Add(1)
	return CustomerResult{CustomerView: c.customerView(cu), Position: res.Position}, nil
}

const qCustomerHead = `SELECT version, last_hash FROM streams WHERE stream_id = $1 AND tenant_id = $2`

// loadIntoCache reads, without locking and in one round trip, what a
// command on customerID decides on, and caches it. The reads need not be
// consistent with each other: the append checks each part.
func (c *Commands) loadIntoCache(ctx context.Context, tenantID, customerID string, userIDs []string) error {
	b := &pgx.Batch{}
	b.Queue(qCustomerHead, customerID, tenantID)
	b.Queue(qEvents, []string{customerID, tenantID})
	if len(userIDs) > 0 {
		b.Queue(qUsers, tenantID, userIDs)
	}
	br := c.store.Pool().SendBatch(ctx, b)
	defer br.Close()
	var head eventstore.Head
	if err := br.QueryRow().Scan(&head.Version, &head.LastHash); err != nil {
		return err
	}
	streams, err := collectEvents(c.keys)(br.Query())
	if err != nil {
		return err
	}
	users := map[string]domain.User{}
	if len(userIDs) > 0 {
		if users, err = collectUsers(br.Query()); err != nil {
			return err
		}
	}
	l, err := rebuild(tenantID, []string{customerID}, streams)
	if err != nil {
		return err
	}
	cu := l.customers[customerID]
	if cu.Version != head.Version {
		return errStale // appended to between the two reads
	}
	if cu.Erased {
		return errStale // the locking path answers ErrErased
	}
	evs := streams[customerID]
	c.cache.putPolicy(tenantID, l.policy, l.policyVersion)
	c.cache.putUsers(users)
	for _, u := range users {
		c.names.put(u.ID, u.Name)
	}
	c.cache.putCustomer(cu, head, l.lastPosition[customerID], evs[len(evs)-1].RecordedAt)
	return nil
}
