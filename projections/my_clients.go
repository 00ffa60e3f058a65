package projections

import (
	"context"
	"database/sql"
	"errors"
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
	qStreamHead = `SELECT version FROM %s WHERE customer_id = $1`

	qMyClientsTeam = `SELECT user_id::text, lead, assigned_at, seq FROM my_clients WHERE customer_id = $1 ORDER BY seq`

	// One statement: members who left are deleted, the others upserted, and
	// the applied stream version recorded.
	qMyClientsWrite = `WITH gone AS (
    DELETE FROM my_clients WHERE customer_id = $1 AND user_id <> ALL($3::uuid[])
), kept AS (
    INSERT INTO my_clients (customer_id, user_id, tenant_id, lead, assigned_at, seq)
    SELECT $1, t.user_id, $2, t.lead, t.assigned_at, t.seq
    FROM unnest($3::uuid[], $4::bool[], $5::timestamptz[], $6::bigint[]) AS t(user_id, lead, assigned_at, seq)
    ON CONFLICT (customer_id, user_id) DO UPDATE
    SET lead = excluded.lead, assigned_at = excluded.assigned_at, seq = excluded.seq
    WHERE (my_clients.lead, my_clients.assigned_at, my_clients.seq)
          IS DISTINCT FROM (excluded.lead, excluded.assigned_at, excluded.seq)
)
INSERT INTO my_clients_streams (customer_id, version) VALUES ($1, $7)
ON CONFLICT (customer_id) DO UPDATE SET version = excluded.version`
)

// streamHead returns the stream version a customer projection has applied.
func streamHead(ctx context.Context, tx queryer, table, customerID string) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx, fmt.Sprintf(qStreamHead, table), customerID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", table, err)
	}
	return v, nil
}

func (myClients) apply(ctx context.Context, tx queryer, ev *envelope) error {
	if !isCustomerEvent(ev.Type) {
		return nil
	}
	head, err := streamHead(ctx, tx, "my_clients_streams", ev.StreamID)
	if err != nil {
		return err
	}
	pending, err := pendingInStreamOrder(ctx, tx, head, ev)
	if err != nil || len(pending) == 0 {
		return err
	}
	rows, err := tx.QueryContext(ctx, qMyClientsTeam, ev.StreamID)
	if err != nil {
		return fmt.Errorf("read team: %w", err)
	}
	var team []member
	for rows.Next() {
		var m member
		if err := rows.Scan(&m.UserID, &m.Lead, &m.AssignedAt, &m.Seq); err != nil {
			rows.Close()
			return fmt.Errorf("read team: %w", err)
		}
		team = append(team, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read team: %w", err)
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
	if _, err := tx.ExecContext(ctx, qMyClientsWrite, ev.StreamID, ev.TenantID, users, leads, ats, seqs, version); err != nil {
		return fmt.Errorf("write my_clients: %w", err)
	}
	return nil
}

func (myClients) copyColumns() map[string][]string {
	return map[string][]string{
		"my_clients":         {"customer_id", "user_id", "tenant_id", "lead", "assigned_at", "seq"},
		"my_clients_streams": {"customer_id", "version"},
	}
}

func (myClients) emit(sink *copySink, c *customerState) error {
	for _, m := range c.Team {
		sink.add("my_clients", uid(c.ID), uid(m.UserID), uid(c.TenantID), m.Lead, m.AssignedAt, m.Seq)
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
