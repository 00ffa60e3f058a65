package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Actor is who caused an event.
type Actor struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
}

// AuditEntry is one event as the audit log shows it.
type AuditEntry struct {
	Position      int64           `json:"position"`
	StreamID      string          `json:"stream_id"`
	Version       int64           `json:"version"`
	Type          string          `json:"type"`
	At            time.Time       `json:"at"`
	Actor         Actor           `json:"actor"`
	CorrelationID string          `json:"correlation_id"`
	CustomerID    string          `json:"customer_id,omitempty"`
	UserIDs       []string        `json:"user_ids"`
	Data          json.RawMessage `json:"data"`
	// Erased marks every event of an erased customer: data then holds
	// only IDs and flags.
	Erased bool `json:"erased,omitempty"`
}

// AuditFilter narrows the audit log. Zero fields do not filter. From and To
// are inclusive.
type AuditFilter struct {
	From, To   time.Time
	Actor      string // actor user ID
	CustomerID string
	UserID     string // any user the event names (user_id, with_user_id, previous_user_id, transfer_to)
	Type       string
}

func auditLogProjection() *projection {
	return &projection{
		name: AuditLog,
		tables: []table{{name: "audit_log", key: []string{"tenant_id", "position"},
			columns: []string{"position", "tenant_id", "stream_id", "stream_version", "type", "schema_version", "at",
				"actor_user_id", "actor_name", "correlation_id", "customer_id", "user_ids", "data"}}},
		// user_ids is domain.UserIDsOf: user_id, with_user_id,
		// previous_user_id, transfer_to.
		derive: `INSERT INTO audit_log (position, tenant_id, stream_id, stream_version, type, schema_version, at,
    actor_user_id, actor_name, correlation_id, customer_id, user_ids, data)
SELECT e.position, e.tenant_id, e.stream_id, e.stream_version, e.type, e.schema_version, e.recorded_at,
       coalesce(e.metadata->'actor'->>'user_id', ''), coalesce(e.metadata->'actor'->>'name', ''),
       coalesce(e.metadata->>'correlation_id', ''), nullif(e.data->>'customer_id', '')::uuid,
       array_remove(ARRAY[nullif(e.data->>'user_id', ''), nullif(e.data->>'with_user_id', ''),
                          nullif(e.data->>'previous_user_id', ''), nullif(e.data->>'transfer_to', '')], NULL)::uuid[],
       e.data
FROM events e WHERE %s`,
	}
}

// qAuditPage reads the log with, for an event of a customer, its key row:
// the wrapped key opens a sealed copy of data (the log stores events' data
// as stored, ciphertext included), erased_at marks an erased customer.
const qAuditPage = `SELECT position, stream_id::text, stream_version, type, at, actor_user_id, actor_name,
       correlation_id, coalesce(customer_id::text, ''), user_ids::text[], data, schema_version, k.wrapped_key, k.erased_at IS NOT NULL
FROM audit_log LEFT JOIN LATERAL (SELECT k.wrapped_key, k.erased_at FROM customer_keys k
    WHERE k.customer_id = audit_log.customer_id) k ON true WHERE `

// Audit returns one page of the tenant's event log, oldest first (by
// position).
func (q *Queries) Audit(ctx context.Context, tenantID string, f AuditFilter, limit int, cursor string) (Page[AuditEntry], error) {
	limit = clampLimit(limit)
	var after int64
	if cursor != "" {
		if err := decodeCursor("audit", cursor, &after); err != nil {
			return Page[AuditEntry]{}, err
		}
	}
	var args sqlArgs
	conds := []string{"tenant_id = " + args.add(tenantID), "position > " + args.add(after)}
	if !f.From.IsZero() {
		conds = append(conds, "at >= "+args.add(f.From))
	}
	if !f.To.IsZero() {
		conds = append(conds, "at <= "+args.add(f.To))
	}
	if f.Actor != "" {
		conds = append(conds, "actor_user_id = "+args.add(f.Actor))
	}
	page := Page[AuditEntry]{Items: []AuditEntry{}}
	if (f.CustomerID != "" && !isUUID(f.CustomerID)) || (f.UserID != "" && !isUUID(f.UserID)) {
		return page, nil
	}
	if f.CustomerID != "" {
		conds = append(conds, "customer_id = "+args.add(f.CustomerID)+"::uuid")
	}
	if f.UserID != "" {
		conds = append(conds, "user_ids @> ARRAY["+args.add(f.UserID)+"::uuid]")
	}
	if f.Type != "" {
		conds = append(conds, "type = "+args.add(f.Type))
	}
	sql := qAuditPage + strings.Join(conds, " AND ") + " ORDER BY position LIMIT " + args.add(limit+1)
	rows, err := q.pool.Query(ctx, sql, args...)
	if err != nil {
		return Page[AuditEntry]{}, fmt.Errorf("audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e AuditEntry
		var data, wrapped []byte
		var schema int32
		if err := rows.Scan(&e.Position, &e.StreamID, &e.Version, &e.Type, &e.At, &e.Actor.UserID, &e.Actor.Name,
			&e.CorrelationID, &e.CustomerID, &e.UserIDs, &data, &schema, &wrapped, &e.Erased); err != nil {
			return Page[AuditEntry]{}, fmt.Errorf("audit log: %w", err)
		}
		if _, data, _, err = q.keys.Open(e.Type, int(schema), data, wrapped); err != nil {
			return Page[AuditEntry]{}, fmt.Errorf("audit log: %w", err)
		}
		e.At, e.Data = e.At.UTC(), data
		page.Items = append(page.Items, e)
	}
	if err := rows.Err(); err != nil {
		return Page[AuditEntry]{}, fmt.Errorf("audit log: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.NextCursor = encodeCursor("audit", page.Items[limit-1].Position)
	}
	return page, nil
}

// EachAudit calls fn for every entry matching f, oldest first, page by page
// (constant memory, no statement held open while fn writes). It stops at
// fn's first error and returns it.
func (q *Queries) EachAudit(ctx context.Context, tenantID string, f AuditFilter, fn func(AuditEntry) error) error {
	cursor := ""
	for {
		page, err := q.Audit(ctx, tenantID, f, eachPageSize, cursor)
		if err != nil {
			return err
		}
		for _, e := range page.Items {
			if err := fn(e); err != nil {
				return err
			}
		}
		if page.NextCursor == "" {
			return nil
		}
		cursor = page.NextCursor
	}
}
