package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
)

// ClientAsOf is one of a user's customers as it stood at a moment.
type ClientAsOf struct {
	CustomerID string    `json:"customer_id"`
	Lead       bool      `json:"lead"`
	AssignedAt time.Time `json:"assigned_at"`
}

func assignmentIntervalsProjection() *projection {
	return &projection{
		name: AssignmentIntervals,
		tables: []table{
			{name: "assignment_intervals", key: []string{"customer_id", "from_position", "user_id"},
				columns: []string{"customer_id", "from_position", "user_id", "tenant_id", "lead", "assigned_at", "seq",
					"valid_from", "valid_to", "to_position"}, partial: true},
		},
		fold: &foldDef{
			stretches: func(out foldSink, c *customerState, ss []*stretch) {
				// Parsed and boxed once for all the customer's rows: a
				// rebuild makes over a million.
				id, tenant := any(uid(c.ID)), any(uid(c.TenantID))
				for _, s := range ss {
					out.add("assignment_intervals", id, s.FromPos, uid(s.UserID), tenant, s.Lead, s.AssignedAt,
						s.Seq, s.From, s.To, s.ToPos)
				}
			},
		},
	}
}

// stretchFold tracks the stretches of a customer's team members through
// the team's changes (the team itself is the customer state's).
type stretchFold struct {
	open map[string]*stretch // by user: the member's current stretch
	// all are the stretches whose rows are still to give, in creation
	// order: every open one and those closed since takeClosed took them,
	// in a fold never written (a rebuild's); those opened or closed since
	// the last write, in a live one (see written).
	all []*stretch
}

func newStretchFold() *stretchFold { return &stretchFold{open: map[string]*stretch{}} }

// takeClosed returns the closed stretches and forgets them (nil when there
// are none): the bulk fold copies them as they close.
func (f *stretchFold) takeClosed() []*stretch {
	var closed []*stretch
	kept := f.all[:0]
	for _, s := range f.all {
		if s.To != nil {
			s.pending = false
			closed = append(closed, s)
		} else {
			kept = append(kept, s)
		}
	}
	clear(f.all[len(kept):])
	f.all = kept
	return closed
}

// written forgets every stretch a live write has given: a closed one never
// changes again, and an open one is given again only once it closes, so a
// batch costs the stretches it changed, not the whole team
// (assignment_intervals is partial).
func (f *stretchFold) written() {
	for _, s := range f.all {
		s.pending = false
	}
	clear(f.all)
	f.all = f.all[:0]
}

// changed moves the fold by a change of the team by the event at (at,
// pos): the members' stretches closed and opened (stretchChanges).
func (f *stretchFold) changed(closed []string, opened []domain.Member, at time.Time, pos int64) {
	for _, id := range closed {
		if s := f.open[id]; s != nil {
			s.To, s.ToPos = &at, &pos
			delete(f.open, id)
			if !s.pending {
				s.pending = true
				f.all = append(f.all, s)
			}
		}
	}
	for _, m := range opened {
		s := &stretch{UserID: m.UserID, Lead: m.Lead, AssignedAt: m.AssignedAt, Seq: m.Seq, From: at, FromPos: pos, pending: true}
		f.open[m.UserID] = s
		f.all = append(f.all, s)
	}
}

const (
	// An event at exactly `at` has happened: [valid_from, valid_to).
	qTeamAsOf = `SELECT a.user_id::text, coalesce(u.name, ''), a.lead, a.assigned_at
FROM assignment_intervals a LEFT JOIN users u ON u.id = a.user_id
WHERE a.tenant_id = $1 AND a.customer_id = $2 AND a.valid_from <= $3 AND (a.valid_to IS NULL OR a.valid_to > $3)`

	qClientsAsOf = `SELECT a.customer_id::text, a.lead, a.assigned_at
FROM assignment_intervals a
WHERE a.tenant_id = $1 AND a.user_id = $2 AND a.valid_from <= $3 AND (a.valid_to IS NULL OR a.valid_to > $3)`
)

// TeamAsOf returns the customer's team exactly as it stood at at (events
// recorded at exactly at count as happened), in team order. An unknown
// customer has an empty team.
func (q *Queries) TeamAsOf(ctx context.Context, tenantID, customerID string, at time.Time) ([]Assignee, error) {
	if !isUUID(customerID) {
		return []Assignee{}, nil
	}
	args := sqlArgs{tenantID, customerID, at}
	sql := qTeamAsOf
	if cond := visibleCond(ctx, &args, "a.customer_id"); cond != "" {
		sql += " AND " + cond
	}
	out, err := queryAll(ctx, q.db(ctx), func(row pgx.CollectableRow) (Assignee, error) {
		var a Assignee
		err := row.Scan(&a.UserID, &a.Name, &a.Lead, &a.AssignedAt)
		a.AssignedAt = a.AssignedAt.UTC()
		return a, err
	}, sql+" ORDER BY a.seq", args...)
	if err != nil {
		return nil, fmt.Errorf("team as of: %w", err)
	}
	return out, nil
}

// ClientsAsOf returns the customers the user served at at, with the user's
// lead flag and assigned_at then, newest assignment first. It is not
// paginated: a user's customers at one moment are a bounded set. Hydrate
// with CustomersByID for the customers' current details.
func (q *Queries) ClientsAsOf(ctx context.Context, tenantID, userID string, at time.Time) ([]ClientAsOf, error) {
	if !isUUID(userID) {
		return []ClientAsOf{}, nil
	}
	args := sqlArgs{tenantID, userID, at}
	sql := qClientsAsOf
	if cond := visibleCond(ctx, &args, "a.customer_id"); cond != "" {
		sql += " AND " + cond
	}
	out, err := queryAll(ctx, q.db(ctx), func(row pgx.CollectableRow) (ClientAsOf, error) {
		var c ClientAsOf
		err := row.Scan(&c.CustomerID, &c.Lead, &c.AssignedAt)
		c.AssignedAt = c.AssignedAt.UTC()
		return c, err
	}, sql+" ORDER BY a.assigned_at DESC, a.customer_id DESC", args...)
	if err != nil {
		return nil, fmt.Errorf("clients as of: %w", err)
	}
	return out, nil
}
