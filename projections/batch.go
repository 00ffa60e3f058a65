package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
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

const qCustomerStreams = `SELECT position, transaction_id::text, tenant_id::text, stream_id::text, stream_version,
       type, schema_version, data, recorded_at
FROM events WHERE stream_id = ANY($1::uuid[]) ORDER BY stream_id, stream_version`

// refold folds again, from their whole committed streams, the customers
// the batch's customer events belong to.
func refold(ctx context.Context, tx queryer, batch []*envelope) ([]string, []*foldCustomer, error) {
	var ids []string
	for _, e := range batch {
		if isCustomerEvent(e.Type) && !slices.Contains(ids, e.StreamID) {
			ids = append(ids, e.StreamID)
		}
	}
	if len(ids) == 0 {
		return nil, nil, nil
	}
	sort.Strings(ids)
	rows, err := tx.QueryContext(ctx, qCustomerStreams, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("read customer streams: %w", err)
	}
	defer rows.Close()
	byID := map[string]*foldCustomer{}
	var out []*foldCustomer
	for rows.Next() {
		var env envelope
		var txid string
		if err := rows.Scan(&env.Position, &txid, &env.TenantID, &env.StreamID, &env.StreamVersion,
			&env.Type, &env.SchemaVersion, &env.Data, &env.RecordedAt); err != nil {
			return nil, nil, fmt.Errorf("read customer streams: %w", err)
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
			return nil, nil, err
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
		return nil, nil, fmt.Errorf("read customer streams: %w", err)
	}
	return ids, out, nil
}

// applyFoldBatch is applyBatch for a fold projection p.
func applyFoldBatch(ctx context.Context, tx queryer, p foldBulk, batch []*envelope, g gate) error {
	ids, folded, err := refold(ctx, tx, batch)
	if err != nil || len(ids) == 0 {
		return err
	}
	sink, err := newLiveSink(ctx, tx, p.copyColumns(), folded)
	if err != nil {
		return err
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
	for _, t := range tables {
		ct := sink.tables[t]
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+pgx.Identifier{t}.Sanitize()+` WHERE customer_id = ANY($1::uuid[])`, ids); err != nil {
			return fmt.Errorf("replace %s: %w", t, err)
		}
		if len(ct.rows) == 0 {
			continue
		}
		js, err := rowsJSON(ct.columns, ct.rows)
		if err != nil {
			return fmt.Errorf("replace %s: %w", t, err)
		}
		list := ""
		for i, c := range ct.columns {
			if i > 0 {
				list += ", "
			}
			list += pgx.Identifier{c}.Sanitize()
		}
		q := `INSERT INTO ` + pgx.Identifier{t}.Sanitize() + ` (` + list + `) SELECT ` + list +
			` FROM jsonb_populate_recordset(NULL::` + pgx.Identifier{t}.Sanitize() + `, $1::jsonb)`
		if _, err := tx.ExecContext(ctx, q, js); err != nil {
			return fmt.Errorf("replace %s: %w", t, err)
		}
	}
	if g.group != "" {
		if _, err := tx.ExecContext(ctx, qAckOffset, g.group, g.txid, g.pos); err != nil {
			return fmt.Errorf("move checkpoint: %w", err)
		}
	}
	return nil
}

func isTeamEvent(d decoded) bool { return isTeamType(d.env.Type) }

// newLiveSink is a copySink that only collects rows (for tables), with the
// names of the folded teams' users.
func newLiveSink(ctx context.Context, tx queryer, tables map[string][]string, folded []*foldCustomer) (*copySink, error) {
	s := &copySink{tables: map[string]*copyTable{}, names: map[string]string{}}
	for t, cols := range tables {
		s.tables[t] = &copyTable{id: pgx.Identifier{t}, columns: cols}
	}
	var users []string
	for _, fc := range folded {
		for _, m := range fc.state.Team {
			users = append(users, m.UserID)
		}
	}
	s.lookup = func(string) string { return "" }
	if len(users) == 0 {
		return s, nil
	}
	rows, err := tx.QueryContext(ctx, qUserNames, users)
	if err != nil {
		return nil, fmt.Errorf("read user names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("read user names: %w", err)
		}
		s.names[id] = name
	}
	return s, rows.Err()
}

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
