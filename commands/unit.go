package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
)

// The unit of work of single-customer commands: a command names its
// customer and users and hands over its decision (customerDecide); the unit
// does the rest, for every such command the same way.
//
// Commands are committed in groups ("smart batching", no timer): a few
// committers, each with its own connection, take everything that queued
// while they were busy, up to maxGroup commands; a lone command that finds
// a committer idle goes at once, committed by its caller (run). While a
// group is gathering (taken, not yet decided), the next committer starts
// only once it has decided and is writing, or once fullEnough commands
// wait: commands that arrive meanwhile wait and go together rather than
// each in a group of its own, and a group's lock round trip overlaps its
// predecessor's commit. One group is one transaction:
//
//  1. one round trip: record the keyed commands' idempotency keys,
//     share-lock every user the group uses (users
//     before streams, the global lock order), lock every customer stream
//     head (FOR UPDATE, in ID order), and read the customers' and tenants'
//     events past the versions this process has cached;
//  2. decide each command in arrival order on the group's view of the
//     state, which the earlier commands' events have moved on (two commands
//     on one customer see each other); a refusal is that command's answer
//     and writes nothing;
//  3. one round trip appends every survivor's events (one multi-row insert,
//     hash-chained) and moves the heads, with COMMIT; keyed commands take
//     one more, storing their answers (which hold the positions) with COMMIT.
//
// A failure of the transaction (serialization, deadlock, a connection lost
// before COMMIT was sent) runs the whole group again on fresh state, a
// bounded number of times: each command is then decided as if it had come
// alone after the ones before it, so no answer depends on the grouping.
// PostgreSQL stays the arbiter between processes: the locks are the same a
// command alone took before, and the cache only saves reading events that
// the locked head says are still current.

// maxGroup bounds the commands of one group (one transaction).
const maxGroup = 64

// defaultCommitters is how many groups may be in flight at once, each on
// its own connection: while some commit, the next group gathers (one at a
// time unless fullEnough wait: see gathering). Fewer make bigger groups (less PostgreSQL work per
// command) but overlap less.
const defaultCommitters = 3

// WithCommitters sets how many command groups may commit at once (n >= 1).
func WithCommitters(n int) Option {
	return func(c *Commands) {
		if n >= 1 {
			c.unit.committers = n
		}
	}
}

// customerOp is one single-customer command waiting for its group.
type customerOp struct {
	ctx        context.Context
	name       string
	m          Meta
	customerID string
	userIDs    []string
	decide     customerDecide
	// followUp, when set, is the follow-up the answer renders
	// (CustomerResult.FollowUp).
	followUp string
	answer   chan opAnswer
}

type opAnswer struct {
	r   CustomerResult
	err error
}

// unit gathers single-customer commands into groups and commits them.
type unit struct {
	c *Commands

	// committers bounds the groups in flight (WithCommitters).
	committers int

	mu      sync.Mutex
	pending []*customerOp
	active  int
	// gathering counts the committers holding a group that has not been
	// decided yet (its lock round trip is in flight): while there is one,
	// no other committer starts until fullEnough commands wait, so the
	// commands arriving meanwhile form the next group together.
	gathering int

	// sizes counts groups by their number of commands.
	sizes [maxGroup + 1]atomic.Uint64

	cache stateCache
	// held (tests) keeps commands queued until released, so that a test
	// can gather a group.
	held bool
	// beforeWrite, when set (tests), runs in each group's transaction
	// between the decisions and the append; an error fails that attempt.
	beforeWrite func(ctx context.Context, attempt int, tx *eventstore.Tx) error
}

func newUnit(c *Commands) *unit {
	return &unit{c: c, committers: defaultCommitters, cache: stateCache{customers: map[string]cachedCustomer{}, tenants: map[string]domain.Tenant{}}}
}

// run queues op and waits for its answer.
//
// A command that finds nothing queued and a committer free is a group of
// its own, and its caller commits it: handing it to a committer goroutine
// and the answer back cost two wake-ups and a goroutine's stack grown
// anew, tens of microseconds each on a VM (docs/PERFORMANCE.md measured
// 3-7 % more commands a second without them). Its group is bounded by the
// caller's own context, which fails no one else; the caller then hands
// its committer's turn to a goroutine if commands queued meanwhile.
func (u *unit) run(ctx context.Context, op *customerOp) (CustomerResult, error) {
	op.ctx = ctx
	op.answer = make(chan opAnswer, 1)
	u.mu.Lock()
	u.pending = append(u.pending, op)
	alone := len(u.pending) == 1 && u.claimLocked()
	if alone {
		u.pending = u.pending[:0]
	} else {
		u.startLocked()
	}
	u.mu.Unlock()
	if alone {
		u.runAlone(op)
		if a := <-op.answer; a.err == nil || ctx.Err() == nil {
			return a.r, a.err
		}
		return CustomerResult{}, ctx.Err() // as a caller that stopped waiting
	}
	select {
	case a := <-op.answer:
		return a.r, a.err
	case <-ctx.Done():
		return CustomerResult{}, ctx.Err()
	}
}

// runAlone commits op as a group of one on the caller's goroutine, as the
// committer claimLocked counted, then goes on as commit's loop would: it
// stops, or leaves what queued meanwhile to a committer goroutine.
func (u *unit) runAlone(op *customerOp) {
	u.sizes[1].Add(1)
	ctx, cancel := context.WithTimeout(op.ctx, groupTimeout)
	defer cancel()
	u.runGroup(ctx, []*customerOp{op}, u.decidedOnce())
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.mayGather() {
		u.active--
		return
	}
	u.gathering++
	go u.commit()
}

// fullEnough is how many waiting commands make a group worth starting
// while another gathers: under heavy load the groups then overlap rather
// than queue behind one lock round trip.
const fullEnough = maxGroup / 4

// mayGather reports whether another group may start gathering what is
// pending. The caller holds mu.
func (u *unit) mayGather() bool {
	return !u.held && len(u.pending) > 0 && (u.gathering == 0 || len(u.pending) >= fullEnough)
}

// startLocked starts a committer for what is pending, unless one is
// gathering already (and not fullEnough wait) or all are busy. The caller
// holds mu.
func (u *unit) startLocked() {
	if u.claimLocked() {
		go u.commit()
	}
}

// claimLocked counts a committer in, as gathering, when what is pending
// may start one: its caller then runs it. The caller holds mu.
func (u *unit) claimLocked() bool {
	if u.mayGather() && u.active < u.committers {
		u.active++
		u.gathering++
		return true
	}
	return false
}

// decidedOnce returns the decided callback of a group: once its decisions
// are made, its committer no longer counts as gathering and the next group
// may start.
func (u *unit) decidedOnce() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			u.gathering--
			u.startLocked()
			u.mu.Unlock()
		})
	}
}

// commit runs groups until nothing is pending, or until another committer
// gathers the next group.
func (u *unit) commit() {
	u.mu.Lock()
	for {
		// Here this committer is gathering (counted in gathering).
		n := min(len(u.pending), maxGroup)
		if n == 0 || u.held {
			u.active--
			u.gathering--
			u.mu.Unlock()
			return
		}
		group := slices.Clone(u.pending[:n])
		u.pending = slices.Delete(u.pending, 0, n)
		u.mu.Unlock()
		u.sizes[n].Add(1)
		// The group outlives no caller's deadline by much: it is bounded
		// by its own timeout, not by one caller's cancellation, which
		// would fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(group[0].ctx), groupTimeout)
		u.runGroup(ctx, group, u.decidedOnce())
		cancel()
		u.mu.Lock()
		if !u.mayGather() {
			// Nothing pending, or another committer gathers the next
			// group.
			u.active--
			u.mu.Unlock()
			return
		}
		u.gathering++
	}
}

// GroupStats counts the transactions of single-customer commands by their
// number of commands: Sizes[n] is how many groups held n commands.
type GroupStats struct {
	Sizes []uint64
}

// Groups is the number of groups.
func (s GroupStats) Groups() uint64 {
	var n uint64
	for _, c := range s.Sizes {
		n += c
	}
	return n
}

// Commands is the number of commands in all groups.
func (s GroupStats) Commands() uint64 {
	var n uint64
	for size, c := range s.Sizes {
		n += uint64(size) * c
	}
	return n
}

// Quantile is the group size at or below which fraction q of the groups
// fall (0 without groups).
func (s GroupStats) Quantile(q float64) int {
	total := s.Groups()
	if total == 0 {
		return 0
	}
	var seen uint64
	for size, c := range s.Sizes {
		seen += c
		if float64(seen) >= q*float64(total) {
			return size
		}
	}
	return len(s.Sizes) - 1
}

// Sub is the counts since earlier.
func (s GroupStats) Sub(earlier GroupStats) GroupStats {
	out := GroupStats{Sizes: slices.Clone(s.Sizes)}
	for i := range out.Sizes {
		if i < len(earlier.Sizes) {
			out.Sizes[i] -= earlier.Sizes[i]
		}
	}
	return out
}

// GroupStats returns the counts since the Commands were created.
func (c *Commands) GroupStats() GroupStats {
	s := GroupStats{Sizes: make([]uint64, maxGroup+1)}
	for i := range s.Sizes {
		s.Sizes[i] = c.unit.sizes[i].Load()
	}
	return s
}

// groupTimeout bounds a group's attempts together.
const groupTimeout = 30 * time.Second

// runGroup commits group within ctx, retrying it whole on a failure a
// retry may cure, and answers every command. decided is called once the
// group's decisions are made (its writes are next), and at the latest when
// runGroup returns: the next group may start gathering.
func (u *unit) runGroup(ctx context.Context, group []*customerOp, decided func()) {
	defer decided() // a group that failed before deciding
	var err error
	for attempt := 1; ; attempt++ {
		var answers []opAnswer
		var commitSent bool
		answers, commitSent, err = u.try(ctx, group, attempt, decided)
		if err == nil {
			for i, op := range group {
				op.answer <- answers[i]
			}
			return
		}
		u.cache.forget(group)
		retry := errors.Is(err, eventstore.ErrConflict) || errors.Is(err, eventstore.ErrVersionMismatch) ||
			(errors.Is(err, eventstore.ErrUnavailable) && !commitSent)
		if !retry || attempt == maxAttempts {
			break
		}
		u.c.log.DebugContext(ctx, "command group failed; retrying", slog.Int("commands", len(group)),
			slog.Int("attempt", attempt), slog.String("error", err.Error()))
		backoff := time.Duration(attempt*attempt)*time.Millisecond + time.Duration(mrand.IntN(2000))*time.Microsecond
		select {
		case <-ctx.Done():
			err = errors.Join(err, ctx.Err())
		case <-time.After(backoff):
			continue
		}
		break
	}
	for _, op := range group {
		op.answer <- opAnswer{err: err}
	}
}

// groupCustomer is a customer as the group's commands so far left it.
type groupCustomer struct {
	cu           domain.Customer
	lastPosition int64
	// lastWrite is the group's last write to the customer (-1: none): a
	// later no-op answers its position.
	lastWrite int
	changed   bool
	// key opens the customer's sealed events (hasKey: it was found; an
	// erased customer has none).
	key    keyring.DataKey
	hasKey bool
}

// open opens a sealed event of the customer with its key, or as erased
// when the key is gone.
func (gc *groupCustomer) open(kr *keyring.Keyring, ev eventstore.Event) (int, []byte, error) {
	var (
		schema int
		data   []byte
		err    error
	)
	if gc.hasKey {
		schema, data, _, err = gc.key.Open(ev.Type, ev.SchemaVersion, ev.Data)
	} else {
		schema, data, _, err = kr.Open(ev.Type, ev.SchemaVersion, ev.Data, nil)
	}
	return schema, data, err
}

type keyRef struct{ tenant, key string }

// try runs group once, in one transaction. It returns every command's
// answer, or the error that failed the transaction (and whether COMMIT had
// been sent, after which it may have committed).
func (u *unit) try(ctx context.Context, group []*customerOp, attempt int, onDecided func()) (answers []opAnswer, commitSent bool, err error) {
	defer func() {
		// A panic in a decision fails its group, not the process: the
		// committer runs outside any request's recovery.
		if p := recover(); p != nil {
			answers, err = nil, fmt.Errorf("commands: command group panicked: %v", p)
		}
	}()
	var (
		final   map[string]*groupCustomer
		tenants map[string]domain.Tenant
		users   map[string]domain.User
	)
	err = u.c.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) (err error) {
		defer func() { commitSent = tx.CommitSent() }()
		answers = make([]opAnswer, len(group))

		// The lock round trip.
		b := &pgx.Batch{}
		b.Queue(qGenericPlans)
		records := map[keyRef]func(pgx.BatchResults) (eventstore.IdempotencyRecord, error){}
		var recordOrder []keyRef
		var userIDs, customerIDs []string
		// What the cache holds now (another group may update it
		// meanwhile): the events read are those past it.
		from := map[string]int64{}
		cachedCustomers := map[string]cachedCustomer{}
		cachedTenants := map[string]domain.Tenant{}
		// Keys first, in one order for every group (their rows are locked
		// until commit, like the heads), each recorded with the request of
		// the first command that carries it.
		firstRequest := map[keyRef][]byte{}
		for _, op := range group {
			if k := (keyRef{op.m.TenantID, op.m.IdempotencyKey}); k.key != "" {
				if _, ok := firstRequest[k]; !ok {
					firstRequest[k] = op.m.RequestHash
					recordOrder = append(recordOrder, k)
				}
			}
		}
		slices.SortFunc(recordOrder, func(a, b keyRef) int {
			if a.tenant != b.tenant {
				return strings.Compare(a.tenant, b.tenant)
			}
			return strings.Compare(a.key, b.key)
		})
		for _, k := range recordOrder {
			// Stored request hashes are keyed (keyring.RequestMAC); a record
			// stored before they were holds the plain hash.
			records[k] = tx.QueueRecordIdempotency(b, k.tenant, k.key, u.c.keys.RequestMAC(firstRequest[k]), firstRequest[k])
		}
		for _, op := range group {
			userIDs = append(userIDs, op.userIDs...)
			customerIDs = append(customerIDs, op.customerID)
			if _, ok := cachedCustomers[op.customerID]; !ok {
				cc := u.cache.customer(op.customerID, op.m.TenantID)
				cachedCustomers[op.customerID] = cc
				from[op.customerID] = cc.customer.Version
			}
			if _, ok := cachedTenants[op.m.TenantID]; !ok {
				tn := u.cache.tenant(op.m.TenantID)
				cachedTenants[op.m.TenantID] = tn
				from[op.m.TenantID] = tn.Version
			}
		}
		userIDs, customerIDs = sortedUnique(userIDs), sortedUnique(customerIDs)
		if len(userIDs) > 0 {
			b.Queue(qLockUsers, userIDs)
		}
		// The names of the cached teams, read in this round trip rather
		// than in one of their own after the decisions: answers name the
		// team as it is now (another process may have renamed a member),
		// and a team the decisions change differs by users locked above.
		var teamNames []string
		for _, cc := range cachedCustomers {
			for _, id := range teamIDs(cc.customer) {
				if _, named := slices.BinarySearch(userIDs, id); !named {
					teamNames = append(teamNames, id)
				}
			}
		}
		teamNames = sortedUnique(teamNames)
		if len(teamNames) > 0 {
			b.Queue(qUserNames, teamNames)
		}
		readHeads := tx.QueueLockHeads(b, customerIDs)
		// The group's tenants' policy locks (load.go), shared, before their
		// streams are read.
		groupTenants := slices.Sorted(maps.Keys(cachedTenants))
		for _, t := range groupTenants {
			b.Queue(qPolicyShared, t)
		}
		// After the locks, in the same round trip: this statement's snapshot
		// sees every event of the locked customers and of the tenants.
		streamIDs := slices.Sorted(maps.Keys(from))
		fromVersions := make([]int64, len(streamIDs))
		for i, id := range streamIDs {
			fromVersions[i] = from[id]
		}
		readStreams := tx.QueueReadStreams(b, streamIDs, fromVersions)
		// The data keys of customers read whole (the cache holds the
		// others'): their sealed events are opened with them.
		var keyIDs []string
		for _, id := range customerIDs {
			if !cachedCustomers[id].hasKey {
				keyIDs = append(keyIDs, id)
			}
		}
		var readKeys func(pgx.BatchResults) (map[string]keyring.DataKey, error)
		if len(keyIDs) > 0 {
			readKeys = u.c.keys.QueueLoad(b, keyIDs)
		}

		br := tx.SendBatch(ctx, b)
		defer func() {
			if br != nil {
				if cerr := br.Close(); err == nil && cerr != nil {
					err = translatePg(cerr)
				}
			}
		}()
		if _, err := br.Exec(); err != nil {
			return translatePg(err)
		}
		recs := map[keyRef]eventstore.IdempotencyRecord{}
		recErrs := map[keyRef]error{}
		for _, k := range recordOrder {
			r, err := records[k](br)
			if errors.Is(err, eventstore.ErrReplayUnavailable) {
				// That key's commands answer the error; the group goes on.
				recErrs[k] = err
				continue
			}
			if err != nil {
				return err
			}
			recs[k] = r
		}
		users = map[string]domain.User{}
		if len(userIDs) > 0 {
			if users, err = collectUsers(br.Query()); err != nil {
				return err
			}
		}
		// fresh are the users whose names this transaction read.
		fresh := make(map[string]bool, len(users)+len(teamNames))
		for id := range users {
			fresh[id] = true
		}
		if len(teamNames) > 0 {
			rows, err := br.Query()
			if err := u.c.readNamesFrom(rows, err, fresh); err != nil {
				return err
			}
		}
		heads, err := readHeads(br)
		if err != nil {
			return err
		}
		for range groupTenants {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("lock the tenant's policy: %w", translatePg(err))
			}
		}
		streams, err := readStreams(br)
		if err != nil {
			return err
		}
		keys := map[string]keyring.DataKey{}
		if readKeys != nil {
			if keys, err = readKeys(br); err != nil {
				return err
			}
		}
		cerr := br.Close()
		br = nil
		if cerr != nil {
			return translatePg(cerr)
		}

		// The group's view: the cache moved on by what was read.
		var view map[string]*groupCustomer
		if view, tenants, err = u.viewOf(group, heads, streams, keys, cachedCustomers, cachedTenants); err != nil {
			return err
		}
		for _, us := range users {
			u.c.names.put(us.ID, us.Name)
		}

		// The loads of users in tenants that cap customers per user, under
		// their capacity locks (capacity.go).
		loads, err := u.capacityLoads(ctx, tx, group, tenants)
		if err != nil {
			return err
		}

		// Decide, in arrival order. The clock is read once the heads are
		// locked, so recorded times never go backwards within a stream.
		at := now()
		type decided struct {
			cu domain.Customer
			// write is the command's own write (index into writes), -1
			// for none; posOf the write whose position it answers (-1:
			// the customer's last committed event).
			write, posOf int
			// replay is the earlier command of the group with the same
			// idempotency key, whose answer this one gets (-1: none).
			replay int
		}
		outcomes := make([]decided, len(group))
		var writes []eventstore.CommandWrite
		owners := map[keyRef]int{} // the command whose answer a key stores
		for i, op := range group {
			outcomes[i] = decided{write: -1, posOf: -1, replay: -1}
			k := keyRef{op.m.TenantID, op.m.IdempotencyKey}
			if k.key != "" {
				if j, ok := owners[k]; ok {
					if !bytes.Equal(group[j].m.RequestHash, op.m.RequestHash) {
						answers[i].err = eventstore.ErrIdempotencyKeyReused
					} else {
						outcomes[i].replay = j
					}
					continue
				}
				if e, ok := recErrs[k]; ok {
					answers[i].err = e
					continue
				}
				r := recs[k]
				if !r.Answers(u.c.keys.RequestMAC(op.m.RequestHash), op.m.RequestHash) {
					// Recorded with another request: by an earlier command,
					// or by the first of this group that carries the key.
					answers[i].err = eventstore.ErrIdempotencyKeyReused
					continue
				}
				if !r.New {
					answers[i].r, answers[i].err = decodeReplay[CustomerResult](ctx, u.c, r.Response)
					continue
				}
			}
			if err := op.ctx.Err(); err != nil {
				answers[i].err = err
				continue
			}
			// A refusal by a rule is the key's answer too (refusalAnswer).
			refuse := func(err error) {
				answers[i].err = err
				if _, ok := refusalAnswer(err); ok && k.key != "" {
					owners[k] = i
				}
			}
			events, cu, err := u.decideOne(op, users, view, tenants)
			if err != nil {
				refuse(err)
				continue
			}
			gc := view[op.customerID]
			before := gc.cu.Version
			for _, e := range events {
				cu.Apply(e, at)
			}
			if pol := tenants[op.m.TenantID].Policy; pol.Capped() {
				if err := pol.CheckCapacity(loads[op.m.TenantID], gc.cu, cu); err != nil {
					refuse(err)
					continue
				}
				loads[op.m.TenantID].Move(gc.cu, cu)
			}
			outcomes[i].cu = cu
			outcomes[i].posOf = gc.lastWrite
			if k.key != "" {
				owners[k] = i
			}
			if len(events) == 0 {
				continue
			}
			// Sealed with the customer's key where an event carries
			// personal data (a follow-up's note).
			data, err := encodeSealed(events, gc.key)
			if err != nil {
				return err
			}
			outcomes[i].write, outcomes[i].posOf = len(writes), len(writes)
			gc.lastWrite = len(writes)
			writes = append(writes, eventstore.CommandWrite{
				TenantID: op.m.TenantID,
				Streams:  []eventstore.StreamWrite{{StreamID: op.customerID, StreamType: streamCustomer, ExpectedVersion: before, Events: data}},
				Metadata: op.m.metadata(),
			})
			gc.cu, gc.changed = cu, true
		}
		team := map[string][]string{}
		for i, op := range group {
			if answers[i].err == nil && outcomes[i].replay < 0 && outcomes[i].cu.ID != "" {
				for _, id := range teamIDs(outcomes[i].cu) {
					if !fresh[id] {
						// A team changed by another process since cached.
						team[op.m.TenantID] = append(team[op.m.TenantID], id)
					}
				}
			}
		}
		for _, t := range slices.Sorted(maps.Keys(team)) {
			if err := u.c.fillNames(ctx, tx, t, sortedUnique(team[t])); err != nil {
				return err
			}
		}
		onDecided()
		if u.beforeWrite != nil {
			if err := u.beforeWrite(ctx, attempt, tx); err != nil {
				return err
			}
		}

		// The write round trip(s).
		var responses []eventstore.StoredResponse
		var discard []eventstore.IdempotencyKey
		for _, k := range recordOrder {
			if _, ok := owners[k]; !ok && recs[k].New {
				discard = append(discard, eventstore.IdempotencyKey{TenantID: k.tenant, Key: k.key})
			}
		}
		keyed := len(owners) > 0 || len(discard) > 0
		results, err := tx.AppendCommands(ctx, writes, at, !keyed && len(writes) > 0)
		if err != nil {
			return err
		}
		for i, op := range group {
			o := outcomes[i]
			if answers[i].err != nil || o.replay >= 0 || o.cu.ID == "" {
				continue
			}
			pos := view[op.customerID].lastPosition
			if o.posOf >= 0 {
				pos = results[o.posOf].Position
			}
			answers[i].r = CustomerResult{CustomerView: u.c.customerView(o.cu), Position: pos}
			if f, ok := o.cu.FollowUps[op.followUp]; ok && op.followUp != "" {
				v := followUpView(o.cu.ID, f)
				answers[i].r.FollowUp = &v
			}
		}
		for i := range group {
			if j := outcomes[i].replay; j >= 0 {
				answers[i] = answers[j]
			}
		}
		for k, i := range owners {
			ids := []string{group[i].customerID}
			if refused, ok := refusalAnswer(answers[i].err); ok {
				responses = append(responses, eventstore.StoredResponse{TenantID: k.tenant, Key: k.key, Response: refused, CustomerIDs: ids})
				continue
			}
			resp, err := json.Marshal(answers[i].r)
			if err != nil {
				return fmt.Errorf("idempotent response: %w", err)
			}
			// The answer renders the customer (its profile included),
			// whether or not the command changed it: sealed with its key,
			// and named so that its erasure scrubs the record.
			if gc := view[group[i].customerID]; gc != nil && gc.hasKey {
				if resp, err = sealAnswer(gc.key, resp); err != nil {
					return err
				}
			}
			responses = append(responses, eventstore.StoredResponse{TenantID: k.tenant, Key: k.key, Response: resp, Position: answers[i].r.Position, CustomerIDs: ids})
		}
		if keyed {
			if err := tx.StoreResponses(ctx, responses, discard); err != nil {
				return err
			}
		}
		// The customers as the group leaves them, cached once committed.
		final = map[string]*groupCustomer{}
		for id, gc := range view {
			if gc.lastWrite >= 0 {
				gc.lastPosition = results[gc.lastWrite].Position
			}
			if gc.changed {
				final[id] = gc
			}
		}
		return nil
	})
	if err != nil {
		return nil, commitSent, err
	}
	for id, gc := range final {
		u.cache.putCustomer(id, cachedCustomer{customer: gc.cu, lastPosition: gc.lastPosition, key: gc.key, hasKey: gc.hasKey})
	}
	for t, tn := range tenants {
		u.cache.putTenant(t, tn)
	}
	return answers, true, nil
}

// viewOf is the group's view of its customers and tenants: what the cache
// held when the group started (cachedCustomers, cachedTenants), moved on by
// the events read past it. A customer whose head was not found, or is not a
// customer of the command's tenant, is absent.
func (u *unit) viewOf(group []*customerOp, heads map[string]eventstore.LockedHead, streams map[string][]eventstore.Event,
	keys map[string]keyring.DataKey, cachedCustomers map[string]cachedCustomer, cachedTenants map[string]domain.Tenant,
) (map[string]*groupCustomer, map[string]domain.Tenant, error) {
	tenants := map[string]domain.Tenant{}
	for _, op := range group {
		t := op.m.TenantID
		if _, ok := tenants[t]; ok {
			continue
		}
		tn := cachedTenants[t]
		for _, ev := range streams[t] {
			e, err := domain.DecodeEvent(ev.Type, ev.SchemaVersion, ev.Data)
			if err != nil {
				return nil, nil, fmt.Errorf("tenant version %d: %w", ev.Version, err)
			}
			tn.Apply(e, ev.RecordedAt)
		}
		tenants[t] = tn
	}
	view := map[string]*groupCustomer{}
	for _, op := range group {
		id := op.customerID
		h, ok := heads[id]
		if _, seen := view[id]; seen || !ok || h.Type != streamCustomer || h.TenantID != op.m.TenantID {
			continue
		}
		cc := cachedCustomers[id]
		gc := &groupCustomer{cu: cc.customer, lastPosition: cc.lastPosition, lastWrite: -1, key: cc.key, hasKey: cc.hasKey}
		if gc.cu.TenantID == "" {
			gc.cu.TenantID = op.m.TenantID
		}
		if dk, ok := keys[id]; ok {
			gc.key, gc.hasKey = dk, true
		}
		// A fold: a customer read from its stream's start (not cached)
		// with years of follow-ups costs its events, not their square.
		f := domain.FoldCustomer(gc.cu)
		for _, ev := range streams[id] {
			schema, data, err := gc.open(u.c.keys, ev)
			if err != nil {
				return nil, nil, fmt.Errorf("customer %s version %d: %w", id, ev.Version, err)
			}
			e, err := domain.DecodeEvent(ev.Type, schema, data)
			if err != nil {
				return nil, nil, fmt.Errorf("customer %s version %d: %w", id, ev.Version, err)
			}
			f.Apply(e, ev.RecordedAt)
			gc.lastPosition = ev.Position
			gc.changed = true
		}
		gc.cu = f.Customer()
		if gc.cu.Version != h.Version {
			return nil, nil, fmt.Errorf("customer %s: stream head says version %d, events say %d", id, h.Version, gc.cu.Version)
		}
		view[id] = gc
	}
	return view, tenants, nil
}

// decideOne checks what the unit checks for every command (its users, its
// customer, If-Match) and asks the command's decision, on a copy of the
// customer as the group left it.
func (u *unit) decideOne(op *customerOp, users map[string]domain.User,
	view map[string]*groupCustomer, tenants map[string]domain.Tenant) ([]domain.Event, domain.Customer, error) {
	m := op.m
	mine := make(map[string]domain.User, len(op.userIDs))
	for _, id := range op.userIDs {
		us, ok := users[id]
		if !ok || us.TenantID != m.TenantID {
			return nil, domain.Customer{}, notFound("user", id)
		}
		mine[id] = us
	}
	gc, ok := view[op.customerID]
	if !ok || gc.cu.ID != op.customerID {
		return nil, domain.Customer{}, notFound("customer", op.customerID)
	}
	tn := tenants[m.TenantID]
	if tn.ID == "" {
		return nil, domain.Customer{}, fmt.Errorf("tenant %s: %w", m.TenantID, ErrNotFound)
	}
	if !tn.Policy.Sees(m.Actor, gc.cu) {
		// A member under members_see "assigned" learns nothing of a
		// customer it does not serve: the answer is an unknown ID's.
		return nil, domain.Customer{}, notFound("customer", op.customerID)
	}
	if gc.cu.Erased {
		return nil, domain.Customer{}, fmt.Errorf("customer %s: %w", op.customerID, ErrErased)
	}
	if err := checkIfMatch(gc.cu, m.IfMatch); err != nil {
		return nil, domain.Customer{}, err
	}
	cu := cloneCustomer(gc.cu)
	events, err := op.decide(cloneCustomer(gc.cu), mine, tn.Policy)
	return events, cu, err
}

func cloneCustomer(cu domain.Customer) domain.Customer {
	cu.Team = slices.Clone(cu.Team)
	cu.Groups = slices.Clone(cu.Groups)
	// FollowUps is replaced, never changed in place (domain.FollowUpsApply).
	return cu
}

// qLockUsers share-locks users by ID alone (a group may span tenants; the
// unit checks each command's tenant).
const qLockUsers = `SELECT ` + userColumns + ` FROM users WHERE id = ANY($1::text[]::uuid[]) ORDER BY id FOR SHARE`

// qUserNames reads users' names by ID alone (see qLockUsers).
const qUserNames = `SELECT id::text, name FROM users WHERE id = ANY($1::text[]::uuid[])`

// stateCache remembers the customers and tenants the unit decided on, as
// of the versions it last saw, so a group reads only the events past them.
// Nothing in it is trusted beyond that: the group locks each customer's
// head and reads every event past the cached version in the same round
// trip, so the cache decides how much is read, never what is decided.
type stateCache struct {
	mu        sync.Mutex
	customers map[string]cachedCustomer
	tenants   map[string]domain.Tenant
}

type cachedCustomer struct {
	customer     domain.Customer
	lastPosition int64
	key          keyring.DataKey
	hasKey       bool
}

// maxCachedCustomers bounds the cache; past it the cache starts over (a
// miss only costs reading a customer's whole stream).
const maxCachedCustomers = 100_000

func (sc *stateCache) customer(id, tenantID string) cachedCustomer {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if cc, ok := sc.customers[id]; ok && cc.customer.TenantID == tenantID {
		cc.customer = cloneCustomer(cc.customer)
		return cc
	}
	return cachedCustomer{}
}

func (sc *stateCache) tenant(id string) domain.Tenant {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.tenants[id]
}

// putCustomer records a customer; an older version never replaces a newer
// one (groups commit concurrently).
func (sc *stateCache) putCustomer(id string, cc cachedCustomer) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if old, ok := sc.customers[id]; ok && old.customer.Version > cc.customer.Version {
		return
	}
	if len(sc.customers) >= maxCachedCustomers {
		sc.customers = map[string]cachedCustomer{}
	}
	cc.customer = cloneCustomer(cc.customer)
	if cc.customer.Erased {
		// Erasure destroyed the key: this process forgets it too.
		cc.key, cc.hasKey = keyring.DataKey{}, false
	}
	sc.customers[id] = cc
}

func (sc *stateCache) putTenant(id string, t domain.Tenant) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if old, ok := sc.tenants[id]; ok && old.Version > t.Version {
		return
	}
	sc.tenants[id] = t
}

// forget drops a failed group's customers: its retry reads them whole.
func (sc *stateCache) forget(group []*customerOp) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, op := range group {
		delete(sc.customers, op.customerID)
	}
}
