package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// MyClient is one of a user's customers: the customer as the list shows it,
// plus this user's place on its team.
type MyClient struct {
	CustomerItem
	Lead       bool      `json:"lead"`
	AssignedAt time.Time `json:"assigned_at"`
}

type myClients struct{}

func (myClients) name() string     { return MyClients }
func (myClients) tables() []string { return []string{"my_clients", "my_clients_streams"} }

const (
	// The applied stream version and the team, in one read: one row with
	// NULL member columns when the team is empty.
	qMyClientsLoad = `SELECT h.version, m.user_id::text, m.lead, m.assigned_at, m.seq
FROM (SELECT coalesce((SELECT version FROM my_clients_streams WHERE customer_id = $1), 0) AS version) h
LEFT JOIN my_clients m ON m.customer_id = $1
ORDER BY m.seq`
)

// One statement: members who left are deleted, the others upserted, and
// the applied stream version recorded, with the checkpoint (see gate).
var qMyClientsWrite = gated(7, `WITH gone AS (
    DELETE FROM my_clients WHERE customer_id = $1 AND user_id <> ALL($3::uuid[]) AND EXISTS (SELECT 1 FROM cp)
), kept AS (
    INSERT INTO my_clients (customer_id, user_id, tenant_id, lead, assigned_at, seq, customer_created_at)
    SELECT $1, t.user_id, $2, t.lead, t.assigned_at, t.seq,
           (SELECT e.recorded_at FROM events e WHERE e.stream_id = $1 AND e.stream_version = 1)
    FROM unnest($3::uuid[], $4::bool[], $5::timestamptz[], $6::bigint[]) AS t(user_id, lead, assigned_at, seq)
    WHERE EXISTS (SELECT 1 FROM cp)
    ON CONFLICT (customer_id, user_id) DO UPDATE
    SET lead = excluded.lead, assigned_at = excluded.assigned_at, seq = excluded.seq
    WHERE (my_clients.lead, my_clients.assigned_at, my_clients.seq)
          IS DISTINCT FROM (excluded.lead, excluded.assigned_at, excluded.seq)
)
INSERT INTO my_clients_streams (customer_id, version) SELECT $1::uuid, $7::bigint WHERE EXISTS (SELECT 1 FROM cp)
ON CONFLICT (customer_id) DO UPDATE SET version = excluded.version`)

func (myClients) apply(ctx context.Context, tx queryer, ev *envelope, g gate) error {
	if !isCustomerEvent(ev.Type) {
		return nil
	}
	rows, err := tx.QueryContext(ctx, qMyClientsLoad, ev.StreamID)
	if err != nil {
		return fmt.Errorf("read team: %w", err)
	}
	var (
		head int64
		team []member
	)
	for rows.Next() {
		var (
			user sql.NullString
			lead sql.NullBool
			at   sql.NullTime
			seq  sql.NullInt64
		)
		if err := rows.Scan(&head, &user, &lead, &at, &seq); err != nil {
			rows.Close()
			return fmt.Errorf("read team: %w", err)
		}
		if user.Valid {
			team = append(team, member{UserID: user.String, Lead: lead.Bool, AssignedAt: at.Time, Seq: seq.Int64})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read team: %w", err)
	}
	pending, err := pendingInStreamOrder(ctx, tx, head, ev)
	if err != nil || len(pending) == 0 {
		return err
	}
	for _, d := range pending {
		team = applyTeam(team, d.event, d.env.RecordedAt, d.env.Position)
	}
	users, leads, ats, seqs := make([]string, 0, len(team)), make([]bool, 0, len(team)),
		make([]time.Time, 0, len(team)), make([]int64, 0, len(team))
	for _, m := range team {
		users, leads, ats, seqs = append(users, m.UserID), append(leads, m.Lead), append(ats, m.AssignedAt), append(seqs, m.Seq)
	}
	version := pending[len(pending)-1].env.StreamVersion
	if err := qMyClientsWrite.exec(ctx, tx, g, ev.StreamID, ev.TenantID, users, leads, ats, seqs, version); err != nil {
		return fmt.Errorf("write my_clients: %w", err)
	}
	return nil
}

func (myClients) copyColumns() map[string][]string {
	return map[string][]string{
		"my_clients":         {"customer_id", "user_id", "tenant_id", "lead", "assigned_at", "seq", "customer_created_at"},
		"my_clients_streams": {"customer_id", "version"},
	}
}

func (myClients) emit(sink *copySink, c *customerState) error {
	for _, m := range c.Team {
		sink.add("my_clients", uid(c.ID), uid(m.UserID), uid(c.TenantID), m.Lead, m.AssignedAt, m.Seq, c.CreatedAt)
	}
	sink.add("my_clients_streams", uid(c.ID), c.Version)
	return nil
}

type myClientsCursor struct {
	AssignedAt time.Time `json:"t"`
	ID         string    `json:"id"`
}

const qMyClientsPage = `SELECT ` + customerItemColumns + `, m.lead, m.assigned_at
FROM my_clients m JOIN customer_list c ON c.customer_id = m.customer_id
WHERE `

// MyClients returns one page of the user's customers, newest assignment
// first (assigned_at, then customer id, both descending); q searches them
// like the customer list. It reads my_clients and customer_list, so a
// read-your-writes wait should name both.
func (q *Queries) MyClients(ctx context.Context, tenantID, userID, search string, limit int, cursor string) (Page[MyClient], error) {
	limit = clampLimit(limit)
	page := Page[MyClient]{Items: []MyClient{}}
	if !isUUID(userID) {
		return page, nil
	}
	var after *myClientsCursor
	if cursor != "" {
		after = new(myClientsCursor)
		if err := decodeCursor("my_clients", cursor, after); err != nil {
			return Page[MyClient]{}, err
		}
	}
	var args sqlArgs
	conds := []string{"m.tenant_id = " + args.add(tenantID), "m.user_id = " + args.add(userID), "c.tenant_id = m.tenant_id"}
	if search != "" {
		conds = append(conds, "c.search LIKE "+args.add(likePattern(search)))
	}
	if after != nil {
		conds = append(conds, "(m.assigned_at, m.customer_id) < ("+args.add(after.AssignedAt)+", "+args.add(after.ID)+"::uuid)")
	}
	sql := qMyClientsPage + strings.Join(conds, " AND ") +
		" ORDER BY m.assigned_at DESC, m.customer_id DESC LIMIT " + args.add(limit+1)
	rows, err := q.pool.Query(ctx, sql, args...)
	if err != nil {
		return Page[MyClient]{}, fmt.Errorf("my clients: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var mc MyClient
		it, err := scanCustomerItem(rows, &mc.Lead, &mc.AssignedAt)
		if err != nil {
			return Page[MyClient]{}, fmt.Errorf("my clients: %w", err)
		}
		mc.CustomerItem, mc.AssignedAt = it, mc.AssignedAt.UTC()
		page.Items = append(page.Items, mc)
	}
	if err := rows.Err(); err != nil {
		return Page[MyClient]{}, fmt.Errorf("my clients: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		last := page.Items[limit-1]
		page.NextCursor = encodeCursor("my_clients", myClientsCursor{AssignedAt: last.AssignedAt, ID: last.ID})
	}
	return page, nil
}
