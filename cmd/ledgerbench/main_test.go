package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/projections"
)

// A tiny run of every phase completes and reports every figure the issue
// asks for, with its target verdict where it has one. No timing is judged
// here: the figures only have to exist, be measured (positive) and come with
// their evidence.
func TestEveryPhaseReportsItsFigures(t *testing.T) {
	t.Parallel()
	url := testdb.NewURL(t)
	out := filepath.Join(t.TempDir(), "bench.json")
	args := []string{"-quick", "-out", out, "-duration", "300ms", "-warmup", "100ms", "-turns", "3",
		"-cmd-customers", "1000", "-cmd-users", "10", "-lag-rate", "200", "-lag-duration", "500ms", "-lag-workers", "8",
		"-catchup-rows", "300", "-rebuild-events", "3000", "-rebuild-users", "20",
		"-customers", "2000", "-users", "50", "-assignments", "5000", "-read-queries", "30", "-bulk-customers", "200",
		"-import-rows", "500"}
	if err := run(context.Background(), args, url); err != nil {
		t.Fatalf("run: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Figures []figure       `json:"figures"`
		Details map[string]any `json:"details"`
		Errors  []string       `json:"errors"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) > 0 {
		t.Fatalf("errors: %v", rep.Errors)
	}
	// Each side of the commands phase is reported as its three turns
	// merged: at least 3 × 100 ms measured (more on a loaded machine,
	// where a turn's timer fires late).
	cmdDetail, _ := rep.Details["commands"].(map[string]any)
	runs, _ := cmdDetail["runs"].([]any)
	if len(runs) == 0 {
		t.Fatalf("commands: no runs in the details: %v", cmdDetail)
	}
	for _, r := range runs {
		for _, side := range []string{"raw_insert", "assign_user_http"} {
			loop, _ := r.(map[string]any)[side].(map[string]any)
			if secs, _ := loop["seconds"].(float64); secs < 0.28 || secs > 10 {
				t.Errorf("commands %s: measured for %v s, want the three turns' 0.3 s or a little more", side, loop["seconds"])
			}
		}
	}
	byName := map[string]figure{}
	for _, f := range rep.Figures {
		byName[f.Phase+"/"+f.Name] = f
	}
	withTarget := []string{
		"commands/ratio cmd/raw @16",
		"lag/achieved command rate",
		"lag/commit→read model p99",
		"catchup/after a 300-row import ÷ rebuild",
		"catchup/after a BulkEdit of 2 users × 300 ÷ rebuild",
		"rebuild/rebuild ÷ writing with COPY",
		"reads/My Clients first page p99 ÷ baseline p99",
		"reads/customers by assigned user p99 ÷ baseline p99",
	}
	for _, name := range withTarget {
		f, ok := byName[name]
		if !ok {
			t.Errorf("no figure %q (have %d figures)", name, len(rep.Figures))
			continue
		}
		if f.Value <= 0 || f.Target == "" || f.Pass == nil {
			t.Errorf("%s: value %v, target %q, verdict %v", name, f.Value, f.Target, f.Pass)
		}
	}
	for _, name := range []string{"commands/AssignUser HTTP @1", "commands/raw INSERT @16", "commands/AssignUser p99 @16",
		"catchup/after a 300-row import", "rebuild/rebuild all, 3000 events", "reads/My Clients first page p99",
		"lag/commit→read model p50", "reads/baseline PK lookup p99", "catchup/rebuild of the same events (baseline)",
		"bulk/BulkEdit add, 200 customers", "bulk/BulkEdit set (one owner), 200 customers", "bulk/transfer (all), 200 customers",
		"bulk/BulkEdit set (one owner) peak heap",
		"bulk/export csv, 200 customers", "bulk/export xlsx, 200 customers", "bulk/export ods, 200 customers",
		"bulk/export vcf, 200 customers", "bulk/export html, 200 customers", "bulk/export xlsx, 200 customers, peak heap",
		"imports/import, 50 rows", "imports/import, 500 rows", "imports/import 500 rows peak heap", "imports/import with assignment rules, 50 rows",
		"imports/export csv, 600 customers", "imports/export xlsx, 600 customers, peak heap",
		"replica/My Clients p99, primary", "replica/My Clients p99, replica", "replica/customer list by assignee p99, replica",
		"replica/failover: kill to first acknowledged command"} {
		if f, ok := byName[name]; !ok || f.Value <= 0 {
			t.Errorf("figure %q: %+v (present %v)", name, f, ok)
		}
	}
	// Every command of the lag phase became visible, none failed, and the
	// rebuilt projections matched what the generator decided.
	lag, _ := rep.Details["lag"].(map[string]any)
	res, _ := lag["result"].(map[string]any)
	if res == nil || res["never_visible"] != 0.0 || res["errors"] != 0.0 || res["answered"] == 0.0 {
		t.Errorf("lag result: %v", res)
	}
	rebuild, _ := rep.Details["rebuild"].(map[string]any)
	if rebuild == nil || rebuild["check_mismatches"] != nil {
		t.Errorf("rebuild details: mismatches %v", rebuild["check_mismatches"])
	}

	// The reads phase explained what projections.Queries sends, not a copy
	// of it: each explained run is the statements its run sent (the
	// viewer's settings, then the query), with the SQL the Queries method
	// sends for such a call, and every plan came out.
	reads, _ := rep.Details["reads"].(map[string]any)
	plans, _ := reads["explain_analyze"].(map[string]any)
	if len(plans) != 8 {
		t.Errorf("reads: %d plans, want 8 (2 kinds × 2 runs × custom/generic): %v", len(plans), plans)
	}
	for label, p := range plans {
		if s, _ := p.(string); !strings.Contains(s, "Execution Time") {
			t.Errorf("reads: plan %s: %q", label, s)
		}
	}
	want := sentByQueries(t, url)
	explained, _ := reads["explained_statements"].(map[string]any)
	if len(explained) != 4 {
		t.Errorf("reads: %d explained runs, want 4: %v", len(explained), explained)
	}
	for label, v := range explained {
		kind, _, _ := strings.Cut(label, "/")
		w, ok := want[kind]
		sent, _ := v.([]any)
		if !ok || len(sent) != len(w) {
			t.Errorf("reads: %s explained %v, want %d statements", label, v, len(w))
			continue
		}
		for i := range sent {
			st, _ := sent[i].(map[string]any)
			args, _ := st["args"].([]any)
			if st["sql"] != w[i].SQL || len(args) != len(w[i].Args) {
				t.Errorf("reads: %s explained\n%v %v\nbut projections.Queries sends\n%s %v", label, st["sql"], args, w[i].SQL, w[i].Args)
			}
		}
	}
}

// sentByQueries is the statement projections.Queries sends for each kind of
// the reads phase, as a tracer of its own sees it on the test database (its
// tables are empty), independent of the bench's statementRecorder.
func sentByQueries(t *testing.T, url string) map[string][]statement {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	seen := &queryLog{}
	cfg.ConnConfig.Tracer = seen
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	q := projections.NewQueries(pool, benchKeyring())
	const tenant, user = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
	// Read as a member, as the reads phase (and the API) does.
	ctx = projections.WithViewer(ctx, projections.Viewer{TenantID: tenant, UserID: user, Role: "member"})
	out := map[string][]statement{}
	for kind, run := range map[string]func() error{
		"my_clients_first_page": func() error {
			_, err := q.MyClients(ctx, tenant, user, "", 50, "")
			return err
		},
		"customers_by_assigned_user": func() error {
			_, err := q.Customers(ctx, tenant, projections.CustomerFilter{AssignedUser: user}, 50, "")
			return err
		},
	} {
		seen.reset()
		if err := run(); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		sent := seen.all()
		if len(sent) != 2 {
			t.Fatalf("%s sent %d statements, want the viewer's settings and the query: %v", kind, len(sent), sent)
		}
		out[kind] = sent
	}
	return out
}

// queryLog is a pgx.QueryTracer that records every query.
type queryLog struct {
	mu   sync.Mutex
	sent []statement
}

func (l *queryLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = append(l.sent, statement{SQL: d.SQL, Args: d.Args})
	return ctx
}

func (l *queryLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (l *queryLog) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (l *queryLog) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = append(l.sent, statement{SQL: d.SQL, Args: d.Args})
}

func (l *queryLog) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (l *queryLog) reset() { l.mu.Lock(); l.sent = nil; l.mu.Unlock() }

func (l *queryLog) all() []statement {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}
