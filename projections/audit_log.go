package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/keyring"
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
	// LeafIndex is the event's leaf in the tenant's ledger log (absent
	// until the ledger_tree read model has applied the event).
	LeafIndex *int64 `json:"leaf_index,omitempty"`
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
			columns: []string{"position", "tenant_id", "type", "at", "actor_user_id", "customer_id", "user_ids"}}},
		// customer_id is the stream of a customer event (every event naming
		// a customer is in its stream: cheaper than reading it from data).
		// user_ids is domain.UserIDsOf: user_id, with_user_id,
		// previous_user_id, transfer_to. The rest of an entry is read from
		// the event (qAuditPage): only what the filters need is copied.
		derive: `INSERT INTO audit_log (position, tenant_id, type, at, actor_user_id, customer_id, user_ids)
SELECT e.position, e.tenant_id, e.type, e.recorded_at, coalesce(e.metadata->'actor'->>'user_id', ''),
       CASE WHEN e.type IN ('` + strings.Join(customerEventTypes, "', '") + `') THEN e.stream_id END,
       array_remove(ARRAY[nullif(e.data->>'user_id', ''), nullif(e.data->>'with_user_id', ''),
                          nullif(e.data->>'previous_user_id', ''), nullif(e.data->>'transfer_to', '')], NULL)::uuid[]
FROM %s e`,
	}
}

// qAuditPage reads the data from the event itself, opened when read: a
// sealed event with its customer's wrapped key beside it (NULL once erased),
// and whether the customer was erased (the key row's tombstone).
const qAuditPage = `SELECT a.position, e.stream_id::text, e.stream_version, a.type, a.at, a.actor_user_id,
       coalesce(e.metadata->'actor'->>'name', ''), coalesce(e.metadata->>'correlation_id', ''),
       coalesce(a.customer_id::text, ''), a.user_ids::text[], e.data, e.schema_version, ` + keyring.WrappedKeySQL + `,
       EXISTS (SELECT FROM customer_keys k WHERE k.customer_id = a.customer_id AND k.erased_at IS NOT NULL),
       (SELECT l.leaf_index FROM ledger_leaves l WHERE l.position = a.position)
FROM audit_log a CROSS JOIN LATERAL ledger_event_at(a.position) e WHERE `

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
	conds := []string{"a.tenant_id = " + args.add(tenantID), "a.position > " + args.add(after)}
	if !f.From.IsZero() {
		conds = append(conds, "a.at >= "+args.add(f.From))
	}
	if !f.To.IsZero() {
		conds = append(conds, "a.at <= "+args.add(f.To))
	}
	if f.Actor != "" {
		conds = append(conds, "a.actor_user_id = "+args.add(f.Actor))
	}
	page := Page[AuditEntry]{Items: []AuditEntry{}}
	if (f.CustomerID != "" && !isUUID(f.CustomerID)) || (f.UserID != "" && !isUUID(f.UserID)) {
		return page, nil
	}
	if f.CustomerID != "" {
		// The customer's stream (migration 0021): a customer's events are
		// the ones naming it. A user's or group's stream is no customer's
		// (found by hostile testing: their IDs listed their events).
		conds = append(conds, "e.stream_id = "+args.add(f.CustomerID)+"::uuid AND a.customer_id = e.stream_id")
	}
	if f.UserID != "" {
		conds = append(conds, "a.user_ids @> ARRAY["+args.add(f.UserID)+"::uuid]")
	}
	if f.Type != "" {
		conds = append(conds, "a.type = "+args.add(f.Type))
	}
	if cond := visibleCond(ctx, &args, "a.customer_id"); cond != "" {
		conds = append(conds, "(a.customer_id IS NULL OR "+cond+")")
	}
	sql := qAuditPage + strings.Join(conds, " AND ") + " ORDER BY a.position LIMIT " + args.add(limit+1)
	items, err := queryAll(ctx, q.db(ctx), func(row pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		var data, wrapped []byte
		var schema int32
		if err := row.Scan(&e.Position, &e.StreamID, &e.Version, &e.Type, &e.At, &e.Actor.UserID, &e.Actor.Name,
			&e.CorrelationID, &e.CustomerID, &e.UserIDs, &data, &schema, &wrapped, &e.Erased, &e.LeafIndex); err != nil {
			return e, err
		}
		_, opened, _, err := q.keys.Open(e.Type, int(schema), data, wrapped)
		e.At, e.Data = e.At.UTC(), opened
		return e, err
	}, sql, args...)
	if err != nil {
		return Page[AuditEntry]{}, fmt.Errorf("audit log: %w", err)
	}
	return pageOf(items, limit, "audit", func(last AuditEntry) any { return last.Position }), nil
}

// EachAudit calls fn for every entry matching f, oldest first, page by page
// (constant memory, no statement held open while fn writes). It stops at
// fn's first error and returns it.
func (q *Queries) EachAudit(ctx context.Context, tenantID string, f AuditFilter, fn func(AuditEntry) error) error {
	return eachItem(func(cursor string) (Page[AuditEntry], error) {
		return q.Audit(ctx, tenantID, f, eachPageSize, cursor)
	}, fn)
}
