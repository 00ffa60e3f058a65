package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	nethttp "net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/eventstore"
	ledgerhttp "github.com/assignment-ledger/ledger/http"
	"github.com/assignment-ledger/ledger/ledgerlog"
	"github.com/assignment-ledger/ledger/mail"
	"github.com/assignment-ledger/ledger/migrations"
	"github.com/assignment-ledger/ledger/projections"
)

// serveGCPercent is the GOGC `ledger serve` runs with unless GOGC is set.
const serveGCPercent = 400

func runServe(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "serve", "serve",
		"Serves the HTTP API on LEDGER_ADDR (default 127.0.0.1:8080) against DATABASE_URL,\n"+
			"after applying pending migrations, and runs the projections. With LEDGER_SMTP_URL and\n"+
			"LEDGER_MAIL_FROM it also delivers the outbox's e-mails. Stops gracefully on SIGTERM/SIGINT.")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, pool, keys, log, err := connectMigrated(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, set := env.getenv("GOGC"); !set {
		// The service's live heap is small (tens of MB) and it allocates
		// per request and per event: collecting at 4x the live heap
		// instead of 2x halves the collector's CPU for little memory.
		debug.SetGCPercent(serveGCPercent)
	}
	store := eventstore.New(pool)
	runner, err := projections.New(pool, store, keys, log)
	if err != nil {
		return err
	}
	var (
		relay   *mail.Relay
		smtp    *mail.SMTP
		cmdOpts []commands.Option
	)
	if cfg.EmailEnabled() {
		if smtp, err = mail.ParseURL(cfg.SMTPURL); err != nil {
			return fmt.Errorf("LEDGER_SMTP_URL: %w", err)
		}
		cmdOpts = append(cmdOpts, commands.WithEmail())
		log.Info("e-mail on", slog.String("smtp", smtp.Addr()), slog.String("from", cfg.MailFrom))
	}
	cmds := commands.New(store, keys, log, cmdOpts...)
	if n, err := cmds.LegacyCustomers(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Warn("customers with personal data in clear in the event store (written before erasure existed): "+
			"erasing them leaves that data readable until `ledger encrypt-legacy` has run", slog.Int("customers", n))
	}
	if smtp != nil {
		relay, err = mail.NewRelay(pool, smtp, cfg.MailFrom, cfg.BaseURL, log, mail.Config{Record: cmds.RecordEmailOutcome, Open: cmds.OpenEmail})
		if err != nil {
			return fmt.Errorf("LEDGER_MAIL_FROM: %w", err)
		}
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		runner.Collector(),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ledger_command_groups_total",
			Help: "Transactions of single-customer commands (groups committed together).",
		}, func() float64 { return float64(cmds.GroupStats().Groups()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ledger_commands_grouped_total",
			Help: "Single-customer commands run through the group committer (divided by ledger_command_groups_total: the mean group size).",
		}, func() float64 { return float64(cmds.GroupStats().Commands()) }))

	signingKey, err := cfg.SigningKey(log)
	if err != nil {
		return err
	}
	ledger := ledgerlog.New(pool, signingKey, cfg.BaseURL, log)

	api := ledgerhttp.NewServer(ledgerhttp.Deps{
		Ledger: ledger,
		Pool:   pool, Store: store, Commands: cmds, Projections: runner, Queries: projections.NewQueries(pool, keys), Log: log,
		BaseURL: cfg.BaseURL, Registry: registry,
		RequestTimeout: cfg.RequestTimeout, ExportTimeout: cfg.ExportTimeout, ImportTimeout: cfg.ImportTimeout,
		// The server checks the event store itself; this adds the migrations.
		Ready: func(ctx context.Context) error {
			n, err := migrations.Pending(ctx, pool)
			if err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%d migration(s) pending", n)
			}
			return nil
		},
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
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}

	projCtx, stopProjections := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := runner.Run(projCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("projections stopped", slog.String("error", err.Error()))
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		ledger.Run(projCtx, cfg.CheckpointInterval)
	}()
	if relay != nil {
		// Appends wake the relay: one may have queued an e-mail.
		defer store.OnAppend(func(int64) { relay.Wake() })()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := relay.Run(projCtx); err != nil {
				log.Error("e-mail relay stopped", slog.String("error", err.Error()))
			}
		}()
		// Auditors get the day's signed checkpoint once a day (the claim in
		// the database, not this timer, keeps it to one).
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmds.RunCheckpointEmails(projCtx, ledger, commands.CheckpointEmailPoll)
		}()
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("serving", slog.String("addr", ln.Addr().String()))

	select {
	case err := <-serveErr:
		stopProjections()
		wg.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	// Projections stop after the last request: a request waiting on
	// X-Min-Position still gets its answer.
	stopProjections()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
