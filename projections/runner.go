package projections

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
)

// Runner feeds the projections from the event store and answers
// read-your-writes waits. Several processes may run one each against the
// same database: each batch is applied by one of them (the claims lock the
// checkpoints), and a process that dies hands over without loss.
type Runner struct {
	pool        *pgxpool.Pool
	store       *eventstore.Store
	keys        *keyring.Keyring
	log         *slog.Logger
	cfg         config
	projections []*projection
	notifier    *notifier
	// folded counts how the engine brought customers up to date.
	folded foldCounts
}

// FoldStats says how the engine brought the customers of its batches up to
// date for the customer-stream read models (one fold serves them all):
// from the batch alone, or by reading their streams.
type FoldStats struct {
	FromBatch uint64 `json:"from_batch"`
	Read      uint64 `json:"read"`
}

// FoldStats returns how many customers the engine folded from batches alone
// and how many it read, since the Runner was made.
func (r *Runner) FoldStats() FoldStats {
	return FoldStats{FromBatch: r.folded.fromBatch.Load(), Read: r.folded.read.Load()}
}

type config struct {
	names         []string
	maxBatch      int
	pollInterval  time.Duration
	retryInterval time.Duration
	ackDeadline   time.Duration
	recheck       time.Duration
	closeTimeout  time.Duration
}

// Option configures a Runner.
type Option func(*config)

// WithProjections restricts the Runner to the named projections (default: all).
func WithProjections(names ...string) Option { return func(c *config) { c.names = names } }

// WithBatchSize caps how many events one batch reads (default 20,000). The
// size adapts below the cap to the backlog (see eventsSchema); tests set a
// small cap to make many batches.
func WithBatchSize(n int) Option { return func(c *config) { c.maxBatch = n } }

// WithPollInterval sets the fallback poll for when a notification is lost
// (default 1 s).
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithRetryInterval sets the pause after a failed batch (default 1 s).
func WithRetryInterval(d time.Duration) Option { return func(c *config) { c.retryInterval = d } }

// WithAckDeadline bounds the time one batch may take to be applied (default
// 30 s). Past it the batch is rolled back and retried; keep it far above a
// normal batch's milliseconds, since a rebuild's swap may pause the engine.
func WithAckDeadline(d time.Duration) Option { return func(c *config) { c.ackDeadline = d } }

// New returns a Runner over pool. Nothing runs until Run.
// keys opens the sealed personal fields of customer events for the folds.
func New(pool *pgxpool.Pool, store *eventstore.Store, keys *keyring.Keyring, log *slog.Logger, opts ...Option) (*Runner, error) {
	cfg := config{
		maxBatch:      defaultMaxBatch,
		pollInterval:  time.Second,
		retryInterval: time.Second,
		ackDeadline:   30 * time.Second,
		recheck:       time.Second,
		closeTimeout:  30 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxBatch <= 0 {
		return nil, fmt.Errorf("projections: batch size must be positive, got %d", cfg.maxBatch)
	}
	ps, err := selectProjections(cfg.names)
	if err != nil {
		return nil, err
	}
	log = cmp.Or(log, slog.Default())
	return &Runner{
		pool:        pool,
		store:       store,
		keys:        keys,
		log:         log,
		cfg:         cfg,
		projections: ps,
		notifier:    newNotifier(pool.Config().ConnConfig, log, engines(ps)),
	}, nil
}

// Names lists the projections this Runner feeds.
func (r *Runner) Names() []string { return names(r.projections) }

// Listen keeps the Runner's notification listener (one LISTEN connection)
// until ctx ends, for a process that answers read-your-writes waits but
// does not Run the projections (`ledger serve --no-projections`): WaitFor
// then wakes when another process commits a checkpoint, not only at its
// re-check. Run listens itself: call one or the other, not both.
func (r *Runner) Listen(ctx context.Context) { r.notifier.run(ctx) }

// Run feeds the projections until ctx ends, then stops gracefully: a batch
// in progress either commits whole or rolls back.
func (r *Runner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Projection transactions commit without waiting for their WAL flush,
	// as each live batch also asks for itself (qAsyncCommit says why).
	cfg := r.pool.Config().Copy()
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	// Batch statements are short; JIT compilation costs them more than it
	// saves whenever a plan's estimate crosses jit_above_cost.
	cfg.ConnConfig.RuntimeParams["jit"] = "off"
	// Every statement here is prepared once per connection and run per
	// batch with arrays of keys or a cursor range as parameters, for which
	// PostgreSQL's cost comparison keeps choosing a fresh custom plan: the
	// claims, the derived read models' INSERT ... SELECT and the ledger
	// tree's were planned on every batch, more CPU than running them (about
	// 0.3 ms of the database's per command at 1 client). Their generic
	// plans look rows up by key, or walk an index over the range, as the
	// custom ones do (commands/load.go's qGenericPlans is the same choice).
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	cfg.MaxConns = 6
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("projections: connect: %w", err)
	}
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()

	// Commits made in this process wake the subscriber at once; the
	// database's notification, coalesced, is for other processes'.
	defer r.store.OnAppend(func(int64) { r.notifier.newEvents() })()

	var listener sync.WaitGroup
	defer func() {
		cancel() // Run may end on its own (a router error) while ctx lives on
		listener.Wait()
	}()
	listener.Go(func() { r.notifier.run(ctx) })

	wlog := watermill.NewSlogLogger(r.log.With(slog.String("component", "watermill")))
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: r.cfg.closeTimeout}, wlog)
	if err != nil {
		return fmt.Errorf("projections: new router: %w", err)
	}
	ack := r.cfg.ackDeadline
	for i, ps := range engines(r.projections) {
		group := consumerGroup + ":" + strings.Join(names(ps), ",")
		fields := eventFieldsCursor
		if ps[0].decodes() {
			fields = eventFieldsAll
		}
		schema := newEventsSchema(fields, r.cfg.maxBatch)
		sub, err := wsql.NewSubscriber(db, wsql.SubscriberConfig{
			ConsumerGroup:  group,
			AckDeadline:    &ack,
			PollInterval:   r.cfg.pollInterval,
			RetryInterval:  r.cfg.retryInterval,
			ResendInterval: r.cfg.retryInterval,
			BackoffManager: &wakeBackoff{
				ctx: ctx, events: r.notifier.subscribers[i].b, fallback: r.cfg.pollInterval, spacing: spacingOf(ps),
				retry: r.cfg.retryInterval, log: r.log.With(slog.String("engine", group)), full: schema.full,
			},
			SchemaAdapter:  schema,
			OffsetsAdapter: checkpointOffsets{names: names(ps)},
		}, wlog)
		if err != nil {
			return fmt.Errorf("projections: subscriber %s: %w", group, err)
		}
		router.AddConsumerHandler(group, topic, sub, r.handler(newEngine(ps, &r.folded, r.keys), schema))
	}

	errc := make(chan error, 1)
	go func() { errc <- router.Run(ctx) }()
	select {
	case err := <-errc:
		if ctx.Err() == nil {
			return fmt.Errorf("projections: router stopped: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	// Router.Run closes the router itself once every handler has stopped on
	// ctx. Closing it from here instead can wait out the whole close timeout
	// when ctx ended while handlers were still subscribing (watermill counts
	// a handler before its subscription can fail).
	select {
	case <-errc:
		return nil
	case <-time.After(r.cfg.closeTimeout):
		if err := router.Close(); err != nil {
			return fmt.Errorf("projections: close router: %w", err)
		}
		return errors.New("projections: router did not stop in time")
	}
}

// engines splits the projections between the two engines that apply
// them, each with its own Watermill subscriber, transaction and
// connection: the read models made in Go from decoded events (the
// customer-stream folds, which share one fold of each customer, and the
// notifications, made from the same decoded team events), and the read
// models derived in SQL from single events.
// Their writes are of about the same cost, so on two cores the two engines
// apply a backlog about twice as fast as one would (measured: see
// docs/PERFORMANCE.md); one engine for all five was the other arrangement
// tried.
func engines(ps []*projection) [][]*projection {
	var folds, derived []*projection
	for _, p := range ps {
		if p.decodes() {
			folds = append(folds, p)
		} else {
			derived = append(derived, p)
		}
	}
	var out [][]*projection
	for _, g := range [][]*projection{folds, derived} {
		if len(g) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// spacingOf is the least time between an engine's batches (notifier.go).
func spacingOf(ps []*projection) time.Duration {
	if ps[0].decodes() {
		return foldSpacing
	}
	return derivedSpacing
}

// handler applies a batch, which is one message (see eventsSchema), inside
// the subscriber's transaction. Its reads take no transaction id; its one
// write statement takes it right before the commit, so the transaction
// holds back no subscriber's snapshot xmin for long.
//
// The write moves the checkpoints itself and the ack query moves nothing
// (checkpointOffsets), so a batch Watermill gives up on (shutdown, ack
// deadline) commits no progress and is read again. On any failure the
// handler rolls the transaction back itself and acks: Watermill's ack query
// then fails and the batch is retried from the last commit.
func (r *Runner) handler(eng *engine, schema *eventsSchema) message.NoPublishHandlerFunc {
	return func(msg *message.Message) (err error) {
		ctx := msg.Context()
		tx, ok := wsql.TxFromContext(ctx)
		if !ok {
			return errors.New("projections: message without a transaction")
		}
		fail := func(cause error) error {
			_ = tx.Rollback()
			if !errors.Is(cause, sql.ErrTxDone) && ctx.Err() == nil {
				r.log.Error("projections: applying a batch failed; it is rolled back and retried",
					slog.String("batch", msg.UUID), slog.Any("err", cause))
			}
			return nil
		}
		defer func() {
			if rec := recover(); rec != nil {
				err = fail(fmt.Errorf("panic: %v", rec))
			}
		}()
		batch, claims, err := decodeBatch(msg)
		if err != nil {
			return fail(err)
		}
		started := time.Now()
		if err := eng.applyLive(ctx, tx, batch, claims); err != nil {
			return fail(err)
		}
		schema.applied(len(batch), time.Since(started))
		return nil
	}
}

const qCheckpoints = `SELECT consumer_group, last_transaction_id::text, last_position
FROM projection_checkpoints WHERE consumer_group = ANY($1)`

// Checkpoints returns where each of this Runner's projections stands.
func (r *Runner) Checkpoints(ctx context.Context) (map[string]eventstore.Cursor, error) {
	return checkpoints(ctx, r.pool, r.Names())
}

func checkpoints(ctx context.Context, pool *pgxpool.Pool, names []string) (map[string]eventstore.Cursor, error) {
	rows, err := pool.Query(ctx, qCheckpoints, names)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	out := make(map[string]eventstore.Cursor, len(names))
	var name, txid string
	var pos int64
	if _, err := pgx.ForEachRow(rows, []any{&name, &txid, &pos}, func() error {
		id, err := strconv.ParseUint(txid, 10, 64)
		out[name] = eventstore.Cursor{TransactionID: id, Position: pos}
		return err
	}); err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	return out, nil
}

// Reached reports, without waiting, whether the projections named (all of
// this Runner's when none) have processed position: false while no event
// has that position here. A read router asks it of a replica, whose
// replicated checkpoints say what its read models hold.
func (r *Runner) Reached(ctx context.Context, position int64, names ...string) (bool, error) {
	if position <= 0 {
		return true, nil
	}
	if len(names) == 0 {
		names = r.Names()
	}
	target, err := r.store.EventCursor(ctx, position)
	if errors.Is(err, eventstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("position %d: %w", position, err)
	}
	cks, err := checkpoints(ctx, r.pool, names)
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if ck, ok := cks[n]; !ok || ck.Less(target) {
			return false, nil
		}
	}
	return true, nil
}

// ErrWaitTimeout is matched by every *WaitTimeoutError.
var ErrWaitTimeout = errors.New("projections did not catch up in time")

// ErrUnknownPosition is returned by WaitFor for a position no event has.
var ErrUnknownPosition = errors.New("unknown event position")

// WaitTimeoutError says which projections had not reached a position when
// the wait's context ended.
type WaitTimeoutError struct {
	Position int64
	Pending  []string
	Err      error // the context's error
}

func (e *WaitTimeoutError) Error() string {
	return fmt.Sprintf("projections %v have not reached position %d: %v", e.Pending, e.Position, e.Err)
}

// Is makes errors.Is(err, ErrWaitTimeout) true.
func (e *WaitTimeoutError) Is(target error) bool { return target == ErrWaitTimeout }

func (e *WaitTimeoutError) Unwrap() error { return e.Err }

// WaitFor returns once every named projection (all of the Runner's when none
// are named) has applied the event at position, or a *WaitTimeoutError when
// ctx ends first. Position 0 or less means "nothing to wait for" and returns
// nil at once; a position no event has returns ErrUnknownPosition (a client
// token from another database, or forged). It wakes on checkpoint
// notifications and re-checks every second besides, so it also works in a
// process whose Runner neither Runs nor Listens (then the notifications
// never come and only the re-check sees the checkpoints move).
func (r *Runner) WaitFor(ctx context.Context, position int64, names ...string) error {
	if position <= 0 {
		return nil
	}
	if len(names) == 0 {
		names = r.Names()
	}
	for _, n := range names {
		if !slices.Contains(AllNames(), n) {
			return fmt.Errorf("%w: %q", ErrUnknownProjection, n)
		}
	}
	target, err := r.store.EventCursor(ctx, position)
	if errors.Is(err, eventstore.ErrNotFound) {
		return fmt.Errorf("%w: %d", ErrUnknownPosition, position)
	}
	if err != nil {
		if ctx.Err() != nil {
			return &WaitTimeoutError{Position: position, Pending: names, Err: ctx.Err()}
		}
		return fmt.Errorf("wait for position %d: %w", position, err)
	}
	for {
		_, woken := r.notifier.checkpoints.wait()
		cks, err := checkpoints(ctx, r.pool, names)
		if err != nil {
			if ctx.Err() != nil {
				return &WaitTimeoutError{Position: position, Pending: names, Err: ctx.Err()}
			}
			return fmt.Errorf("wait for position %d: %w", position, err)
		}
		var pending []string
		for _, n := range names {
			if ck, ok := cks[n]; !ok || ck.Less(target) {
				pending = append(pending, n)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-woken:
		case <-time.After(r.cfg.recheck):
		case <-ctx.Done():
			return &WaitTimeoutError{Position: position, Pending: pending, Err: ctx.Err()}
		}
	}
}
