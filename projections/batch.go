package projections

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// batchApplier is a projection that applies a delivered batch at once: a
// batch is one message (see eventsSchema and Runner.handler). Its writes
// move the checkpoint to the batch's last event (g), also when there is
// nothing else to write, and applying a batch again must change nothing.
type batchApplier interface {
	// applyBatch applies batch in tx; st is the handler's own state,
	// kept from one batch to the next.
	applyBatch(ctx context.Context, tx queryer, batch []*envelope, g gate, st *batchState) error
}

// batchState is what a handler keeps between batches: the fold projections'
// customers as last written (foldCache), and what the claim of its last
// write found, with the checkpoint that write moved to.
type batchState struct {
	folds foldCache
	wrote claim
}

// begin is told what the claim of a batch found. Every live write to a
// projection's tables moves its checkpoint with it, and a checkpoint never
// moves back; a rebuild's swap sets it (to anything, even where it stood)
// and bumps the tables' epoch. So the tables are as this handler left them
// exactly when the claim finds the checkpoint where its last write put it,
// in the same epoch. Otherwise (another process fed the projection, a
// rebuild swapped its tables, a commit failed) the cached folds are
// forgotten; users' names never change and are kept.
func (st *batchState) begin(c claim) {
	if c != st.wrote {
		st.folds.customers = nil
	}
}

// written records that the batch claimed with c has been applied up to
// end (not yet committed: should the commit fail, the next claim finds
// the old checkpoint, which then differs).
func (st *batchState) written(c claim, end eventstore.Cursor) {
	st.wrote = claim{after: end, tablesEpoch: c.tablesEpoch}
}

// The customer-stream projections (my_clients, customer_list,
// assignment_intervals) apply a batch by folding each customer the batch
// touches again from its whole committed stream, with the rebuild's own fold
// and emitters, and writing the difference between the rows as of the
// version the projection had applied and the rows now: one read and one
// write statement per batch, and only changed rows written.
//
// Why whole streams: a customer's committed events always form a prefix of
// its stream (appends to one stream commit in version order), so the fold
// is the customer as of some committed version at or past everything
// delivered, whatever order commits were delivered in. The write carries
// the projection's per-customer version and the checkpoint, so it is all or
// nothing, and applying a batch again finds nothing to change.

// qCustomerEvents reads, for each customer $1[i], the version the
// projection has applied (%s: a query of it by w.id) and the events of its
// stream past version $2[i], each with the name of the user it puts on the
// team (names never change: every member of a team joined through such an
// event of the stream). A customer without such events has one row of
// NULL event columns.
const qCustomerEvents = `SELECT w.id::text, coalesce(a.version, 0), e.position, e.transaction_id::text, e.tenant_id::text,
       e.stream_version, e.type, e.schema_version, e.data, e.recorded_at, u.id::text, u.name
FROM unnest($1::uuid[], $2::bigint[]) AS w(id, after)
LEFT JOIN LATERAL (%s) a ON true
LEFT JOIN LATERAL (SELECT * FROM events e WHERE e.stream_id = w.id AND e.stream_version > w.after) e ON true
LEFT JOIN users u ON u.id = (coalesce(e.data->>'with_user_id', e.data->>'user_id'))::uuid
    AND e.type IN ('UserAssigned', 'TeamMemberReplaced')
ORDER BY w.id, e.stream_version`

// appliedVersion is, per fold projection, the query of the customer version
// it has applied, for qCustomerEvents.
func appliedVersion(p foldBulk) string {
	switch p.(type) {
	case myClients:
		return `SELECT version FROM my_clients_streams WHERE customer_id = w.id`
	case assignmentIntervals:
		return `SELECT version FROM assignment_intervals_streams WHERE customer_id = w.id`
	default:
		return `SELECT version FROM customer_list WHERE customer_id = w.id`
	}
}

// foldCache keeps, per customer, the fold a handler last wrote and its rows
// (the "before" of the next batch), so a batch folds only the events past
// it. The whole cache is dropped unless the batch was claimed at the
// checkpoint the handler's last write left, in the same tables epoch
// (batchState.begin): then the tables are as the entries say, and a customer whose events in the batch
// carry on from its entry's version, naming only users whose names are
// known, is folded from the batch alone, without reading anything. Any
// other customer is read: its events past its entry's version (from the
// start of its stream without an entry), with the version its table
// records, which must then match the entry.
type foldCache struct {
	customers map[string]*foldEntry
	// names are the users' names read with the customers' events (names
	// never change); a cached customer's earlier members are among them.
	names map[string]string
	// counts, when not nil, counts the customers folded each way.
	counts *foldCounts
}

type foldCounts struct {
	fromBatch, read atomic.Uint64
}

func (c *foldCounts) add(fromBatch, read int) {
	if c != nil {
		c.fromBatch.Add(uint64(fromBatch))
		c.read.Add(uint64(read))
	}
}

type foldEntry struct {
	fold *foldCustomer
	rows foldRows // the customer's rows as of fold
}

// maxFoldCache bounds a handler's cache; past it the cache starts over.
const maxFoldCache = 50_000

// foldedCustomer is a customer of a batch: its fold, brought up to date,
// and its rows as of the version the projection had applied.
type foldedCustomer struct {
	fold   *foldCustomer
	before foldRows
}

// refold brings the customers the batch's customer events belong to up to
// date: from the batch alone when their cache entry is current (see
// foldCache), otherwise from their committed streams, adding their users'
// names to the cache's.
func refold(ctx context.Context, tx queryer, p foldBulk, batch []*envelope, cache *foldCache) ([]foldedCustomer, error) {
	var ids []string
	byID := map[string][]*envelope{}
	for _, e := range batch {
		if !isCustomerEvent(e.Type) {
			continue
		}
		if _, ok := byID[e.StreamID]; !ok {
			ids = append(ids, e.StreamID)
		}
		byID[e.StreamID] = append(byID[e.StreamID], e)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	sort.Strings(ids)
	if cache.customers == nil || len(cache.customers) > maxFoldCache {
		cache.customers = map[string]*foldEntry{}
	}
	if cache.names == nil || len(cache.names) > maxFoldCache {
		cache.names = map[string]string{}
	}
	var out []foldedCustomer
	var read []string
	for _, id := range ids {
		c, ok, err := advanceCached(cache, id, byID[id])
		if err != nil {
			return nil, err
		}
		if !ok {
			read = append(read, id)
		} else if c != nil {
			out = append(out, *c)
		}
	}
	cache.counts.add(len(ids)-len(read), len(read))
	if len(read) == 0 {
		return out, nil
	}
	got, stale, err := refoldFrom(ctx, tx, p, read, cache)
	if err != nil {
		return nil, err
	}
	out = append(out, got...)
	if len(stale) == 0 {
		return out, nil
	}
	for _, id := range stale {
		delete(cache.customers, id)
	}
	again, stale, err := refoldFrom(ctx, tx, p, stale, cache)
	if err != nil {
		return nil, err
	}
	if len(stale) > 0 {
		return nil, fmt.Errorf("customers %v: applied versions moved while being read", stale)
	}
	return append(out, again...), nil
}

// advanceCached folds the customer's batch events (in stream order, as
// subscribers deliver one stream's events) into its cache entry when they
// carry on from it: ok is false when it cannot (no entry, a version
// missing from the batch, an unknown user's name), and the entry is then
// left as it was. A nil customer with ok means the batch holds nothing past
// the entry.
func advanceCached(cache *foldCache, id string, events []*envelope) (c *foldedCustomer, ok bool, err error) {
	entry, found := cache.customers[id]
	if !found || entry.fold.frozen {
		return nil, false, nil
	}
	v := entry.fold.state.Version
	var next []decoded
	for _, e := range events {
		if e.StreamVersion <= v {
			continue // already folded: a stream read runs ahead of delivery
		}
		if e.StreamVersion != v+1 {
			return nil, false, nil
		}
		d, err := decode(e)
		if err != nil {
			return nil, false, err
		}
		if u := joiningUser(d); u != "" {
			if _, known := cache.names[u]; !known {
				return nil, false, nil
			}
		}
		next = append(next, d)
		v++
	}
	if len(next) == 0 {
		return nil, true, nil
	}
	for _, d := range next {
		entry.fold.advance(d)
	}
	return &foldedCustomer{fold: entry.fold, before: entry.rows}, true, nil
}

// joiningUser is the user an event puts on the team, if any: the one whose
// name the customer's rows need next.
func joiningUser(d decoded) string {
	switch e := d.event.(type) {
	case domain.UserAssigned:
		return e.UserID
	case domain.TeamMemberReplaced:
		return e.WithUserID
	}
	return ""
}

// refoldFrom is one read of refold: the customers whose cache entry turned
// out stale are returned for a second read from the start of their streams.
func refoldFrom(ctx context.Context, tx queryer, p foldBulk, ids []string, cache *foldCache) ([]foldedCustomer, []string, error) {
	names := cache.names
	after := make([]int64, len(ids))
	for i, id := range ids {
		if e, ok := cache.customers[id]; ok {
			after[i] = e.fold.state.Version
		}
	}
	rows, err := tx.QueryContext(ctx, fmt.Sprintf(qCustomerEvents, appliedVersion(p)), ids, after)
	if err != nil {
		return nil, nil, fmt.Errorf("read customer streams: %w", err)
	}
	defer rows.Close()
	var (
		out   []foldedCustomer
		stale []string
		cur   *foldedCustomer
		skip  string // a stale customer's id, whose rows are ignored
	)
	for rows.Next() {
		var (
			id, txid, tenant, typ sql.NullString
			applied               int64
			pos, version          sql.NullInt64
			schema                sql.NullInt32
			data                  []byte
			at                    sql.NullTime
			userID, name          sql.NullString
		)
		if err := rows.Scan(&id, &applied, &pos, &txid, &tenant, &version, &typ, &schema, &data, &at, &userID, &name); err != nil {
			return nil, nil, fmt.Errorf("read customer streams: %w", err)
		}
		if id.String == skip {
			continue
		}
		if userID.Valid {
			names[userID.String] = name.String
		}
		if cur == nil || cur.fold.state.ID != id.String {
			if cur != nil {
				out = append(out, *cur)
			}
			cur = nil
			if e, ok := cache.customers[id.String]; ok {
				if e.fold.state.Version != applied {
					stale, skip = append(stale, id.String), id.String
					continue
				}
				cur = &foldedCustomer{fold: e.fold, before: e.rows}
			} else {
				cur = &foldedCustomer{fold: &foldCustomer{state: customerState{ID: id.String}, stretches: newStretchFold(nil)}, before: foldRows{}}
				if applied == 0 {
					if err := collect(p, cur.fold, names, cur.before); err != nil {
						return nil, nil, err
					}
				}
			}
			cur.fold.appliedAt = applied
		}
		if !pos.Valid {
			continue
		}
		fc := cur.fold
		env := envelope{Position: pos.Int64, TenantID: tenant.String, StreamID: id.String, StreamVersion: version.Int64,
			Type: typ.String, SchemaVersion: int(schema.Int32), Data: data, RecordedAt: at.Time}
		if fc.state.TenantID == "" {
			fc.state.TenantID = env.TenantID
		}
		if fc.frozen || env.StreamVersion != fc.state.Version+1 {
			fc.frozen = true
			continue
		}
		d, err := decode(&env)
		if err != nil {
			return nil, nil, err
		}
		fc.advance(d)
		if fc.state.Version == fc.appliedAt {
			if err := collect(p, fc, names, cur.before); err != nil {
				return nil, nil, err
			}
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read customer streams: %w", err)
	}
	for _, c := range out {
		if c.fold.state.Version < c.fold.appliedAt {
			return nil, nil, fmt.Errorf("customer %s: the projection has version %d, the stream only %d", c.fold.state.ID, c.fold.appliedAt, c.fold.state.Version)
		}
	}
	return out, stale, nil
}

// foldRows are fold rows per table, keyed by primary key, as the JSON
// objects jsonb_populate_recordset reads.
type foldRows map[string]map[string][]byte

// collect emits fc's rows (without forgetting its stretches) into out.
func collect(p foldBulk, fc *foldCustomer, names map[string]string, out foldRows) error {
	sink := &copySink{tables: map[string]*copyTable{}, names: names, lookup: func(string) string { return "" }}
	cols := p.copyColumns()
	for t, c := range cols {
		sink.tables[t] = &copyTable{id: pgx.Identifier{t}, columns: c}
	}
	state := fc.state
	state.Team = slices.Clone(fc.state.Team)
	if sp, ok := p.(stretchBulk); ok {
		for _, st := range fc.stretches.all {
			sp.emitStretch(sink, &state, st)
		}
	}
	if err := p.emit(sink, &state); err != nil {
		return err
	}
	for t, ct := range sink.tables {
		if out[t] == nil {
			out[t] = map[string][]byte{}
		}
		key := primaryKey(t)
		for _, r := range ct.rows {
			js, k, err := rowJSON(ct.columns, key, r)
			if err != nil {
				return err
			}
			out[t][k] = js
		}
	}
	return nil
}

// applyFoldBatch is applyBatch for a fold projection p.
func applyFoldBatch(ctx context.Context, tx queryer, p foldBulk, batch []*envelope, g gate, cache *foldCache) (err error) {
	defer func() {
		if err != nil {
			// What the cache holds may be ahead of what the tables will
			// hold once the transaction rolls back.
			cache.customers, cache.names = nil, nil
		}
	}()
	folded, err := refold(ctx, tx, p, batch, cache)
	if err != nil {
		return err
	}
	if len(folded) == 0 {
		return moveCheckpoint(ctx, tx, g)
	}
	names := cache.names
	tables := make([]string, 0, len(p.copyColumns()))
	for t := range p.copyColumns() {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	gone, changed := map[string][][]byte{}, map[string][][]byte{}
	for _, c := range folded {
		after := foldRows{}
		if err := collect(p, c.fold, names, after); err != nil {
			return err
		}
		for _, t := range tables {
			for k, row := range c.before[t] {
				if _, ok := after[t][k]; !ok {
					gone[t] = append(gone[t], row)
				}
			}
			for k, row := range after[t] {
				if old, ok := c.before[t][k]; !ok || !bytes.Equal(old, row) {
					changed[t] = append(changed[t], row)
				}
			}
		}
		cache.customers[c.fold.state.ID] = &foldEntry{fold: c.fold, rows: after}
	}
	var ctes []string
	var args []any
	for i, t := range tables {
		if len(gone[t]) > 0 {
			args = append(args, jsonArray(gone[t]))
			ctes = append(ctes, deleteRows(i, t, len(args)))
		}
		if len(changed[t]) > 0 {
			args = append(args, jsonArray(changed[t]))
			ctes = append(ctes, upsertRows(i, t, p.copyColumns()[t], len(args)))
		}
	}
	if g.group != "" {
		n := len(args)
		ctes = append(ctes, fmt.Sprintf(`cp AS (UPDATE projection_checkpoints SET last_transaction_id = $%[2]d::text::xid8, last_position = $%[3]d::bigint, updated_at = now()
    WHERE consumer_group = $%[1]d::text AND (last_transaction_id, last_position) < ($%[2]d::text::xid8, $%[3]d::bigint))`, n+1, n+2, n+3))
		args = append(args, g.group, g.txid, g.pos)
	}
	if len(ctes) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "WITH "+strings.Join(ctes, ",\n")+"\nSELECT 1", args...); err != nil {
		return fmt.Errorf("write rows: %w", err)
	}
	return nil
}

func isTeamEvent(d decoded) bool { return isTeamType(d.env.Type) }

func jsonArray(rows [][]byte) []byte {
	return append(append([]byte("["), bytes.Join(rows, []byte(","))...), ']')
}

// primaryKey is each fold table's key.
func primaryKey(table string) []string {
	switch table {
	case "my_clients":
		return []string{"customer_id", "user_id"}
	case "assignment_intervals":
		return []string{"customer_id", "from_position", "user_id"}
	default:
		return []string{"customer_id"}
	}
}

func quoted(cs []string, prefix string) string {
	out := make([]string, len(cs))
	for k, c := range cs {
		out[k] = prefix + pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(out, ", ")
}

// deleteRows is the CTE deleting table's rows whose keys are in JSON
// parameter $param.
func deleteRows(i int, table string, param int) string {
	name := pgx.Identifier{table}.Sanitize()
	key := primaryKey(table)
	return fmt.Sprintf("d%d AS (DELETE FROM %s WHERE (%s) IN (SELECT %s FROM jsonb_populate_recordset(NULL::%s, $%d::jsonb)))",
		i, name, quoted(key, ""), quoted(key, ""), name, param)
}

// upsertRows is the CTE inserting or updating the rows in JSON parameter
// $param. A table's deleted and upserted rows are disjoint, so one
// statement can do both.
func upsertRows(i int, table string, columns []string, param int) string {
	name := pgx.Identifier{table}.Sanitize()
	key := primaryKey(table)
	var rest []string
	for _, c := range columns {
		if !slices.Contains(key, c) {
			rest = append(rest, c)
		}
	}
	q := fmt.Sprintf("u%d AS (INSERT INTO %s (%s) SELECT %s FROM jsonb_populate_recordset(NULL::%s, $%d::jsonb) ON CONFLICT (%s) DO ",
		i, name, quoted(columns, ""), quoted(columns, ""), name, param, quoted(key, ""))
	if len(rest) == 0 {
		return q + "NOTHING)"
	}
	sets := make([]string, len(rest))
	for k, c := range rest {
		n := pgx.Identifier{c}.Sanitize()
		sets[k] = n + " = excluded." + n
	}
	return q + "UPDATE SET " + strings.Join(sets, ", ") + ")"
}

// isJSONColumn reports whether column holds a JSON document the emitters
// hand over as text.
func isJSONColumn(column string) bool { return column == "assignees" }

// rowJSON encodes an emitted row as the JSON object
// jsonb_populate_recordset reads, keyed by column, and returns it with its
// primary key (the key columns' values, encoded). Written by hand: a map
// through encoding/json was most of a batch's CPU.
func rowJSON(columns, key []string, r []any) ([]byte, string, error) {
	b := make([]byte, 0, 64*len(columns))
	var k []byte
	b = append(b, '{')
	for j, c := range columns {
		if j > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, c) // column names are plain ASCII
		b = append(b, ':')
		start := len(b)
		switch v := r[j].(type) {
		case [16]byte:
			b = append(b, '"')
			b = append(b, uuid.UUID(v).String()...)
			b = append(b, '"')
		case time.Time:
			b = append(b, '"')
			b = v.UTC().AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		case *time.Time:
			if v == nil {
				b = append(b, "null"...)
			} else {
				b = append(b, '"')
				b = v.UTC().AppendFormat(b, time.RFC3339Nano)
				b = append(b, '"')
			}
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case *int64:
			if v == nil {
				b = append(b, "null"...)
			} else {
				b = strconv.AppendInt(b, *v, 10)
			}
		case bool:
			b = strconv.AppendBool(b, v)
		case string:
			if isJSONColumn(c) {
				b = append(b, v...)
				break
			}
			js, err := json.Marshal(v)
			if err != nil {
				return nil, "", err
			}
			b = append(b, js...)
		default:
			js, err := json.Marshal(v)
			if err != nil {
				return nil, "", err
			}
			b = append(b, js...)
		}
		if slices.Contains(key, c) {
			k = append(append(k, b[start:]...), '|')
		}
	}
	return append(b, '}'), string(k), nil
}

func (myClients) applyBatch(ctx context.Context, tx queryer, batch []*envelope, g gate, st *batchState) error {
	return applyFoldBatch(ctx, tx, myClients{}, batch, g, &st.folds)
}

func (customerList) applyBatch(ctx context.Context, tx queryer, batch []*envelope, g gate, st *batchState) error {
	return applyFoldBatch(ctx, tx, customerList{}, batch, g, &st.folds)
}

func (assignmentIntervals) applyBatch(ctx context.Context, tx queryer, batch []*envelope, g gate, st *batchState) error {
	return applyFoldBatch(ctx, tx, assignmentIntervals{}, batch, g, &st.folds)
}

// The audit log and the notifications insert a batch's rows in one
// statement over the batch's positions; ON CONFLICT DO NOTHING (their rows
// are keyed by position) makes applying a batch again harmless, and the gate
// moves the checkpoint to the batch's last event with them.
var (
	qAuditApplyBatch         = gated(1, qAuditSelect+`WHERE e.position = ANY($1::bigint[]) AND EXISTS (SELECT 1 FROM cp) ON CONFLICT DO NOTHING`)
	qNotificationsApplyBatch = gated(1, qNotificationsSelect+`AND e.position = ANY($1::bigint[]) AND EXISTS (SELECT 1 FROM cp) ON CONFLICT DO NOTHING`)
)

// moveCheckpoint moves g's checkpoint past a batch with nothing to write.
func moveCheckpoint(ctx context.Context, tx queryer, g gate) error {
	if g.group == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, qAckOffset, g.group, g.txid, g.pos); err != nil {
		return fmt.Errorf("move checkpoint: %w", err)
	}
	return nil
}

func positions(batch []*envelope) []int64 {
	out := make([]int64, len(batch))
	for i, e := range batch {
		out[i] = e.Position
	}
	return out
}

func (auditLog) applyBatch(ctx context.Context, tx queryer, batch []*envelope, g gate, _ *batchState) error {
	if err := qAuditApplyBatch.exec(ctx, tx, g, positions(batch)); err != nil {
		return fmt.Errorf("write audit_log: %w", err)
	}
	return nil
}

func (notifications) applyBatch(ctx context.Context, tx queryer, batch []*envelope, g gate, _ *batchState) error {
	if !slices.ContainsFunc(batch, func(e *envelope) bool { return isTeamType(e.Type) }) {
		return moveCheckpoint(ctx, tx, g)
	}
	if err := qNotificationsApplyBatch.exec(ctx, tx, g, positions(batch)); err != nil {
		return fmt.Errorf("write notifications: %w", err)
	}
	return nil
}

func isTeamType(typ string) bool {
	switch typ {
	case domain.TypeUserAssigned, domain.TypeUserUnassigned, domain.TypeTeamLeadChanged, domain.TypeTeamMemberReplaced:
		return true
	}
	return false
}
