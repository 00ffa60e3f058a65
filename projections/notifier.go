package projections

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/eventstore"
)

// CheckpointChannel is the LISTEN/NOTIFY channel a checkpoint update signals
// on (see migrations/0002_projections.sql).
const CheckpointChannel = "ledger_checkpoints"

// broadcast wakes every waiter at once. A waiter takes the channel before it
// checks its condition and waits on it after, so a signal in between is
// never lost.
type broadcast struct {
	mu  sync.Mutex
	gen uint64
	ch  chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

// wait returns the current generation and a channel closed at the next signal.
func (b *broadcast) wait() (uint64, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gen, b.ch
}

func (b *broadcast) signal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	close(b.ch)
	b.ch = make(chan struct{})
}

// notifier holds the process's one LISTEN connection and fans notifications
// out: to the engines (new events, or a projection committed, which may have
// moved the snapshot xmin) and to read-your-writes waiters (checkpoints).
type notifier struct {
	connConfig *pgx.ConnConfig
	log        *slog.Logger
	retry      time.Duration

	checkpoints *broadcast
	// subscribers holds, per engine, a broadcast that fires on new events
	// and on checkpoint commits of projections the engine does not apply
	// (the other engine's, a rebuild's swap), but not on its own: its own
	// commit cannot have held back its own reads.
	subscribers []subscriberWake
}

type subscriberWake struct {
	b   *broadcast
	own []string
}

// newNotifier returns a notifier with a subscriber broadcast per engine.
func newNotifier(connConfig *pgx.ConnConfig, log *slog.Logger, engines [][]*projection) *notifier {
	n := &notifier{
		connConfig:  connConfig,
		log:         log,
		retry:       time.Second,
		checkpoints: newBroadcast(),
	}
	for _, ps := range engines {
		n.subscribers = append(n.subscribers, subscriberWake{b: newBroadcast(), own: names(ps)})
	}
	return n
}

// run listens until ctx ends, reconnecting after failures. After every
// (re)connect both broadcasts fire: notifications sent while no one listened
// are lost, so everyone re-checks.
func (n *notifier) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := n.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("projections: notification listener lost its connection; reconnecting", slog.Any("err", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.retry):
		}
	}
}

// newEvents wakes every subscriber, as a notification on
// eventstore.NotifyChannel does.
func (n *notifier) newEvents() {
	for _, s := range n.subscribers {
		s.b.signal()
	}
}

func (n *notifier) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, n.connConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range []string{eventstore.NotifyChannel, CheckpointChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	n.checkpoints.signal()
	n.newEvents()
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		// A checkpoint commit ends a transaction that may have held the
		// snapshot xmin back, so it can make events readable too.
		for _, s := range n.subscribers {
			if note.Channel != CheckpointChannel || !slices.Contains(s.own, note.Payload) {
				s.b.signal()
			}
		}
		if note.Channel == CheckpointChannel {
			n.checkpoints.signal()
		}
	}
}

// wakeBackoff is the subscribers' BackoffManager. Watermill's consume loop
// calls HandleError synchronously after each query, so blocking here until a
// notification arrives turns polling into wake-ups. The fallback poll covers
// a lost notification; the short eager polls cover an event whose
// notification arrived while an older transaction still held the snapshot
// xmin back (it becomes readable without a notification of its own).
type wakeBackoff struct {
	ctx      context.Context
	events   *broadcast
	fallback time.Duration
	retry    time.Duration
	log      *slog.Logger
	// full reports whether the last query read a whole batch.
	full func() bool

	seen  uint64        // generation seen before the last query started
	eager time.Duration // next short poll; 0 when not polling eagerly
	// spacing is the least time from one batch to the next query a
	// notification starts (foldSpacing or derivedSpacing).
	spacing time.Duration
	// woken is true when the last query was started by a notification.
	woken bool
	// lastBatch is when the last query that read events ended.
	lastBatch time.Time
}

const (
	eagerFirst = 2 * time.Millisecond
	eagerLast  = 256 * time.Millisecond
	// gather is how long a subscriber woken by a notification lets
	// further events arrive before it queries: under load it reads a
	// batch per few milliseconds rather than a transaction per event,
	// which is what keeps up with a thousand commands a second.
	gather = 2 * time.Millisecond
	// foldSpacing is the least time from one batch of the fold engine
	// (My Clients, the customer list: what a client reads back after a
	// command) to the next query a notification starts: under load each
	// batch carries a few milliseconds of events, and a transaction's
	// fixed round trips are paid per batch, not per event; an idle
	// subscriber only gathers.
	foldSpacing = 4 * time.Millisecond
	// derivedSpacing is the same for the derived engine (audit log, ledger
	// tree, groups, views), whose readers rarely read back at once: at one
	// client its seven round trips a batch were paid per command.
	derivedSpacing = 12 * time.Millisecond
)

// wokenDelay is how long a subscriber woken now waits before its query.
func (b *wakeBackoff) wokenDelay() time.Duration {
	return max(gather, b.spacing-time.Since(b.lastBatch))
}

// HandleError decides when to query next. Empty queries are what a
// subscriber costs when idle, five projections over: only a notification
// that found nothing readable (an older transaction still held the xmin
// back) starts the short eager polls; an empty query after a batch simply
// waits for the next notification.
func (b *wakeBackoff) HandleError(_ watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	defer func() { b.seen, _ = b.events.wait() }()
	if err != nil {
		if b.ctx.Err() == nil {
			b.log.Error("projections: consuming failed; retrying", slog.Any("err", err))
		}
		b.eager, b.woken = eagerFirst, false
		return b.retry
	}
	if !noMsg {
		b.lastBatch = time.Now()
		if b.full == nil || b.full() {
			// More may be waiting: read on at once.
			b.eager, b.woken = 0, false
			return 0
		}
	}
	gen, ch := b.events.wait()
	if gen != b.seen {
		b.woken, b.eager = true, 0
		return b.wokenDelay()
	}
	if noMsg && b.woken && b.eager == 0 {
		b.eager = eagerFirst
	}
	b.woken = false
	wait := b.fallback
	if b.eager > 0 {
		wait = b.eager
		b.eager *= 2
		if b.eager > eagerLast {
			b.eager = 0
		}
	}
	select {
	case <-ch:
		b.woken, b.eager = true, 0
		return b.wokenDelay()
	case <-time.After(wait):
	case <-b.ctx.Done():
	}
	return 0
}
