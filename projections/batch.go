package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
)

// batchApplier is a projection that applies a delivered batch at once: the
// handler gives it, with the first message of a batch, every event of the
// batch from there on (see Runner.handler).
type batchApplier interface {
	applyBatch(ctx context.Context, tx queryer, batch []*envelope, g gate) error
}

// The customer-stream projections (my_clients, customer_list,
// assignment_intervals) apply a batch by folding each customer the batch
// touches again from its whole committed stream, with the rebuild's own fold
// and emitters, and replacing that customer's rows.
//
// Why whole streams: a customer's committed events always form a prefix of
// its stream (appends to one stream commit in version order), so the fold
// is the customer as of some committed version at or past everything
// delivered, whatever order commits were delivered in. Writing it is
// idempotent: applying a batch again, or a commit by Watermill between two
// of its statements, leaves rows that another application makes whole. The
// checkpoint moves in the batch's last statement. Customer streams are
// short (their team's history), so the read is cheap next to a statement
// per event.

// qCustomerStreams reads whole customer streams with, per event, the name
// of the user it puts on the team (names never change): every member of a
// team joined through such an event of the stream.
const qCustomerStreams = `SELECT e.position, e.transaction_id::text, e.tenant_id::text, e.stream_id::text, e.stream_version,
       e.type, e.schema_version, e.data, e.recorded_at, u.id::text, u.name
FROM events e
LEFT JOIN users u ON u.id = (coalesce(e.data->>'with_user_id', e.data->>'user_id'))::uuid
    AND e.type IN ('UserAssigned', 'TeamMemberReplaced')
WHERE e.stream_id = ANY($1::uuid[]) ORDER BY e.stream_id, e.stream_version`

// refold folds again, from their whole committed streams, the customers
// the batch's customer events belong to, and returns them with the names of
// their users.
func refold(ctx context.Context, tx queryer, batch []*envelope) ([]string, []*foldCustomer, map[string]string, error) {
	var ids []string
	for _, e := range batch {
		if isCustomerEvent(e.Type) && !slices.Contains(ids, e.StreamID) {
			ids = append(ids, e.StreamID)
		}
	}
	if len(ids) == 0 {
		return nil, nil, nil, nil
	}
	sort.Strings(ids)
	rows, err := tx.QueryContext(ctx, qCustomerStreams, ids)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read customer streams: %w", err)
	}
	defer rows.Close()
	byID := map[string]*foldCustomer{}
	names := map[string]string{}
	var out []*foldCustomer
	for rows.Next() {
		var env envelope
		var txid string
		var userID, name sql.NullString
		if err := rows.Scan(&env.Position, &txid, &env.TenantID, &env.StreamID, &env.StreamVersion,
			&env.Type, &env.SchemaVersion, &env.Data, &env.RecordedAt, &userID, &name); err != nil {
			return nil, nil, nil, fmt.Errorf("read customer streams: %w", err)
		}
		if userID.Valid {
			names[userID.String] = name.String
		}
		fc := byID[env.StreamID]
		if fc == nil {
			fc = &foldCustomer{state: customerState{ID: env.StreamID, TenantID: env.TenantID}, stretches: newStretchFold(nil)}
			byID[env.StreamID] = fc
			out = append(out, fc)
		}
		if fc.frozen || env.StreamVersion != fc.state.Version+1 {
			fc.frozen = true
			continue
		}
		d, err := decode(&env)
		if err != nil {
			return nil, nil, nil, err
		}
		fc.stretches.apply(&fc.state, d)
		if isTeamEvent(d) {
			fc.state.Team = fc.stretches.team
			fc.state.Version++
		} else {
			fc.state.apply(d.event, d.env.RecordedAt, d.env.Position)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("read customer streams: %w", err)
	}
	return ids, out, names, nil
}

// applyFoldBatch is applyBatch for a fold projection p: one read, one
// statement deleting the touched customers' rows from every table of p, one
// inserting their new rows and moving the checkpoint. (A row deleted and
// inserted again by one statement would be its own unique conflict.)
func applyFoldBatch(ctx context.Context, tx queryer, p foldBulk, batch []*envelope, g gate) error {
	ids, folded, names, err := refold(ctx, tx, batch)
	if err != nil || len(ids) == 0 {
		return err
	}
	sink := &copySink{tables: map[string]*copyTable{}, names: names, lookup: func(string) string { return "" }}
	for t, cols := range p.copyColumns() {
		sink.tables[t] = &copyTable{id: pgx.Identifier{t}, columns: cols}
	}
	sp, stretches := p.(stretchBulk)
	for _, fc := range folded {
		if stretches {
			fc.stretches.drain(func(st *stretch) { sp.emitStretch(sink, &fc.state, st) }, true)
		}
		if err := p.emit(sink, &fc.state); err != nil {
			return err
		}
	}
	tables := make([]string, 0, len(sink.tables))
	for t := range sink.tables {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	ctes := make([]string, 0, 3*len(tables)+1)
	args := []any{ids}
	for i, t := range tables {
		ct := sink.tables[t]
		js, err := rowsJSON(ct.columns, ct.rows)
		if err != nil {
			return fmt.Errorf("replace %s: %w", t, err)
		}
		args = append(args, js)
		ctes = append(ctes, replaceRows(i, t, ct.columns, len(args))...)
	}
	if g.group != "" {
		n := len(args)
		ctes = append(ctes, fmt.Sprintf(`cp AS (UPDATE projection_checkpoints SET last_transaction_id = $%[2]d::text::xid8, last_position = $%[3]d::bigint, updated_at = now()
    WHERE consumer_group = $%[1]d::text AND (last_transaction_id, last_position) < ($%[2]d::text::xid8, $%[3]d::bigint))`, n+1, n+2, n+3))
		args = append(args, g.group, g.txid, g.pos)
	}
	if _, err := tx.ExecContext(ctx, "WITH "+strings.Join(ctes, ",\n")+"\nSELECT 1", args...); err != nil {
		return fmt.Errorf("replace rows: %w", err)
	}
	return nil
}

// primaryKey is each fold table's key: the rows of one customer that
// replaceRows keeps, updates or deletes are told apart by it.
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

// replaceRows returns the CTEs that make table's rows of the customers $1
// the rows in JSON parameter $param: rows no longer there are deleted, new
// ones inserted, changed ones updated and the others left alone (their
// indexes untouched). The delete and the upsert touch disjoint rows, so one
// statement can do both.
func replaceRows(i int, table string, columns []string, param int) []string {
	name := pgx.Identifier{table}.Sanitize()
	quote := func(cs []string, prefix string) string {
		out := make([]string, len(cs))
		for k, c := range cs {
			out[k] = prefix + pgx.Identifier{c}.Sanitize()
		}
		return strings.Join(out, ", ")
	}
	key := primaryKey(table)
	var rest []string
	for _, c := range columns {
		if !slices.Contains(key, c) {
			rest = append(rest, c)
		}
	}
	newRows := fmt.Sprintf("n%d AS (SELECT %s FROM jsonb_populate_recordset(NULL::%s, $%d::jsonb))", i, quote(columns, ""), name, param)
	del := fmt.Sprintf("d%d AS (DELETE FROM %s t WHERE t.customer_id = ANY($1::uuid[]) AND (%s) NOT IN (SELECT %s FROM n%d))",
		i, name, quote(key, "t."), quote(key, ""), i)
	upsert := fmt.Sprintf("u%d AS (INSERT INTO %s (%s) SELECT %s FROM n%d ON CONFLICT (%s) DO ", i, name, quote(columns, ""), quote(columns, ""), i, quote(key, ""))
	if len(rest) == 0 {
		upsert += "NOTHING)"
	} else {
		sets := make([]string, len(rest))
		for k, c := range rest {
			q := pgx.Identifier{c}.Sanitize()
			sets[k] = q + " = excluded." + q
		}
		upsert += fmt.Sprintf("UPDATE SET %s WHERE (%s) IS DISTINCT FROM (%s))", strings.Join(sets, ", "), quote(rest, "t."), quote(rest, "excluded."))
		upsert = strings.Replace(upsert, "INSERT INTO "+name+" (", "INSERT INTO "+name+" AS t (", 1)
	}
	return []string{newRows, del, upsert}
}

func isTeamEvent(d decoded) bool { return isTeamType(d.env.Type) }

// jsonColumns hold JSON documents the emitters hand over as text.
var jsonColumns = []string{"assignees"}

// rowsJSON encodes emitted rows as a JSON array of objects keyed by column,
// for jsonb_populate_recordset.
func rowsJSON(columns []string, rows [][]any) ([]byte, error) {
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		o := make(map[string]any, len(columns))
		for j, c := range columns {
			switch v := r[j].(type) {
			case [16]byte:
				o[c] = uuid.UUID(v).String()
			case time.Time:
				o[c] = v.UTC().Format(time.RFC3339Nano)
			case *time.Time:
				if v == nil {
					o[c] = nil
				} else {
					o[c] = v.UTC().Format(time.RFC3339Nano)
				}
			case string:
				if slices.Contains(jsonColumns, c) {
					o[c] = json.RawMessage(v)
				} else {
					o[c] = v
				}
			default:
				o[c] = v
			}
		}
		out[i] = o
	}
	return json.Marshal(out)
}

func (myClients) applyBatch(ctx context.Context, tx queryer, batch []*envelope, g gate) error {
	return applyFoldBatch(ctx, tx, myClients{}, batch, g)
}

func (customerList) applyBatch(ctx context.Context, tx queryer, batch []*envelope, g gate) error {
	return applyFoldBatch(ctx, tx, customerList{}, batch, g)
}

func (assignmentIntervals) applyBatch(ctx context.Context, tx queryer, batch []*envelope, g gate) error {
	return applyFoldBatch(ctx, tx, assignmentIntervals{}, batch, g)
}

// The audit log and the notifications insert a batch's rows in one
// statement over the batch's positions; ON CONFLICT DO NOTHING (their rows
// are keyed by position) makes applying a batch again harmless, and the gate
// moves the checkpoint to the batch's last event with them.
var (
	qAuditApplyBatch         = gated(1, qAuditSelect+`WHERE e.position = ANY($1::bigint[]) AND EXISTS (SELECT 1 FROM cp) ON CONFLICT DO NOTHING`)
	qNotificationsApplyBatch = gated(1, qNotificationsSelect+`AND e.position = ANY($1::bigint[]) AND EXISTS (SELECT 1 FROM cp) ON CONFLICT DO NOTHING`)
)

func positions(batch []*envelope) []int64 {
	out := make([]int64, len(batch))
	for i, e := range batch {
		out[i] = e.Position
	}
	return out
}

func (auditLog) applyBatch(ctx context.Context, tx queryer, batch []*envelope, g gate) error {
	if err := qAuditApplyBatch.exec(ctx, tx, g, positions(batch)); err != nil {
		return fmt.Errorf("write audit_log: %w", err)
	}
	return nil
}

func (notifications) applyBatch(ctx context.Context, tx queryer, batch []*envelope, g gate) error {
	if !slices.ContainsFunc(batch, func(e *envelope) bool { return isTeamType(e.Type) }) {
		return nil
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
