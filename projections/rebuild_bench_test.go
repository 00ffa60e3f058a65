package projections

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// BenchmarkRebuildAll measures rebuilding every projection over a generated
// event store (LEDGER_REBUILD_EVENTS events, default 1,000,000):
//
//	go test ./projections -run '^$' -bench RebuildAll -benchtime 1x
//
// It reports seconds per rebuild and events per second; the figure to
// compare with the design target (1M events in under 20 s on 2 cores).
// LEDGER_REBUILD_PROJECTION names one projection to rebuild instead of all
// (e.g. ledger_tree, the ledger log's tree).
func BenchmarkRebuildAll(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("LEDGER_REBUILD_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	var pool *pgxpool.Pool
	if url := os.Getenv("LEDGER_REBUILD_DB"); url != "" {
		// A kept, migrated database: generated once, rebuilt on every run.
		var err error
		if pool, err = pgxpool.New(ctx, url); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
	} else {
		pool = testdb.New(b)
	}
	store := eventstore.New(pool)
	var have int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&have); err != nil {
		b.Fatal(err)
	}
	if have == 0 {
		w := newWorld(b, store, 42)
		w.maxUsers = 300
		w.direct = pool
		began := time.Now()
		w.run(ctx, n)
		w.flush(ctx)
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE events`); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %d events, %d tenants in %v", w.events, len(w.tenants), time.Since(began))
		have = w.events
	}
	log := slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := New(pool, store, testdb.Keyring(b), log)
	if err != nil {
		b.Fatal(err)
	}
	name := "all"
	if s := os.Getenv("LEDGER_REBUILD_PROJECTION"); s != "" {
		name = s
	}
	b.ResetTimer()
	for b.Loop() {
		began := time.Now()
		if err := r.Rebuild(ctx, name, nil); err != nil {
			b.Fatal(err)
		}
		d := time.Since(began)
		b.ReportMetric(d.Seconds(), "s/rebuild")
		b.ReportMetric(float64(have)/d.Seconds(), "events/s")
	}
	// The rebuilt tables' sizes (heap, indexes and TOAST), to compare
	// storage layouts.
	ps, err := selectProjections([]string{name})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range ps {
		for _, t := range p.tableNames() {
			var rows, bytes int64
			if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+t+`), pg_total_relation_size('public.'||$1)`, t).Scan(&rows, &bytes); err != nil {
				b.Fatal(err)
			}
			b.Logf("table %s: %d rows, %.1f MB", t, rows, float64(bytes)/1e6)
		}
	}
}
