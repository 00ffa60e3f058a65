package projections

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/assignment-ledger/ledger/keyring"
)

// The customer-stream read models apply a batch by bringing each customer
// it touches up to date in one fold shared by all of them, and writing the
// difference between their rows as of the versions they had applied and
// their rows now (engine.writeFolds).
//
// A customer is brought up to date the cheapest way that is exact:
//   - from the batch alone, when the engine's cache holds its fold as last
//     written and the batch carries on from it (the common case live);
//   - from the batch alone, when no projection has anything of it yet and
//     the batch starts its stream (a bulk import, a rebuild's catch-up);
//   - otherwise by reading its committed stream, with the versions each
//     projection has applied.
//
// Why whole committed streams: a customer's committed events always form a
// prefix of its stream (appends to one stream commit in version order), so
// the fold is the customer as of some committed version at or past
// everything delivered, whatever order commits were delivered in. Each
// projection records the version it applied, so applying a batch again
// finds nothing to change.

// foldCache keeps, per customer, the fold the engine last wrote and its
// rows (the "before" of the next batch). The engine drops it unless the
// tables are as it left them (engine.applyLive).
type foldCache struct {
	customers map[string]*foldEntry
	// keys opens sealed events (keyring.WrappedKeySQL read beside them).
	keys *keyring.Keyring
	// counts, when not nil, counts the customers folded each way.
	counts *foldCounts
}

type foldEntry struct {
	fold *foldCustomer
	rows foldRows // the customer's rows as of fold
}

// maxFoldCache bounds the cache; past it the cache starts over.
const maxFoldCache = 50_000

type foldCounts struct {
	fromBatch, read atomic.Uint64
}

func (c *foldCounts) add(fromBatch, read int) {
	if c != nil {
		c.fromBatch.Add(uint64(fromBatch))
		c.read.Add(uint64(read))
	}
}

// foldedCustomer is a customer of a batch: its fold, brought up to date,
// and the rows of each fold projection as of the version it had applied.
type foldedCustomer struct {
	fold   *foldCustomer
	before foldRows
}

// refold brings the customers of the batch's customer events up to date;
// ds are the batch's events decoded (engine.decode), customer events among
// them.
func refold(ctx context.Context, tx queryer, folds []*projection, ds []decoded, cache *foldCache) ([]foldedCustomer, error) {
	byID := map[string][]decoded{}
	for _, d := range ds {
		if isCustomerEvent(d.env.Type) {
			byID[d.env.StreamID] = append(byID[d.env.StreamID], d)
		}
	}
	if len(byID) == 0 {
		return nil, nil
	}
	ids := slices.Sorted(maps.Keys(byID))
	if cache.customers == nil || len(cache.customers) > maxFoldCache {
		cache.customers = map[string]*foldEntry{}
	}
	for _, evs := range byID {
		slices.SortFunc(evs, func(a, b decoded) int { return cmp.Compare(a.env.StreamVersion, b.env.StreamVersion) })
	}
	var out []foldedCustomer
	var unknown []string
	for _, id := range ids {
		if c, ok := advanceCached(cache, id, byID[id]); !ok {
			unknown = append(unknown, id)
		} else if c != nil {
			out = append(out, *c)
		}
	}
	fresh, read, err := foldNew(ctx, tx, folds, unknown, byID)
	if err != nil {
		return nil, err
	}
	out = append(out, fresh...)
	if len(read) > 0 {
		got, err := readFolds(ctx, tx, folds, read, cache)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	cache.counts.add(len(ids)-len(read), len(read))
	return out, nil
}

// advanceCached folds the customer's batch events (in stream order) into
// its cache entry when they carry on from it: ok is false when they cannot
// (no entry, or a version missing from the batch), and the entry is then
// left as it was. A nil customer with ok means the batch
// holds nothing past the entry.
func advanceCached(cache *foldCache, id string, events []decoded) (c *foldedCustomer, ok bool) {
	entry, found := cache.customers[id]
	if !found || entry.fold.frozen {
		return nil, false
	}
	next, ok := carryOn(entry.fold.state.Version, events)
	if !ok || len(next) == 0 {
		return nil, ok
	}
	for _, d := range next {
		entry.fold.advance(d)
	}
	return &foldedCustomer{fold: entry.fold, before: entry.rows}, true
}

// carryOn returns the events past version v when they follow on from it
// without a gap.
func carryOn(v int64, events []decoded) ([]decoded, bool) {
	var next []decoded
	for _, d := range events {
		if d.env.StreamVersion <= v {
			continue // already folded: a stream read runs ahead of delivery
		}
		if d.env.StreamVersion != v+1 {
			return nil, false
		}
		next = append(next, d)
		v++
	}
	return next, true
}

// decodeAll decodes (and opens) a batch's customer events side by side:
// in a large batch that is most of the fold's CPU, and while the fold
// engine computes, nothing else needs the other core.
func decodeAll(keys *keyring.Keyring, events []*envelope) ([]decoded, error) {
	out := make([]decoded, len(events))
	errs := make([]error, len(events))
	parallel(len(events), func(i int) { out[i], errs[i] = decode(keys, events[i]) })
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parallel calls fn for every i in [0, n), spread over all cores when n is
// large enough for that to pay.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n/parallelMin)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// parallelMin is the least work per goroutine that parallel hands out: a
// live batch of a few events stays on its goroutine.
const parallelMin = 256

// foldNew folds from the batch alone the customers among ids of whom no
// fold projection has anything yet and whose batch events start their
// stream; the others are returned to be read.
func foldNew(ctx context.Context, tx queryer, folds []*projection, ids []string, byID map[string][]decoded) (
	out []foldedCustomer, read []string, err error) {
	var candidates []string
	for _, id := range ids {
		if evs := byID[id]; evs[0].env.StreamVersion == 1 {
			candidates = append(candidates, id)
		} else {
			read = append(read, id)
		}
	}
	if len(candidates) == 0 {
		return nil, read, nil
	}
	applied, err := stringSet(ctx, tx, qFoldsApplied, candidates)
	if err != nil {
		return nil, nil, fmt.Errorf("read applied customers: %w", err)
	}
	for _, id := range candidates {
		next, ok := carryOn(0, byID[id])
		if applied[id] || !ok {
			read = append(read, id)
			continue
		}
		fc := &foldCustomer{state: customerState{ID: id, TenantID: byID[id][0].env.TenantID}, stretches: newStretchFold()}
		for _, d := range next {
			fc.advance(d)
		}
		out = append(out, foldedCustomer{fold: fc, before: foldRows{}})
	}
	return out, read, nil
}

// stringSet runs a query of one text column and returns its values as a set.
func stringSet(ctx context.Context, tx queryer, q string, args ...any) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out[s] = true
	}
	return out, rows.Err()
}

// foldVersions is the stream version the fold read models have applied of
// customer w.id (0: none of it), all of them the same one (foldDef): the
// version column of its customer_list row, which every event of the
// customer rewrites anyway, or once it is erased and gone from the list,
// its customer_list_erased row.
const foldVersions = `coalesce((SELECT v.version FROM customer_list v WHERE v.customer_id = w.id),
         (SELECT v.version FROM customer_list_erased v WHERE v.customer_id = w.id), 0)`

// qFoldsApplied returns the customers among $1 of whom the fold read models
// have applied something.
const qFoldsApplied = `SELECT w.id::text FROM unnest($1::uuid[]) AS w(id) WHERE ` + foldVersions + ` > 0`

// qCustomerEvents reads, for each customer $1[i], the events of its
// committed stream past version $2[i] and the version the fold read models
// have applied. A customer without such events has one row of NULL event
// columns.
const qCustomerEvents = `SELECT w.id::text, e.position, e.tenant_id::text, e.stream_version, e.type, e.schema_version,
       e.data, ` + keyring.WrappedKeySQL + `, e.recorded_at, ` + foldVersions + `
FROM unnest($1::uuid[], $2::bigint[]) AS w(id, after)
LEFT JOIN LATERAL ledger_stream_events_after(w.id, w.after) e ON true
ORDER BY w.id, e.stream_version`

// readFolds brings customers up to date from their committed streams:
// from their cache entry when the fold read models have applied exactly its
// version, otherwise from the start of the stream, collecting their rows
// as of the version they had applied.
func readFolds(ctx context.Context, tx queryer, folds []*projection, ids []string, cache *foldCache) ([]foldedCustomer, error) {
	got, stale, err := readFoldsFrom(ctx, tx, folds, ids, cache)
	if err != nil || len(stale) == 0 {
		return got, err
	}
	for _, id := range stale {
		delete(cache.customers, id)
	}
	// Without cache entries, none of them can turn out stale again.
	again, _, err := readFoldsFrom(ctx, tx, folds, stale, cache)
	if err != nil {
		return nil, err
	}
	return append(got, again...), nil
}

// readFoldsFrom is one read of readFolds: the customers whose cache entry
// turned out stale are returned for a second read from the start.
func readFoldsFrom(ctx context.Context, tx queryer, folds []*projection, ids []string, cache *foldCache) ([]foldedCustomer, []string, error) {
	after := make([]int64, len(ids))
	for i, id := range ids {
		if e, ok := cache.customers[id]; ok {
			after[i] = e.fold.state.Version
		}
	}
	rows, err := tx.QueryContext(ctx, qCustomerEvents, ids, after)
	if err != nil {
		return nil, nil, fmt.Errorf("read customer streams: %w", err)
	}
	defer rows.Close()
	tables := tablesOf(folds)
	var (
		out     []foldedCustomer
		stale   []string
		cur     *foldedCustomer
		applied int64
		skip    string // a stale customer's id, whose rows are ignored
	)
	finish := func() error {
		if cur == nil {
			return nil
		}
		if cur.fold.state.Version < applied {
			return fmt.Errorf("customer %s: the fold read models have version %d, the stream only %d", cur.fold.state.ID, applied, cur.fold.state.Version)
		}
		out = append(out, *cur)
		cur = nil
		return nil
	}
	for rows.Next() {
		var (
			id           string
			tenant, typ  sql.NullString
			pos, version sql.NullInt64
			schema       sql.NullInt32
			data, key    []byte
			at           sql.NullTime
			appliedNow   int64
		)
		if err := rows.Scan(&id, &pos, &tenant, &version, &typ, &schema, &data, &key, &at, &appliedNow); err != nil {
			return nil, nil, fmt.Errorf("read customer streams: %w", err)
		}
		if id == skip {
			continue
		}
		if cur == nil || cur.fold.state.ID != id {
			if err := finish(); err != nil {
				return nil, nil, err
			}
			applied = appliedNow
			if e, ok := cache.customers[id]; ok {
				if applied != e.fold.state.Version {
					stale, skip = append(stale, id), id
					continue
				}
				cur = &foldedCustomer{fold: e.fold, before: e.rows}
			} else {
				cur = &foldedCustomer{fold: &foldCustomer{state: customerState{ID: id}, stretches: newStretchFold()}, before: foldRows{}}
			}
		}
		if !pos.Valid {
			continue
		}
		fc := cur.fold
		fc.state.TenantID = cmp.Or(fc.state.TenantID, tenant.String)
		if fc.frozen || version.Int64 != fc.state.Version+1 {
			fc.frozen = true
			continue
		}
		d, err := decode(cache.keys, &envelope{Position: pos.Int64, TenantID: tenant.String, StreamID: id, StreamVersion: version.Int64,
			Type: typ.String, SchemaVersion: int(schema.Int32), Data: data, Key: key, RecordedAt: at.Time})
		if err != nil {
			return nil, nil, err
		}
		fc.advance(d)
		// The before rows are those as of the version applied.
		if applied == fc.state.Version {
			rs, err := rowsOf(tables, folds, fc)
			if err != nil {
				return nil, nil, err
			}
			cur.before = rs
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read customer streams: %w", err)
	}
	if err := finish(); err != nil {
		return nil, nil, err
	}
	return out, stale, nil
}
