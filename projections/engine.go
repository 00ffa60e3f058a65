package projections

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
)

// engine applies batches of events to a set of projections: the one write
// path of every read model. A batch is read once for all of them, the
// customer-stream read models share one fold of each customer it touches,
// and everything it changes goes to PostgreSQL in one statement (with the
// checkpoints, for a live batch), so a batch commits whole or not at all
// whatever the transaction around it does.
//
// Live batches, the catch-up after a backlog (a big live batch) and a
// rebuild's catch-up and swap (on the rebuild's tables, without
// checkpoints) all go through apply. Only a rebuild's bulk load writes
// otherwise: with COPY into empty tables, from the same row definitions.
type engine struct {
	ps     []*projection
	folds  []*projection
	events []*projection // made from single typed events
	tables map[string]*table
	sql    map[string]tableSQL // by table name
	cache  foldCache
	// wrote is, per projection, what its claim will find when nothing but
	// this engine wrote since its last batch: the checkpoint that batch
	// left, in the same tables epoch.
	wrote map[string]claim
	// created counts the customers this engine's live batches created
	// since it last analyzed the customer list's tables, analyzed how
	// many it counted then (see analyzeIfGrown).
	created, analyzed int
}

// The customer list's tables are analyzed in a live batch's transaction
// once the customers created since the last time reach half as many as
// then (and at least analyzeMin): a 10,001-row import into a fresh tenant
// otherwise left customer_list and customer_search with statistics of a
// far smaller table until autovacuum came round (a minute or more), and a
// search planned on them (walk the list in order, test each row against a
// customer_search it believed tiny) could take longer than the request
// limit for a selection of 10 customers. Growth by half keeps the cost
// logarithmic in the table's size: some ten ANALYZEs for 100,000 rows.
const analyzeMin = 1000

// analyzeTables are analyzed by analyzeIfGrown, when the engine writes them.
var analyzeTables = []string{"customer_list", "customer_search"}

func (e *engine) analyzeIfGrown(ctx context.Context, tx queryer, batch []*envelope) error {
	if _, ok := e.tables[analyzeTables[0]]; !ok {
		return nil
	}
	for _, ev := range batch {
		if ev.Type == domain.TypeCustomerRegistered || ev.Type == domain.TypeClientInvited {
			e.created++
		}
	}
	if e.created < max(analyzeMin, e.analyzed/2) {
		return nil
	}
	// ANALYZE takes a lock that only other ANALYZEs and VACUUMs wait for
	// (autovacuum gives way); readers and writers go on.
	if _, err := tx.ExecContext(ctx, `ANALYZE `+strings.Join(analyzeTables, ", ")); err != nil {
		return fmt.Errorf("analyze %s: %w", strings.Join(analyzeTables, ", "), err)
	}
	e.analyzed += e.created
	e.created = 0
	return nil
}

// claim is what claiming a projection's checkpoint found: where it stands
// and how many times a rebuild has swapped its tables (migration 0009).
type claim struct {
	after       eventstore.Cursor
	tablesEpoch int64
}

func newEngine(ps []*projection, counts *foldCounts, keys *keyring.Keyring) *engine {
	e := &engine{ps: ps, tables: tablesOf(ps), sql: map[string]tableSQL{}, cache: foldCache{counts: counts, keys: keys}}
	for name, t := range e.tables {
		e.sql[name] = newTableSQL(t)
	}
	for _, p := range ps {
		switch {
		case p.fold != nil:
			e.folds = append(e.folds, p)
		case p.events != nil:
			e.events = append(e.events, p)
		}
	}
	return e
}

// applyLive applies a batch delivered after claims (one per projection of
// the engine) in tx, and moves every checkpoint to the batch's last event.
//
// The fold cache is trusted only when every fold projection's claim finds
// its checkpoint where this engine's last write left it: every live write
// moves the checkpoints with it and a checkpoint never moves back, so then
// nobody else wrote (another process, a rebuild's swap, a failed commit).
func (e *engine) applyLive(ctx context.Context, tx queryer, batch []*envelope, claims map[string]claim) error {
	for _, p := range e.folds {
		if c, ok := e.wrote[p.name]; !ok || c != claims[p.name] {
			e.cache.customers = nil
			break
		}
	}
	e.wrote = nil
	after := make(map[string]eventstore.Cursor, len(claims))
	for name, c := range claims {
		after[name] = c.after
	}
	if err := e.apply(ctx, tx, batch, after, &e.cache, true); err != nil {
		// What the cache holds may be ahead of what the tables will hold
		// once the transaction rolls back.
		e.cache.customers = nil
		return err
	}
	if err := e.analyzeIfGrown(ctx, tx, batch); err != nil {
		e.cache.customers = nil
		return err
	}
	end := batch[len(batch)-1].cursor()
	e.wrote = make(map[string]claim, len(claims))
	for name, c := range claims {
		if c.after.Less(end) {
			c.after = end
		}
		e.wrote[name] = c
	}
	return nil
}

// apply writes what batch changes in each projection p that has not
// applied it yet (its events after after[p.name]), in one statement;
// checkpoints says whether it also moves their checkpoints. cache may be
// nil (a rebuild has none).
func (e *engine) apply(ctx context.Context, tx queryer, batch []*envelope, after map[string]eventstore.Cursor,
	cache *foldCache, checkpoints bool) error {
	if len(batch) == 0 {
		return nil
	}
	end := batch[len(batch)-1].cursor()
	var w stmt
	if len(e.folds) > 0 || len(e.events) > 0 {
		// The events the fold and event projections need are decoded once
		// for all of them.
		ds, err := e.decode(batch)
		if err != nil {
			return err
		}
		if len(e.folds) > 0 {
			if cache == nil {
				cache = &foldCache{keys: e.cache.keys}
			}
			folded, err := refold(ctx, tx, e.folds, ds, cache)
			if err != nil {
				return err
			}
			if err := e.writeFolds(&w, folded, cache); err != nil {
				return err
			}
		}
		if err := e.writeEvents(&w, ds, after); err != nil {
			return err
		}
	}
	for _, p := range e.ps {
		if p.grow != nil && derives(p, batch, after[p.name]) {
			if err := p.grow(ctx, tx, &w, after[p.name], end); err != nil {
				return err
			}
		}
		if p.derive == "" || !derives(p, batch, after[p.name]) {
			continue
		}
		from := after[p.name]
		batch := fmt.Sprintf(`ledger_events_between(%s::text::xid8, %s::bigint, %s::text::xid8, %s::bigint)`,
			w.arg(txid(from)), w.arg(from.Position), w.arg(txid(end)), w.arg(end.Position))
		w.cte(fmt.Sprintf(p.derive, batch) + "\nON CONFLICT DO NOTHING")
	}
	if checkpoints {
		w.cte(fmt.Sprintf(qMoveCheckpoints, w.arg(names(e.ps)), w.arg(txid(end)), w.arg(end.Position)))
		w.result = qAsyncCommit
	}
	if err := w.exec(ctx, tx); err != nil {
		return fmt.Errorf("apply events %d..%d: %w", batch[0].Position, end.Position, err)
	}
	return nil
}

// decode decodes (and opens) the batch's events that the engine's fold
// and event projections make rows of.
func (e *engine) decode(batch []*envelope) ([]decoded, error) {
	var events []*envelope
	for _, ev := range batch {
		if slices.ContainsFunc(e.folds, func(p *projection) bool { return p.wants(ev.Type) }) ||
			slices.ContainsFunc(e.events, func(p *projection) bool { return p.wants(ev.Type) }) {
			events = append(events, ev)
		}
	}
	if len(events) == 0 {
		return nil, nil
	}
	return decodeAll(e.cache.keys, events)
}

// writeEvents adds to w the rows the event projections make of the
// decoded events past their checkpoints: inserted, never updated, so an
// event applied again changes nothing.
func (e *engine) writeEvents(w *stmt, ds []decoded, after map[string]eventstore.Cursor) error {
	for _, p := range e.events {
		out := &rowList{}
		for _, d := range ds {
			if after[p.name].Less(d.env.cursor()) && p.wants(d.env.Type) {
				p.events(out, d.env, d.event)
			}
		}
		for i := range p.tables {
			t := &p.tables[i]
			rows := out.rows[t.name]
			if len(rows) == 0 {
				continue
			}
			source, err := columnArrays(w, t, rows, false)
			if err != nil {
				return err
			}
			w.cte(e.sql[t.name].insert + source + " ON CONFLICT DO NOTHING")
		}
	}
	return nil
}

// rowList is a rowSink that keeps rows as they come, per table.
type rowList struct{ rows map[string][][]any }

func (l *rowList) add(table string, row ...any) {
	if l.rows == nil {
		l.rows = map[string][][]any{}
	}
	l.rows[table] = append(l.rows[table], row)
}

// qMoveCheckpoints moves checkpoints forward only: a projection a rebuild
// swapped in past the batch keeps its own.
const qMoveCheckpoints = `UPDATE projection_checkpoints
SET last_transaction_id = %[2]s::text::xid8, last_position = %[3]s::bigint, updated_at = now()
WHERE consumer_group = ANY(%[1]s::text[])
  AND (last_transaction_id, last_position) < (%[2]s::text::xid8, %[3]s::bigint)`

// derives reports whether a derived projection has rows to make of the
// batch's events after its checkpoint.
func derives(p *projection, batch []*envelope, after eventstore.Cursor) bool {
	return slices.ContainsFunc(batch, func(ev *envelope) bool {
		return after.Less(ev.cursor()) && (p.deriveTypes == nil || slices.Contains(p.deriveTypes, ev.Type))
	})
}

func txid(c eventstore.Cursor) string { return strconv.FormatUint(c.TransactionID, 10) }

// writeFolds adds to w the fold projections' row changes: per table, the
// rows that are gone and the rows that are new or changed, each as typed
// column arrays (rows.go). The cache then holds every customer as written.
func (e *engine) writeFolds(w *stmt, folded []foldedCustomer, cache *foldCache) error {
	if len(folded) == 0 {
		return nil
	}
	var tables []string
	for _, p := range e.folds {
		tables = append(tables, p.tableNames()...)
	}
	// Each customer's rows are independent of the others': computed side
	// by side, diffed in order.
	nows := make([]foldRows, len(folded))
	errs := make([]error, len(folded))
	parallel(len(folded), func(i int) { nows[i], errs[i] = rowsOf(e.tables, e.folds, folded[i].fold) })
	gone, changed := map[string][][]any{}, map[string][][]any{}
	for i, c := range folded {
		now, err := nows[i], errs[i]
		if err != nil {
			return err
		}
		for _, t := range tables {
			// A row missing from now of a partial table was written
			// and forgotten, or did not change: not gone. A fold never
			// written gives all its rows, partial tables' too.
			if !e.tables[t].partial || !c.fold.state.written {
				for k, row := range c.before[t] {
					if _, ok := now[t][k]; !ok {
						gone[t] = append(gone[t], row)
					}
				}
			}
			for k, row := range now[t] {
				old, ok := c.before[t][k]
				switch {
				case isRemoved(row):
					// Written before this customer's rows were
					// cached, perhaps: deleted unless known gone.
					if !ok || !isRemoved(old) {
						gone[t] = append(gone[t], row)
					}
				case !ok || isRemoved(old) || !slices.EqualFunc(old, row, sameValue):
					changed[t] = append(changed[t], row)
				}
			}
		}
		// What changed by now is in this write: the fold forgets the
		// stretches given and which follow-ups and members changed
		// (table.partial).
		c.fold.stretches.written()
		c.fold.state.FollowUpsChanged, c.fold.state.MembersChanged, c.fold.state.written = nil, nil, true
		cache.customers[c.fold.state.ID] = &foldEntry{fold: c.fold, rows: now}
	}
	// A table's gone and changed rows have different keys, so one
	// statement can do both.
	for _, name := range tables {
		t := e.tables[name]
		if rows := gone[name]; len(rows) > 0 {
			keys, err := columnArrays(w, t, rows, true)
			if err != nil {
				return err
			}
			w.cte(e.sql[name].deleteKeys + keys + ")")
		}
		if rows := changed[name]; len(rows) > 0 {
			source, err := columnArrays(w, t, rows, false)
			if err != nil {
				return err
			}
			w.cte(e.sql[name].insert + source + e.sql[name].onConflict)
		}
	}
	return nil
}

// stmt is one write statement built from data-modifying CTEs, so that a
// batch is written by a single statement: atomic even when Watermill
// commits the transaction while a handler runs (shutdown, ack deadline).
type stmt struct {
	ctes []string
	args sqlArgs
	// result is the statement's final SELECT (after the CTEs; SELECT 1
	// when empty); it runs once, so it can set the transaction's settings.
	result string
}

// qAsyncCommit lets a live batch's transaction commit without waiting for
// its WAL flush. Its rows and the checkpoints that cover them commit
// together, so a crash can only lose whole batches with their checkpoints,
// and those are applied again from the event store, which is durable: no
// effect on exactly-once, and the commit no longer queues behind the
// commands' flushes (nor holds its transaction id, which bounds every
// subscriber's reads, for the length of one).
const qAsyncCommit = `SELECT set_config('synchronous_commit', 'off', true)`

func (s *stmt) arg(v any) string { return s.args.add(v) }

func (s *stmt) cte(q string) {
	s.ctes = append(s.ctes, fmt.Sprintf("w%d AS (%s)", len(s.ctes), q))
}

func (s *stmt) exec(ctx context.Context, tx queryer) error {
	if len(s.ctes) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, "WITH "+strings.Join(s.ctes, ",\n")+"\n"+cmp.Or(s.result, "SELECT 1"), s.args...)
	return err
}

// queryer is what the engine needs of a transaction: a Watermill
// subscriber's *sql.Tx, or a rebuild's.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}
