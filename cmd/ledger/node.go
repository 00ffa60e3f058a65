package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/config"
	"github.com/assignment-ledger/ledger/keyring"
	"github.com/assignment-ledger/ledger/ledgerlog"
	"github.com/assignment-ledger/ledger/mail"
	"github.com/assignment-ledger/ledger/migrations"
	"github.com/assignment-ledger/ledger/projections"
)

// serveGCPercent is the GOGC `ledger serve` and `ledger project` run with
// unless GOGC is set.
const serveGCPercent = 400

// node is what `ledger serve` and `ledger project` share: the migrated
// database, the commands, the projections' runner, the ledger log, the
// outbox relay (nil without e-mail) and a metrics registry with the
// process's and the projections' collectors.
type node struct {
	cfg      config.Config
	pool     *pgxpool.Pool
	keys     *keyring.Keyring
	log      *slog.Logger
	store    *eventstore.Store
	runner   *projections.Runner
	cmds     *commands.Commands
	relay    *mail.Relay
	ledger   *ledgerlog.Log
	registry *prometheus.Registry
	// signingKey is the ledger log's, for its read side on replicas.
	signingKey ledgerlog.Key
}

// openNode connects, applies pending migrations and builds the node. The
// caller closes it.
func openNode(ctx context.Context, env *cliEnv) (_ *node, err error) {
	cfg, pool, keys, log, err := connectMigrated(ctx, env)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			pool.Close()
		}
	}()
	if _, set := env.getenv("GOGC"); !set {
		// The service's live heap is small (tens of MB) and it allocates
		// per request and per event: collecting at 4x the live heap
		// instead of 2x halves the collector's CPU for little memory.
		debug.SetGCPercent(serveGCPercent)
	}
	n := &node{cfg: cfg, pool: pool, keys: keys, log: log, store: eventstore.New(pool)}
	if n.runner, err = projections.New(pool, n.store, keys, log); err != nil {
		return nil, err
	}
	var (
		smtp    *mail.SMTP
		cmdOpts []commands.Option
	)
	if cfg.EmailEnabled() {
		if smtp, err = mail.ParseURL(cfg.SMTPURL); err != nil {
			return nil, fmt.Errorf("LEDGER_SMTP_URL: %w", err)
		}
		cmdOpts = append(cmdOpts, commands.WithEmail())
		log.Info("e-mail on", slog.String("smtp", smtp.Addr()), slog.String("from", cfg.MailFrom))
	}
	n.cmds = commands.New(n.store, keys, log, cmdOpts...)
	if c, err := n.cmds.LegacyCustomers(ctx); err != nil {
		return nil, err
	} else if c > 0 {
		log.Warn("customers with personal data in clear in the event store (written before erasure existed): "+
			"erasing them leaves that data readable until `ledger encrypt-legacy` has run", slog.Int("customers", c))
	}
	if smtp != nil {
		n.relay, err = mail.NewRelay(pool, smtp, cfg.MailFrom, cfg.BaseURL, log, mail.Config{Record: n.cmds.RecordEmailOutcome, Open: n.cmds.OpenEmail})
		if err != nil {
			return nil, fmt.Errorf("LEDGER_MAIL_FROM: %w", err)
		}
	}
	signingKey, err := cfg.SigningKey(log)
	if err != nil {
		return nil, err
	}
	n.ledger, n.signingKey = ledgerlog.New(pool, signingKey, cfg.BaseURL, log), signingKey
	n.registry = prometheus.NewRegistry()
	// The projection metrics read the checkpoints from the database, so
	// they say the same on every node, running the projections or not.
	n.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		n.runner.Collector())
	return n, nil
}

func (n *node) close() { n.pool.Close() }

// ready is the readiness check beside the event store's: no migration
// pending.
func (n *node) ready(ctx context.Context) error {
	c, err := migrations.Pending(ctx, n.pool)
	if err != nil {
		return err
	}
	if c > 0 {
		return fmt.Errorf("%d migration(s) pending", c)
	}
	return nil
}

// background is a set of goroutines started together and stopped together.
type background struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// failed receives the projections' error when they stop on their own.
	failed chan error
	undo   []func()
}

// stop cancels the goroutines and waits for them.
func (b *background) stop() {
	b.cancel()
	b.wg.Wait()
	for _, u := range b.undo {
		u()
	}
}

// startWorkers runs the node's background work until stop: the
// projections, the ledger log's checkpoint signing, the follow-ups' due-time
// scheduler, the outbox relay and the auditors' daily checkpoint e-mail.
// Any number of nodes may run them against one database: the projections
// claim their batches and the relay its rows.
func (n *node) startWorkers(ctx context.Context) *background {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b := &background{cancel: cancel, failed: make(chan error, 1)}
	b.wg.Go(func() {
		if err := n.runner.Run(bctx); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Error("projections stopped", slog.String("error", err.Error()))
			b.failed <- err
		}
	})
	b.wg.Go(func() { n.ledger.Run(bctx, n.cfg.CheckpointInterval) })
	// Follow-ups fall due through the follow_ups read model and a command
	// on the customer's stream: every node may run it (see
	// commands.FollowUpScheduler).
	b.wg.Go(func() { _ = n.cmds.NewFollowUpScheduler(projections.NewQueries(n.pool, n.keys)).Run(bctx) })
	if n.relay != nil {
		// This process's appends wake the relay at once (one may have
		// queued an e-mail); other processes' are found by its poll.
		b.undo = append(b.undo, n.store.OnAppend(func(int64) { n.relay.Wake() }))
		b.wg.Go(func() {
			if err := n.relay.Run(bctx); err != nil {
				n.log.Error("e-mail relay stopped", slog.String("error", err.Error()))
			}
		})
		// Auditors get the day's signed checkpoint once a day (the claim in
		// the database, not this timer, keeps it to one across nodes).
		b.wg.Go(func() { n.cmds.RunCheckpointEmails(bctx, n.ledger, commands.CheckpointEmailPoll) })
		// Users with notify_by_email get each notification by e-mail too
		// (a claim per notification keeps it to one across nodes).
		b.wg.Go(func() { n.cmds.RunNotificationEmails(bctx, commands.NotificationEmailPoll) })
	}
	return b
}

// startListening is startWorkers for a node that leaves the background
// work to others: it only listens for the checkpoints' notifications, so
// X-Min-Position waits wake when another process's projections commit.
func (n *node) startListening(ctx context.Context) *background {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b := &background{cancel: cancel, failed: make(chan error, 1)}
	b.wg.Go(func() { n.runner.Listen(bctx) })
	return b
}
