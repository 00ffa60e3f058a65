package projections

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
)

// FollowUps is the follow-ups' table. It belongs to the customer_list read
// model (its checkpoint, its rebuild, its waits), as customer_groups does.
const FollowUps = "follow_ups"

// FollowUp is a follow-up as the API lists it.
type FollowUp struct {
	ID         string    `json:"id"`
	CustomerID string    `json:"customer_id"`
	DueAt      time.Time `json:"due_at"`
	Note       string    `json:"note"`
	To         string    `json:"to"`
	Status     string    `json:"status"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
}

// Follow-up events are the customer's, so its follow-ups are folded with
// it, as a table of the customer_list read model: a row per live
// follow-up, none for a cancelled one, and a tombstone for each of an
// erased customer's (cancelled, no note, not pending): a command naming
// one finds its customer, and answers 410 (or, retried under its key,
// 409 replay_unavailable) rather than 404. Every query but the customer's
// own list, which reads the customer first, wants open or pending rows.
// A read model of their own would add a version row per customer (every
// customer, with follow-ups or not) to every import's catch-up; as a table
// of customer_list a customer without follow-ups costs nothing. pending
// (open, not yet recorded due for its due time) is what the due-time
// scheduler looks for.
//
// The table is partial: a fold gives the rows of the follow-ups changed
// since it was last written, and removes those cancelled.
var followUpsTable = table{name: FollowUps, key: []string{"follow_up_id"},
	columns: []string{"follow_up_id", "tenant_id", "customer_id", "due_at", "note", "send_to", "status", "created_by", "created_at", "pending"},
	partial: true}

// followUpRows are the rows of the customer's follow-ups changed since its
// fold was last written (all of them when it never was): a cancelled one
// is removed, and every one of an erased customer is its tombstone.
func followUpRows(out foldSink, c *customerState) {
	if !c.written {
		givenFollowUps(out, c, maps.Keys(c.FollowUps))
		return
	}
	givenFollowUps(out, c, maps.Keys(c.FollowUpsChanged))
}

// givenFollowUps gives the rows of the customer's follow-ups ids, in no
// particular order (the diff keys them).
func givenFollowUps(out foldSink, c *customerState, ids iter.Seq[string]) {
	id, tenant := any(uid(c.ID)), any(uid(c.TenantID))
	for fid := range ids {
		f, ok := c.FollowUps[fid]
		if !ok {
			continue // opened as erased: it never had a row
		}
		switch {
		case c.Erased:
			out.add(FollowUps, uid(f.ID), tenant, id, f.DueAt, "", f.To, domain.FollowUpStatusCancelled, uid(f.CreatedBy), f.CreatedAt, false)
		case f.Status == domain.FollowUpStatusCancelled:
			out.remove(FollowUps, uid(f.ID), tenant, id, f.DueAt, f.Note, f.To, f.Status, uid(f.CreatedBy), f.CreatedAt, f.Pending())
		default:
			out.add(FollowUps, uid(f.ID), tenant, id, f.DueAt, f.Note, f.To, f.Status, uid(f.CreatedBy), f.CreatedAt, f.Pending())
		}
	}
}

// followUpColumns are a FollowUp's columns of follow_ups f, in scan order.
const followUpColumns = `f.follow_up_id::text, f.customer_id::text, f.due_at, f.note, f.send_to, f.status, f.created_by::text, f.created_at`

func scanFollowUp(row pgx.CollectableRow) (FollowUp, error) {
	var f FollowUp
	err := row.Scan(&f.ID, &f.CustomerID, &f.DueAt, &f.Note, &f.To, &f.Status, &f.CreatedBy, &f.CreatedAt)
	f.DueAt, f.CreatedAt = f.DueAt.UTC(), f.CreatedAt.UTC()
	return f, err
}

// The customer-reading queries of follow-ups, one each (visibility rules
// apply here).
const (
	// $3/$4: the last follow-up of the previous page (NULL: the first),
	// $5 the most rows to read.
	qCustomerFollowUps = `SELECT ` + followUpColumns + ` FROM follow_ups f
WHERE f.tenant_id = $1 AND f.customer_id = $2
  AND ($3::timestamptz IS NULL OR (f.due_at, f.follow_up_id) > ($3, $4::uuid))
ORDER BY f.due_at, f.follow_up_id
LIMIT $5`

	qFollowUpCustomer = `SELECT f.customer_id::text FROM follow_ups f WHERE f.tenant_id = $1 AND f.follow_up_id = $2`

	// The user's open follow-ups through today's team (my_clients): every
	// follow-up to the team, and those to the lead where the user is lead
	// or the team has none (domain.Customer.FollowUpFallsDue reminds them
	// all then).
	// $3/$4 bound the due time: [from, to); $5/$6 are the last follow-up
	// of the previous page (NULL: the first), $7 the most rows to read.
	qUserFollowUps = `SELECT ` + followUpColumns + ` FROM my_clients m
JOIN follow_ups f ON f.customer_id = m.customer_id
WHERE m.tenant_id = $1 AND m.user_id = $2 AND f.status = 'open'
  AND (f.send_to = 'team' OR m.lead OR NOT EXISTS (SELECT 1 FROM my_clients l WHERE l.customer_id = f.customer_id AND l.lead))
  AND ($3::timestamptz IS NULL OR f.due_at >= $3) AND ($4::timestamptz IS NULL OR f.due_at < $4)
  AND ($5::timestamptz IS NULL OR (f.due_at, f.follow_up_id) > ($5, $6::uuid))
ORDER BY f.due_at, f.follow_up_id
LIMIT $7`
)

// followUpCursor is where a page of follow-ups ended: they are listed by
// due time, then ID.
type followUpCursor struct {
	DueAt time.Time `json:"t"`
	ID    string    `json:"id"`
}

func (c *followUpCursor) valid() bool { return !c.DueAt.IsZero() && isUUID(c.ID) }

// followUpsAfter decodes a follow-up list's cursor into the query's two
// arguments (both nil for the first page).
func followUpsAfter(cursor string) (dueAt *time.Time, id *string, err error) {
	if cursor == "" {
		return nil, nil, nil
	}
	var c followUpCursor
	if err := decodeCursor("follow_ups", cursor, &c); err != nil {
		return nil, nil, err
	}
	return &c.DueAt, &c.ID, nil
}

func followUpsPage(items []FollowUp, limit int) Page[FollowUp] {
	return pageOf(items, limit, "follow_ups", func(last FollowUp) any { return followUpCursor{DueAt: last.DueAt, ID: last.ID} })
}

// CustomerFollowUps returns one page of the customer's live follow-ups
// (open and done), by due time.
func (q *Queries) CustomerFollowUps(ctx context.Context, tenantID, customerID string, limit int, cursor string) (Page[FollowUp], error) {
	limit = clampLimit(limit)
	dueAt, id, err := followUpsAfter(cursor)
	if err != nil || !isUUID(customerID) {
		return Page[FollowUp]{Items: []FollowUp{}}, err
	}
	out, err := queryAll(ctx, q.db(ctx), scanFollowUp, qCustomerFollowUps, tenantID, customerID, dueAt, id, limit+1)
	if err != nil {
		return Page[FollowUp]{}, fmt.Errorf("list customer follow-ups: %w", err)
	}
	return followUpsPage(out, limit), nil
}

// FollowUpCustomer returns the customer whose live follow-up id is, or
// ErrNotFound.
func (q *Queries) FollowUpCustomer(ctx context.Context, tenantID, id string) (string, error) {
	if !isUUID(id) {
		return "", ErrNotFound
	}
	// A follow-up of a customer the viewer may not see is an unknown one.
	args := sqlArgs{tenantID, id}
	sql := qFollowUpCustomer
	if cond := visibleCond(ctx, &args, "f.customer_id"); cond != "" {
		sql += " AND " + cond
	}
	var customer string
	err := q.db(ctx).QueryRow(ctx, sql, args...).Scan(&customer)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("find follow-up: %w", err)
	}
	return customer, nil
}

// Due selections of a user's follow-ups.
const (
	DueOverdue  = "overdue"
	DueToday    = "today"
	DueUpcoming = "upcoming"
)

// UserFollowUps returns one page of the user's open follow-ups by today's
// team (every one to a team the user is on, those to the lead where the
// user is lead or the team has none), by due time. due selects: overdue (due before now),
// today (from now to the end of the UTC day), upcoming (after today); ""
// all.
func (q *Queries) UserFollowUps(ctx context.Context, tenantID, userID, due string, now time.Time, limit int, cursor string) (Page[FollowUp], error) {
	limit = clampLimit(limit)
	after, afterID, err := followUpsAfter(cursor)
	if err != nil || !isUUID(userID) {
		return Page[FollowUp]{Items: []FollowUp{}}, err
	}
	now = now.UTC()
	endOfDay := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	var from, to *time.Time
	switch due {
	case DueOverdue:
		to = &now
	case DueToday:
		from, to = &now, &endOfDay
	case DueUpcoming:
		from = &endOfDay
	}
	out, err := queryAll(ctx, q.db(ctx), scanFollowUp, qUserFollowUps, tenantID, userID, from, to, after, afterID, limit+1)
	if err != nil {
		return Page[FollowUp]{}, fmt.Errorf("list user follow-ups: %w", err)
	}
	return followUpsPage(out, limit), nil
}

const qDueByCustomer = `SELECT f.customer_id::text, count(*) FROM follow_ups f
WHERE f.tenant_id = $1 AND f.customer_id = ANY($2::uuid[]) AND f.status = 'open' AND f.due_at <= $3
GROUP BY f.customer_id`

// DueFollowUpsByCustomer counts the open follow-ups due at or before now
// of each of customerIDs (the customer table's "Follow-ups due" column);
// a customer with none is absent.
func (q *Queries) DueFollowUpsByCustomer(ctx context.Context, tenantID string, customerIDs []string, now time.Time) (map[string]int, error) {
	out := map[string]int{}
	ids := make([]string, 0, len(customerIDs))
	for _, id := range customerIDs {
		if isUUID(id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.db(ctx).Query(ctx, qDueByCustomer, tenantID, ids, now.UTC())
	if err != nil {
		return nil, fmt.Errorf("count due follow-ups: %w", err)
	}
	var id string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error {
		out[id] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("count due follow-ups: %w", err)
	}
	return out, nil
}

// CountOverdueFollowUps counts the user's overdue follow-ups (those
// UserFollowUps lists with due=overdue), up to limit: a header's badge.
func (q *Queries) CountOverdueFollowUps(ctx context.Context, tenantID, userID string, now time.Time, limit int) (int, error) {
	if !isUUID(userID) {
		return 0, nil
	}
	now = now.UTC()
	var n int
	err := q.db(ctx).QueryRow(ctx, `SELECT count(*) FROM (`+qUserFollowUps+`) u`, tenantID, userID, nil, &now, nil, nil, limit).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count overdue follow-ups: %w", err)
	}
	return n, nil
}

// DueFollowUp is a follow-up to fall due: what the scheduler hands the
// command that records it.
type DueFollowUp struct {
	TenantID, CustomerID, ID string
	DueAt                    time.Time
}

const (
	qDueFollowUps = `SELECT f.tenant_id::text, f.customer_id::text, f.follow_up_id::text, f.due_at
FROM follow_ups f WHERE f.pending AND f.due_at <= $1 ORDER BY f.due_at, f.follow_up_id LIMIT $2`
	qNextDue = `SELECT min(f.due_at) FROM follow_ups f WHERE f.pending`
)

// DueFollowUps returns up to limit follow-ups of every tenant still to fall
// due whose due time is at or before now, earliest first.
func (q *Queries) DueFollowUps(ctx context.Context, now time.Time, limit int) ([]DueFollowUp, error) {
	out, err := queryAll(ctx, q.pool, func(row pgx.CollectableRow) (DueFollowUp, error) {
		var d DueFollowUp
		err := row.Scan(&d.TenantID, &d.CustomerID, &d.ID, &d.DueAt)
		return d, err
	}, qDueFollowUps, now, limit)
	if err != nil {
		return nil, fmt.Errorf("due follow-ups: %w", err)
	}
	return out, nil
}

// NextDue returns the earliest due time of the follow-ups still to fall
// due, and false when there is none.
func (q *Queries) NextDue(ctx context.Context) (time.Time, bool, error) {
	var t *time.Time
	if err := q.pool.QueryRow(ctx, qNextDue).Scan(&t); err != nil {
		return time.Time{}, false, fmt.Errorf("next due follow-up: %w", err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return *t, true, nil
}
