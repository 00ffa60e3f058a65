package projections

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/assignment-ledger/ledger/domain"
)

// Viewer is who reads the read models: the API's caller. Every read of
// Queries under a context that carries a Viewer runs as the database role
// ledger_reader with the viewer's tenant, user and role set for that read
// only, and the read models' row-level security (migration
// visibility: docs/ARCHITECTURE.md, "Visibility") shows it only the rows
// of its tenant, and to a member under members_see "assigned" only those
// of the customers the member serves. The queries filter the same way
// themselves; the policies are there for the query that forgets to.
type Viewer struct {
	TenantID string
	UserID   string
	// Role is "admin", "auditor" or "member": admins and auditors see
	// every customer of the tenant.
	Role string
}

// SeesAll reports whether the viewer sees every customer of its tenant
// whatever the policy: admins and auditors.
func (v Viewer) SeesAll() bool { return v.Role == "admin" || v.Role == "auditor" }

type viewerKey struct{}

// WithViewer returns ctx carrying v: the reads of Queries under it are the
// viewer's. The API sets it once per request, after authentication.
func WithViewer(ctx context.Context, v Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

// ViewerOf returns the viewer ctx carries.
func ViewerOf(ctx context.Context) (Viewer, bool) {
	v, ok := ctx.Value(viewerKey{}).(Viewer)
	return v, ok
}

// qSetViewer switches the read's implicit transaction to the reader role
// and sets the viewer. set_config(..., true) lasts until the transaction
// ends: the batch below sends it and the query together, before one Sync,
// so they are one implicit transaction and one round trip, and nothing
// stays set on the pooled connection afterwards.
const qSetViewer = `SELECT set_config('role', 'ledger_reader', true),
       set_config('ledger.viewer_tenant', $1, true),
       set_config('ledger.viewer_user', $2, true),
       set_config('ledger.viewer_role', $3, true)`

// dbReader is what the read side's queries run on.
type dbReader interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// db is the one handle every read of Queries goes through: as the viewer
// when ctx carries one, else as the service itself (commands, the CLI,
// benchmarks: callers that read for the system, not for a user).
func (q *Queries) db(ctx context.Context) dbReader {
	v, ok := ViewerOf(ctx)
	if !ok {
		return q.pool
	}
	return viewerReader{q: q, v: v}
}

type viewerReader struct {
	q *Queries
	v Viewer
}

func (r viewerReader) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	b := &pgx.Batch{}
	b.Queue(qSetViewer, r.v.TenantID, r.v.UserID, r.v.Role)
	b.Queue(sql, args...)
	br := r.q.pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (r viewerReader) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := r.Query(ctx, sql, args...)
	return batchRow{rows: rows, err: err}
}

// batchRows releases the batch (and its connection) when the rows close.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	r.err = r.br.Close()
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

func (r *batchRows) CommandTag() pgconn.CommandTag { return r.Rows.CommandTag() }

// batchRow is pgx.Row over batchRows, as pgx's own QueryRow is over Rows.
type batchRow struct {
	rows pgx.Rows
	err  error
}

func (r batchRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		r.rows.Close()
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// SeesTeam reports whether the viewer in ctx may see a customer whose
// current team is team (user IDs), for reads that do not go through the
// read models (a profile or history read from the customer's stream). It
// asks the database only for a member who is not on the team, and then
// the read models' own rule (ledger_viewer_sees_all), so both paths decide
// alike. Without a viewer (the system's reads) it is true.
func (q *Queries) SeesTeam(ctx context.Context, team []string) (bool, error) {
	v, ok := ViewerOf(ctx)
	if !ok || v.SeesAll() || slices.Contains(team, v.UserID) {
		return true, nil
	}
	var all bool
	if err := q.db(ctx).QueryRow(ctx, `SELECT ledger_viewer_sees_all()`).Scan(&all); err != nil {
		return false, fmt.Errorf("viewer's visibility: %w", err)
	}
	return all, nil
}

// ViewerFor is the viewer of an authenticated caller.
func ViewerFor(tenantID string, a domain.Actor) Viewer {
	return Viewer{TenantID: tenantID, UserID: a.UserID, Role: string(a.Role)}
}
