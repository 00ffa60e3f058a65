package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/eventstore"
	ledgerhttp "github.com/assignment-ledger/ledger/http"
	"github.com/assignment-ledger/ledger/projections"
)

// exportFormats are the customer list's export formats, as ?format= names.
var exportFormats = []string{"csv", "xlsx", "ods", "vcf", "html"}

// runExports measures, at the end of the bulk and imports phases (their
// customers exist then, each with a team), the export of the whole customer list in every
// format through the HTTP API served in this process: time to the last
// byte read and the process's peak heap in use, which bounds what the
// export holds in memory. The read models are first built by a rebuild
// (the bulk phase runs no projections).
func runExports(ctx context.Context, phase string, pool *pgxpool.Pool, store *eventstore.Store, cmd *commands.Commands, apiKey string, customers int, srv *server, rep *report) error {
	runner, err := projections.New(pool, store, benchKeyring(), srv.log)
	if err != nil {
		return err
	}
	if err := runner.Rebuild(ctx, "all", nil); err != nil {
		return fmt.Errorf("build the read models: %w", err)
	}
	api := ledgerhttp.NewServer(ledgerhttp.Deps{Pool: pool, Store: store, Commands: cmd, Projections: runner,
		Queries: projections.NewQueries(pool, benchKeyring()), Log: srv.log})
	ts := httptest.NewServer(api)
	defer ts.Close()
	details := map[string]any{"customers": customers}
	for _, f := range exportFormats {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/v1/customers?format="+f, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+apiKey)
		runtime.GC()
		peak := sampleHeaps()
		began := time.Now()
		resp, err := http.DefaultClient.Do(req)
		var n int64
		if err == nil {
			n, err = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		took := time.Since(began)
		heap, live := peak()
		if err != nil {
			return fmt.Errorf("export %s: %w", f, err)
		}
		fmt.Fprintf(os.Stderr, "   export %s of %d customers: %s, %.1f MB, peak heap %.0f MB in use, %.0f MB live\n", f, customers, took.Round(time.Millisecond), float64(n)/(1<<20), heap, live)
		rep.add(figure{Phase: phase, Name: fmt.Sprintf("export %s, %d customers", f, customers), Value: took.Seconds(), Unit: "s",
			Note: "GET /v1/customers?format=" + f + ", in-process server"})
		rep.add(figure{Phase: phase, Name: fmt.Sprintf("export %s, %d customers, peak heap", f, customers), Value: heap, Unit: "MB"})
		rep.add(figure{Phase: phase, Name: fmt.Sprintf("export %s, %d customers, peak live heap", f, customers), Value: live, Unit: "MB"})
		details["export "+f] = map[string]any{"seconds": took.Seconds(), "peak_heap_mb": heap, "peak_live_heap_mb": live, "bytes": n}
	}
	rep.detail("exports "+phase, details)
	return nil
}
