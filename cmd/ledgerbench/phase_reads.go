package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/assignment-ledger/ledger/projections"
)

// The reads phase fills the read models directly with set-based SQL
// (generate_series), much faster than generating and folding
// customers+assignments events, in the shape the projections write them:
// customer_list rows with the assignees JSON column (and the version the
// fold read models have applied), my_clients rows, and the users they name. Assignment k of customer n
// goes to user ((n·K + k)·p) mod users (p a prime coprime with users, K the
// assignments per customer), so a customer never gets one user twice and
// users get even shares spread over the whole list; assigned_at is random
// after the customer's creation. Indexes are dropped for the load and
// recreated from their live definitions, then VACUUM ANALYZE.

func runReads(ctx context.Context, o options, srv *server, rep *report) error {
	// Every query goes through the statement recorder, so that the plans
	// below are of the statements the measured runs sent (explain).
	pool, _, err := srv.createDB(ctx, "reads", 32, statementRecorder{})
	if err != nil {
		return err
	}
	defer pool.Close()
	t0 := time.Now()
	tenant, err := fillReadModel(ctx, pool, o)
	if err != nil {
		return fmt.Errorf("fill read model: %w", err)
	}
	fillTime := time.Since(t0)
	fmt.Fprintf(os.Stderr, "   read model: %d customers, %d users, %d assignments in %s\n", o.customers, o.users, o.assignments, fillTime.Round(time.Millisecond))

	userIDs, err := sample(ctx, pool, `SELECT id::text FROM bench_u`)
	if err != nil {
		return err
	}
	customerIDs, err := sample(ctx, pool, `SELECT id::text FROM bench_c ORDER BY random() LIMIT 20000`)
	if err != nil {
		return err
	}
	q := projections.NewQueries(pool, benchKeyring())
	// The API reads as its caller (projections.Viewer: the reader role, the
	// caller's settings and row-level security, sent with each query): a
	// member under the default members_see "all", the path every member's
	// read takes. The baseline PK lookup stays a plain query.
	viewer := projections.Viewer{TenantID: tenant, UserID: userIDs[0], Role: "member"}
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func() string { return userIDs[rng.IntN(len(userIDs))] }
	var pageSizes struct{ my, list, myN, listN int }
	kinds := []struct {
		name, label string
		run         func(ctx context.Context) error
	}{
		{"My Clients first page", "my_clients_first_page", func(ctx context.Context) error {
			p, err := q.MyClients(projections.WithViewer(ctx, viewer), tenant, pick(), "", 50, "")
			pageSizes.my += len(p.Items)
			pageSizes.myN++
			return err
		}},
		{"customers by assigned user", "customers_by_assigned_user", func(ctx context.Context) error {
			p, err := q.Customers(projections.WithViewer(ctx, viewer), tenant, projections.CustomerFilter{AssignedUser: pick()}, 50, "")
			pageSizes.list += len(p.Items)
			pageSizes.listN++
			return err
		}},
		{"baseline PK lookup", "", func(ctx context.Context) error {
			var one int
			return pool.QueryRow(ctx, `SELECT 1 FROM customer_list WHERE customer_id = $1`, customerIDs[rng.IntN(len(customerIDs))]).Scan(&one)
		}},
	}
	// Warm-up: every kind, unmeasured (connections, prepared statements,
	// plan caches, buffer cache).
	for range min(200, o.readQueries) {
		for _, k := range kinds {
			if err := k.run(ctx); err != nil {
				return fmt.Errorf("%s: %w", k.name, err)
			}
		}
	}
	pageSizes.my, pageSizes.myN, pageSizes.list, pageSizes.listN = 0, 0, 0, 0
	// Measured: interleaved, one client, so the kinds see the same cache.
	// Each run records the statements it sent; those of each kind's first
	// run (a random user) and of its slowest are kept for explain.
	lat := make([]latencies, len(kinds))
	slowestMS := make([]float64, len(kinds))
	firstSent := make([][]statement, len(kinds))
	slowestSent := make([][]statement, len(kinds))
	for n := range o.readQueries {
		for i, k := range kinds {
			rctx, sent := recordStatements(ctx)
			t := time.Now()
			if err := k.run(rctx); err != nil {
				return fmt.Errorf("%s: %w", k.name, err)
			}
			d := ms(time.Since(t))
			lat[i] = append(lat[i], d)
			if n == 0 {
				firstSent[i] = *sent
			}
			if d > slowestMS[i] {
				slowestMS[i], slowestSent[i] = d, *sent
			}
		}
	}
	sums := make([]summary, len(kinds))
	for i := range kinds {
		sums[i] = summarize(lat[i])
	}
	base := sums[2]
	for i, k := range kinds[:2] {
		rep.add(figure{Phase: "reads", Name: k.name + " p50", Value: sums[i].P50, Unit: "ms"})
		rep.add(figure{Phase: "reads", Name: k.name + " p99", Value: sums[i].P99, Unit: "ms"})
		// The target (docs/DESIGN.md) is a ratio to the primary-key
		// lookup's p99 in the same run.
		rep.add(targetAtMost(figure{Phase: "reads", Name: k.name + " p99 ÷ baseline p99", Value: sums[i].P99 / base.P99, Unit: "x"}, 3, "≤ 3"))
	}
	rep.add(figure{Phase: "reads", Name: "baseline PK lookup p50", Value: base.P50, Unit: "ms"})
	rep.add(figure{Phase: "reads", Name: "baseline PK lookup p99", Value: base.P99, Unit: "ms"})

	// Plans of the statements a random user's run and the slowest run sent,
	// as a one-off (custom) plan and as the generic plan a cached prepared
	// statement (pgx's default) may switch to after five executions.
	plans := map[string]string{}
	explained := map[string][]statement{}
	for i, kind := range kinds[:2] {
		for _, run := range []struct {
			label string
			sent  []statement
		}{{"random_user", firstSent[i]}, {fmt.Sprintf("slowest_user_%.1fms", slowestMS[i]), slowestSent[i]}} {
			explained[kind.label+"/"+run.label] = run.sent
			for _, generic := range []bool{false, true} {
				label := kind.label + "/" + run.label + "/custom"
				if generic {
					label = kind.label + "/" + run.label + "/generic"
				}
				plans[label] = explainAll(ctx, pool, run.sent, generic)
			}
		}
	}
	var tableSizes = map[string]string{}
	for _, t := range []string{"customer_list", "my_clients"} {
		var s string
		_ = pool.QueryRow(ctx, `SELECT pg_size_pretty(pg_total_relation_size($1::regclass))`, t).Scan(&s)
		tableSizes[t] = s
	}
	rep.detail("reads", map[string]any{
		"customers": o.customers, "users": o.users, "assignments": o.assignments, "fill_s": fillTime.Seconds(),
		"my_clients": sums[0], "customers_by_assigned_user": sums[1], "baseline_pk_lookup": sums[2],
		"avg_page_items": map[string]float64{
			"my_clients":                 float64(pageSizes.my) / float64(max(1, pageSizes.myN)),
			"customers_by_assigned_user": float64(pageSizes.list) / float64(max(1, pageSizes.listN)),
		},
		"explain_analyze": plans, "explained_statements": explained, "table_sizes": tableSizes,
		"note": "read models filled directly with set-based SQL (no events), in the projections' row shapes; one client, " +
			"random users, queries through projections.Queries (limit 50, first page), kinds interleaved after a warm-up. " +
			"EXPLAIN ANALYZE runs the very statements (SQL and arguments) that the first and the slowest measured run " +
			"of each kind sent, recorded by a pgx tracer.",
	})
	return nil
}

// statement is one query as a pgx connection was asked to run it.
type statement struct {
	SQL  string `json:"sql"`
	Args []any  `json:"args"`
}

type statementsKey struct{}

// recordStatements returns ctx with an empty list of statements to which
// statementRecorder appends every query run under it.
func recordStatements(ctx context.Context) (context.Context, *[]statement) {
	sent := new([]statement)
	return context.WithValue(ctx, statementsKey{}, sent), sent
}

// statementRecorder is a pgx.QueryTracer that records the SQL and
// arguments of each query whose context comes from recordStatements (other
// queries cost it one context lookup). It lets the reads phase EXPLAIN what
// projections.Queries actually sent rather than a copy of its SQL, which
// could drift from it.
type statementRecorder struct{}

func (statementRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if sent, ok := ctx.Value(statementsKey{}).(*[]statement); ok {
		*sent = append(*sent, statement{SQL: d.SQL, Args: d.Args})
	}
	return ctx
}

func (statementRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// The viewer's reads are batches (the viewer's settings, then the query):
// their statements are recorded in order too, and explainAll runs them in
// one transaction, so the plans are the reader's, under its policies.
func (statementRecorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (statementRecorder) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	if sent, ok := ctx.Value(statementsKey{}).(*[]statement); ok {
		*sent = append(*sent, statement{SQL: d.SQL, Args: d.Args})
	}
}

func (statementRecorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// explainAll is the plans of the statements one run sent, one after the
// other, or what went wrong.
func explainAll(ctx context.Context, pool *pgxpool.Pool, sent []statement, generic bool) string {
	if len(sent) == 0 {
		return "explain failed: the run sent no statement"
	}
	var plans []string
	// One transaction: a recorded set_config (the viewer's) holds for the
	// statements after it, as in the batch that sent them.
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, st := range sent {
			plan, err := explain(ctx, tx, st, generic)
			if err != nil {
				return err
			}
			plans = append(plans, plan)
		}
		return nil
	})
	if err != nil {
		plans = append(plans, "explain failed: "+err.Error())
	}
	return strings.Join(plans, "\n\n")
}

// explain runs EXPLAIN ANALYZE of a statement PREPAREd like pgx prepares
// it (parameter types inferred by the server), forcing the custom plan
// (planned for these values) or the generic one (planned for any values,
// which PostgreSQL may pick after five executions). The arguments reach
// EXECUTE as literals quoted by pgx.
func explain(ctx context.Context, outer pgx.Tx, st statement, generic bool) (string, error) {
	var lines []string
	err := pgx.BeginFunc(ctx, outer, func(tx pgx.Tx) error {
		mode := "force_custom_plan"
		if generic {
			mode = "force_generic_plan"
		}
		if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = `+mode); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `PREPARE bench_explain AS `+st.SQL); err != nil {
			return err
		}
		defer tx.Exec(ctx, `DEALLOCATE bench_explain`) //nolint:errcheck
		execute := `EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_explain`
		if len(st.Args) > 0 {
			params := make([]string, len(st.Args))
			for i := range params {
				params[i] = "$" + strconv.Itoa(i+1)
			}
			execute += "(" + strings.Join(params, ", ") + ")"
		}
		rows, err := tx.Query(ctx, execute, append([]any{pgx.QueryExecModeSimpleProtocol}, st.Args...)...)
		if err != nil {
			return err
		}
		lines, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return strings.Join(lines, "\n"), err
}

func sample(ctx context.Context, pool *pgxpool.Pool, sql string) ([]string, error) {
	rows, err := pool.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// fillReadModel builds the data set and returns the tenant id.
func fillReadModel(ctx context.Context, pool *pgxpool.Pool, o options) (string, error) {
	var tenant string
	if err := pool.QueryRow(ctx, `INSERT INTO tenants (id, name) VALUES (gen_random_uuid(), 'Bench') RETURNING id::text`).Scan(&tenant); err != nil {
		return "", err
	}
	perCustomer := (o.assignments + o.customers - 1) / o.customers // K
	prime := int64(7919)
	for _, p := range []int64{7919, 104729, 1299709, 15485863} {
		if int64(o.users)%p != 0 {
			prime = p
			break
		}
	}
	var defs []indexDefs
	for _, t := range []string{"customer_list", "my_clients"} {
		d, err := captureIndexes(ctx, pool, t)
		if err != nil {
			return "", err
		}
		if err := d.drop(ctx, pool); err != nil {
			return "", err
		}
		defs = append(defs, d)
	}
	base := time.Now().UTC().Add(-3 * 365 * 24 * time.Hour).Truncate(time.Second)
	span := 2 * 365 * 24 * time.Hour
	stmts := []struct {
		sql  string
		args []any
	}{
		{`SET work_mem = '512MB'`, nil},
		{`SET maintenance_work_mem = '512MB'`, nil},
		{`CREATE UNLOGGED TABLE bench_u AS SELECT n, gen_random_uuid() AS id FROM generate_series(0, $1::int - 1) n`, []any{o.users}},
		{`CREATE UNLOGGED TABLE bench_c AS SELECT n, gen_random_uuid() AS id,
			$2::timestamptz + (n::float8 / $1::int) * $3::interval AS created_at
		  FROM generate_series(0, $1::int - 1) n`, []any{o.customers, base, fmt.Sprintf("%d seconds", int64(span.Seconds()))}},
		{`INSERT INTO users (id, tenant_id, name, email, role, status, created_at)
		  SELECT id, $1, 'User ' || lpad(n::text, 5, '0'), 'user' || n || '@bench.example', 'member', 'active', $2
		  FROM bench_u`, []any{tenant, base}},
		// assignment j = k·C + n (k < K) of customer n, j < assignments
		{`INSERT INTO my_clients (customer_id, user_id, tenant_id, lead, assigned_at, seq, customer_created_at)
		  SELECT c.id, u.id, $1, k = 0, c.created_at + random() * interval '90 days', c.n * $4::bigint + k, c.created_at
		  FROM bench_c c
		  CROSS JOIN generate_series(0::bigint, $4::bigint - 1) k
		  JOIN bench_u u ON u.n = ((c.n * $4::bigint + k) * $5::bigint) % $3::bigint
		  WHERE k * $2::bigint + c.n < $6::bigint`, []any{tenant, o.customers, o.users, perCustomer, prime, o.assignments}},
		{`INSERT INTO customer_list (customer_id, tenant_id, first_name, last_name, email, phone, external_id, status,
			created_at, version, assignees)
		  SELECT c.id, $1, 'First' || lpad(c.n::text, 7, '0'), 'Last' || lpad(c.n::text, 7, '0'),
		         'customer' || c.n || '@bench.example', '', '', 'active', c.created_at,
		         1 + coalesce(t.members, 0), coalesce(t.assignees, '[]'::jsonb)
		  FROM bench_c c
		  LEFT JOIN (
		      SELECT m.customer_id, count(*) AS members,
		             jsonb_agg(jsonb_build_object('user_id', m.user_id, 'name', u.name, 'lead', m.lead,
		                       'assigned_at', to_char(m.assigned_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
		                       ORDER BY m.seq) AS assignees
		      FROM my_clients m JOIN users u ON u.id = m.user_id
		      GROUP BY m.customer_id
		  ) t ON t.customer_id = c.id`, []any{tenant}},
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Release()
	for _, s := range stmts {
		t := time.Now()
		if _, err := conn.Exec(ctx, s.sql, s.args...); err != nil {
			return "", fmt.Errorf("%s: %w", firstLine(s.sql), err)
		}
		fmt.Fprintf(os.Stderr, "   %-70s %s\n", firstLine(s.sql), time.Since(t).Round(time.Millisecond))
	}
	if _, err := conn.Exec(ctx, `RESET work_mem; RESET maintenance_work_mem`); err != nil {
		return "", err
	}
	t := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for _, d := range defs {
		g.Go(func() error { return d.restore(gctx, pool) })
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "   %-70s %s\n", "indexes and constraints recreated", time.Since(t).Round(time.Millisecond))
	t = time.Now()
	for _, tbl := range []string{"users", "customer_list", "my_clients"} {
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE `+tbl); err != nil {
			return "", err
		}
	}
	fmt.Fprintf(os.Stderr, "   %-70s %s\n", "VACUUM ANALYZE", time.Since(t).Round(time.Millisecond))
	return tenant, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 70 {
		s = s[:70]
	}
	return s
}
