package projections

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ClientAsOf is one of a user's customers as it stood at a moment.
type ClientAsOf struct {
	CustomerID string    `json:"customer_id"`
	Lead       bool      `json:"lead"`
	AssignedAt time.Time `json:"assigned_at"`
}

type assignmentIntervals struct{}

func (assignmentIntervals) name() string { return AssignmentIntervals }
func (assignmentIntervals) tables() []string {
	return []string{"assignment_intervals", "assignment_intervals_streams"}
}

const (
	// The applied stream version and the open stretches, in one read: one
	// row with NULL stretch columns when none is open.
	qIntervalsLoad = `SELECT h.version, a.user_id::text, a.lead, a.assigned_at, a.seq, a.valid_from, a.from_position
FROM (SELECT coalesce((SELECT version FROM assignment_intervals_streams WHERE customer_id = $1), 0) AS version) h
LEFT JOIN assignment_intervals a ON a.customer_id = $1 AND a.valid_to IS NULL
ORDER BY a.seq`
)

// One statement: stretches that ended are closed, new ones inserted
// (possibly already closed, when a gap fill applied several events), and
// the applied stream version recorded, with the checkpoint (see gate).
var qIntervalsWrite = gated(15, `WITH closed AS (
    UPDATE assignment_intervals a SET valid_to = t.valid_to, to_position = t.to_position
    FROM unnest($2::uuid[], $3::bigint[], $4::timestamptz[], $5::bigint[]) AS t(user_id, from_position, valid_to, to_position)
    WHERE a.customer_id = $1 AND a.user_id = t.user_id AND a.from_position = t.from_position
      AND EXISTS (SELECT 1 FROM cp)
), opened AS (
    INSERT INTO assignment_intervals (customer_id, from_position, user_id, tenant_id, lead, assigned_at, seq,
        valid_from, valid_to, to_position)
    SELECT $1, t.from_position, t.user_id, $6, t.lead, t.assigned_at, t.seq, t.valid_from, t.valid_to, t.to_position
    FROM unnest($7::bigint[], $8::uuid[], $9::bool[], $10::timestamptz[], $11::bigint[], $12::timestamptz[],
                $13::timestamptz[], $14::bigint[])
        AS t(from_position, user_id, lead, assigned_at, seq, valid_from, valid_to, to_position)
    WHERE EXISTS (SELECT 1 FROM cp)
)
INSERT INTO assignment_intervals_streams (customer_id, version) SELECT $1::uuid, $15::bigint WHERE EXISTS (SELECT 1 FROM cp)
ON CONFLICT (customer_id) DO UPDATE SET version = excluded.version`)

// stretchFold tracks a customer's team and its stretches through events.
type stretchFold struct {
	team []member
	open map[string]*stretch // by user: the member's current stretch
	all  []*stretch          // in creation order, stored ones first
}

func newStretchFold(open []*stretch) *stretchFold {
	f := &stretchFold{open: map[string]*stretch{}}
	for _, s := range open {
		f.team = append(f.team, member{UserID: s.UserID, Lead: s.Lead, AssignedAt: s.AssignedAt, Seq: s.Seq})
		f.open[s.UserID] = s
		f.all = append(f.all, s)
	}
	return f
}

// drain hands closed stretches (all, with open ones too, when all is set)
// to fn and forgets them; the bulk fold copies them as they close.
func (f *stretchFold) drain(fn func(*stretch), all bool) {
	kept := f.all[:0]
	for _, s := range f.all {
		if s.To != nil || all {
			fn(s)
		} else {
			kept = append(kept, s)
		}
	}
	clear(f.all[len(kept):])
	f.all = kept
}

// apply moves the fold by one event of the customer's stream.
func (f *stretchFold) apply(c *customerState, d decoded) {
	before := f.team
	f.team = applyTeam(f.team, d.event, d.env.RecordedAt, d.env.Position)
	closed, opened := stretchChanges(before, f.team)
	at, pos := d.env.RecordedAt, d.env.Position
	for _, id := range closed {
		if s := f.open[id]; s != nil {
			s.To, s.ToPos = &at, &pos
			delete(f.open, id)
		}
	}
	for _, m := range opened {
		s := &stretch{CustomerID: c.ID, TenantID: c.TenantID, UserID: m.UserID, Lead: m.Lead,
			AssignedAt: m.AssignedAt, Seq: m.Seq, From: at, FromPos: pos}
		f.open[m.UserID] = s
		f.all = append(f.all, s)
	}
}

func (assignmentIntervals) apply(ctx context.Context, tx queryer, ev *envelope, g gate) error {
	if !isCustomerEvent(ev.Type) {
		return nil
	}
	rows, err := tx.QueryContext(ctx, qIntervalsLoad, ev.StreamID)
	if err != nil {
		return fmt.Errorf("read open intervals: %w", err)
	}
	var (
		head int64
		open []*stretch
	)
	for rows.Next() {
		var (
			user        sql.NullString
			lead        sql.NullBool
			assigned, f sql.NullTime
			seq, from   sql.NullInt64
		)
		if err := rows.Scan(&head, &user, &lead, &assigned, &seq, &f, &from); err != nil {
			rows.Close()
			return fmt.Errorf("read open intervals: %w", err)
		}
		if user.Valid {
			open = append(open, &stretch{CustomerID: ev.StreamID, TenantID: ev.TenantID, stored: true,
				UserID: user.String, Lead: lead.Bool, AssignedAt: assigned.Time, Seq: seq.Int64, From: f.Time, FromPos: from.Int64})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read open intervals: %w", err)
	}
	pending, err := pendingInStreamOrder(ctx, tx, head, ev)
	if err != nil || len(pending) == 0 {
		return err
	}
	f := newStretchFold(open)
	c := &customerState{ID: ev.StreamID, TenantID: ev.TenantID}
	for _, d := range pending {
		f.apply(c, d)
	}
	var (
		cUsers         = []string{}
		cFrom, cToPos  = []int64{}, []int64{}
		cTo            = []time.Time{}
		oFrom, oSeq    = []int64{}, []int64{}
		oUsers         = []string{}
		oLead          = []bool{}
		oAssigned, oVF = []time.Time{}, []time.Time{}
		oTo            = []*time.Time{}
		oToPos         = []*int64{}
	)
	for _, s := range f.all {
		switch {
		case s.stored && s.To != nil:
			cUsers, cFrom, cTo, cToPos = append(cUsers, s.UserID), append(cFrom, s.FromPos), append(cTo, *s.To), append(cToPos, *s.ToPos)
		case !s.stored:
			oFrom, oUsers, oLead, oAssigned = append(oFrom, s.FromPos), append(oUsers, s.UserID), append(oLead, s.Lead), append(oAssigned, s.AssignedAt)
			oSeq, oVF, oTo, oToPos = append(oSeq, s.Seq), append(oVF, s.From), append(oTo, s.To), append(oToPos, s.ToPos)
		}
	}
	version := pending[len(pending)-1].env.StreamVersion
	if err := qIntervalsWrite.exec(ctx, tx, g, ev.StreamID, cUsers, cFrom, cTo, cToPos, ev.TenantID,
		oFrom, oUsers, oLead, oAssigned, oSeq, oVF, oTo, oToPos, version); err != nil {
		return fmt.Errorf("write assignment_intervals: %w", err)
	}
	return nil
}

var intervalColumns = []string{"customer_id", "from_position", "user_id", "tenant_id", "lead", "assigned_at", "seq",
	"valid_from", "valid_to", "to_position"}

func (assignmentIntervals) copyColumns() map[string][]string {
	return map[string][]string{
		"assignment_intervals":         intervalColumns,
		"assignment_intervals_streams": {"customer_id", "version"},
	}
}

func (assignmentIntervals) emit(sink *copySink, c *customerState) error {
	sink.add("assignment_intervals_streams", uid(c.ID), c.Version)
	return nil
}

func (assignmentIntervals) emitStretch(sink *copySink, c *customerState, s *stretch) {
	sink.add("assignment_intervals", uid(c.ID), s.FromPos, uid(s.UserID), uid(c.TenantID), s.Lead, s.AssignedAt, s.Seq,
		s.From, s.To, s.ToPos)
}

const (
	// An event at exactly `at` has happened: [valid_from, valid_to).
	qTeamAsOf = `SELECT a.user_id::text, coalesce(u.name, ''), a.lead, a.assigned_at
FROM assignment_intervals a LEFT JOIN users u ON u.id = a.user_id
WHERE a.tenant_id = $1 AND a.customer_id = $2 AND a.valid_from <= $3 AND (a.valid_to IS NULL OR a.valid_to > $3)
ORDER BY a.seq`

	qClientsAsOf = `SELECT a.customer_id::text, a.lead, a.assigned_at
FROM assignment_intervals a
WHERE a.tenant_id = $1 AND a.user_id = $2 AND a.valid_from <= $3 AND (a.valid_to IS NULL OR a.valid_to > $3)
ORDER BY a.assigned_at DESC, a.customer_id DESC`
)

// TeamAsOf returns the customer's team exactly as it stood at at (events
// recorded at exactly at count as happened), in team order. An unknown
// customer has an empty team.
func (q *Queries) TeamAsOf(ctx context.Context, tenantID, customerID string, at time.Time) ([]Assignee, error) {
	out := []Assignee{}
	if !isUUID(customerID) {
		return out, nil
	}
	rows, err := q.pool.Query(ctx, qTeamAsOf, tenantID, customerID, at)
	if err != nil {
		return nil, fmt.Errorf("team as of: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a Assignee
		if err := rows.Scan(&a.UserID, &a.Name, &a.Lead, &a.AssignedAt); err != nil {
			return nil, fmt.Errorf("team as of: %w", err)
		}
		a.AssignedAt = a.AssignedAt.UTC()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("team as of: %w", err)
	}
	return out, nil
}

// ClientsAsOf returns the customers the user served at at, with the user's
// lead flag and assigned_at then, newest assignment first. It is not
// paginated: a user's customers at one moment are a bounded set. Hydrate
// with CustomersByID for the customers' current details.
func (q *Queries) ClientsAsOf(ctx context.Context, tenantID, userID string, at time.Time) ([]ClientAsOf, error) {
	out := []ClientAsOf{}
	if !isUUID(userID) {
		return out, nil
	}
	rows, err := q.pool.Query(ctx, qClientsAsOf, tenantID, userID, at)
	if err != nil {
		return nil, fmt.Errorf("clients as of: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c ClientAsOf
		if err := rows.Scan(&c.CustomerID, &c.Lead, &c.AssignedAt); err != nil {
			return nil, fmt.Errorf("clients as of: %w", err)
		}
		c.AssignedAt = c.AssignedAt.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clients as of: %w", err)
	}
	return out, nil
}
