package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	nethttp "net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	ledgerhttp "github.com/assignment-ledger/ledger/http"
	"github.com/assignment-ledger/ledger/projections"
)

func runServe(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "serve", "serve [--no-projections]",
		"Serves the HTTP API on LEDGER_ADDR (default 127.0.0.1:8080) against DATABASE_URL,\n"+
			"after applying pending migrations, and runs the projections, the ledger log's checkpoint\n"+
			"signing and, with LEDGER_SMTP_URL and LEDGER_MAIL_FROM, the outbox's e-mails.\n"+
			"With --no-projections it only serves the API and leaves that work to `ledger project`\n"+
			"processes. With LEDGER_REPLICA_URLS (streaming replicas of the primary) it serves reads\n"+
			"from a replica that can answer them (LEDGER_REPLICA_MAX_LAG, default 1s). DATABASE_URL may\n"+
			"name several hosts with target_session_attrs=read-write to follow a failover.\n"+
			"Stops gracefully on SIGTERM/SIGINT.")
	noProjections := fs.Bool("no-projections", false,
		"serve the API only: run no projections, checkpoint signing or outbox relay\n(run ledger project beside it)")
	if err := parse(fs, args); err != nil {
		return err
	}
	n, err := openNode(ctx, env)
	if err != nil {
		return err
	}
	defer n.close()
	n.registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ledger_command_groups_total",
			Help: "Transactions of single-customer commands (groups committed together).",
		}, func() float64 { return float64(n.cmds.GroupStats().Groups()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ledger_commands_grouped_total",
			Help: "Single-customer commands run through the group committer (divided by ledger_command_groups_total: the mean group size).",
		}, func() float64 { return float64(n.cmds.GroupStats().Commands()) }))

	reads, replicas, err := n.openReads(ctx)
	if err != nil {
		return err
	}
	if reads != nil {
		defer reads.Close()
		readsCtx, stopReads := context.WithCancel(context.WithoutCancel(ctx))
		defer stopReads()
		go reads.Run(readsCtx)
	}

	cfg := n.cfg
	api := ledgerhttp.NewServer(ledgerhttp.Deps{
		Reads: reads, Replicas: replicas,
		Ledger: n.ledger,
		Pool:   n.pool, Store: n.store, Commands: n.cmds, Projections: n.runner, Queries: projections.NewQueries(n.pool, n.keys), Log: n.log,
		BaseURL: cfg.BaseURL, Registry: n.registry,
		RequestTimeout: cfg.RequestTimeout, ExportTimeout: cfg.ExportTimeout, ImportTimeout: cfg.ImportTimeout,
		// The server checks the event store itself; this adds the
		// migrations. Not the projections' lag, on either kind of node:
		// a lagging read model is what X-Min-Position waits cover.
		Ready: n.ready,
	})
	srv := &nethttp.Server{
		Addr:              cfg.Addr,
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		// Exports stream large bodies; the write timeout bounds a stuck
		// client, beyond the export's own time limit (an export or an
		// import moves its connection's write deadline with its limit).
		WriteTimeout: max(cfg.ExportTimeout, cfg.ImportTimeout) + time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}

	var bg *background
	if *noProjections {
		bg = n.startListening(ctx)
		n.log.Info("projections off: `ledger project` processes apply the events")
	} else {
		bg = n.startWorkers(ctx)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	n.log.Info("serving", slog.String("addr", ln.Addr().String()), slog.Bool("projections", !*noProjections))

	select {
	case err := <-serveErr:
		bg.stop()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	n.log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	// The background work stops after the last request: a request waiting
	// on X-Min-Position still gets its answer.
	bg.stop()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	n.log.Info("stopped")
	return nil
}
