package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	netmail "net/mail"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/assignment-ledger/ledger/eventstore"
)

// Relay delivers the outbox at least once. It is a Watermill handler fed
// by a watermill-sql subscriber over the outbox table: each message is one
// due row, locked (FOR UPDATE SKIP LOCKED) in the subscriber's transaction
// while it is sent, so several relays (one per `ledger serve`) never send
// the same row at the same time. The handler records the outcome on the
// row in that transaction, which then commits:
//
//   - sent: status sent, sent_at, and the invitation's token erased;
//   - a temporary failure (the server is down, a 4xx reply): attempts+1 and
//     next_attempt_at pushed back exponentially, until MaxAttempts, then
//     failed;
//   - a permanent failure (a 5xx reply, a message that cannot be rendered):
//     failed at once.
//
// The backoff is kept on the row rather than in Watermill's Retry
// middleware, which would hold the row's transaction open while it waits
// and forget the attempts on a restart.
//
// The at-least-once boundary: a relay that stops or dies before the
// server's final reply to DATA leaves the row queued and the server without
// the message (the transaction rolls back, the connection closes), so the
// next attempt sends it once. Only a death between that reply and the
// commit sends it again, as the same bytes under the same Message-ID,
// which the recipient's system can recognise as a repeat.
type Relay struct {
	pool    *pgxpool.Pool
	smtp    *SMTP
	from    *netmail.Address
	baseURL string
	log     *slog.Logger
	cfg     Config
	wake    chan struct{}
}

// Config tunes a Relay; zero fields take the defaults.
type Config struct {
	// PollInterval is how often an idle relay looks for due rows when
	// nothing wakes it (default 1 s).
	PollInterval time.Duration
	// Backoff is the wait after the first failed attempt, doubled after
	// each further one up to MaxBackoff (defaults 10 s and 30 min).
	Backoff    time.Duration
	MaxBackoff time.Duration
	// MaxAttempts is how many attempts a message gets before it is failed
	// (default 10: about 70 minutes of retries with the default backoff).
	MaxAttempts int
	// Record, when set, is told each message's final outcome before the
	// row records it (the customer's InvitationEmailed event). A crash in
	// between tells it again, so it must be idempotent; an error leaves
	// the row queued, as a failure to record on the row does, except
	// ErrErased: the customer was erased meanwhile, and the row is
	// forgotten (the erasure skipped it while the relay held it).
	Record func(ctx context.Context, o Outcome) error
	// Open opens a payload sealed with its customer's data key (a
	// {"sealed_for", "sealed"} object; fields beside them are left to the
	// relay) and returns the payload as it was before sealing. A sealed
	// payload without Open, or one Open fails with a *PermanentError (the
	// customer was erased), fails the e-mail; any other error is retried.
	Open func(ctx context.Context, tenantID, customerID string, payload []byte) ([]byte, error)
}

// ErrErased is what Config.Record returns, wrapped, when the message's
// customer was erased while it was being delivered: nothing is recorded on
// a stream that ended with its erasure, and the row is forgotten.
var ErrErased = errors.New("mail: the customer was erased")

// Outcome is how one outbox message ended.
type Outcome struct {
	TenantID   string
	CustomerID string
	// MessageID is the outbox message (the e-mail's Message-ID).
	MessageID string
	Kind      string
	// Message is the customer message the e-mail is one of (KindMessage).
	Message string
	// Status is "sent" or "failed".
	Status string
}

func (c *Config) defaults() {
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Backoff <= 0 {
		c.Backoff = 10 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Minute
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
}

// NewRelay returns a relay sending through s as from (an RFC 5322 address,
// "Name <addr>" or "addr"), with links under baseURL.
func NewRelay(pool *pgxpool.Pool, s *SMTP, from, baseURL string, log *slog.Logger, cfg Config) (*Relay, error) {
	addr, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("mail from %q: %w", from, err)
	}
	if log == nil {
		log = slog.Default()
	}
	cfg.defaults()
	return &Relay{pool: pool, smtp: s, from: addr, baseURL: baseURL, log: log.With(slog.String("component", "mail")),
		cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Wake makes an idle relay look for due rows now (after an append that may
// have queued one); it never blocks.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

const topic = "outbox"

// Run delivers until ctx ends. A delivery in progress when ctx ends is
// abandoned, its row left queued for the next attempt.
func (r *Relay) Run(ctx context.Context) error {
	db := stdlib.OpenDBFromPool(r.pool)
	defer db.Close()
	wlog := watermill.NewSlogLogger(r.log.With(slog.String("component", "watermill")))
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wlog)
	if err != nil {
		return fmt.Errorf("mail: new router: %w", err)
	}
	// The handler must finish (or give up on) a send before Watermill's
	// deadline; the SMTP timeout bounds it.
	ack := r.smtp.Timeout + 30*time.Second
	schema, offsets := eventstore.OutboxSubscription()
	sub, err := wsql.NewSubscriber(db, wsql.SubscriberConfig{
		ConsumerGroup:  "mail",
		AckDeadline:    &ack,
		PollInterval:   r.cfg.PollInterval,
		RetryInterval:  r.cfg.PollInterval,
		ResendInterval: r.cfg.PollInterval,
		BackoffManager: &wakeBackoff{ctx: ctx, wake: r.wake, poll: r.cfg.PollInterval, log: r.log},
		SchemaAdapter:  schema,
		OffsetsAdapter: offsets,
	}, wlog)
	if err != nil {
		return fmt.Errorf("mail: subscriber: %w", err)
	}
	router.AddConsumerHandler("mail", topic, sub, r.handle)
	err = router.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("mail: router stopped: %w", err)
}

// handle sends one outbox row and records the outcome. It always acks: on
// a failure to record (or a stop) it rolls the transaction back itself,
// Watermill's ack then fails, and the row, still queued, is read again.
func (r *Relay) handle(msg *message.Message) error {
	ctx := msg.Context()
	tx, ok := wsql.TxFromContext(ctx)
	if !ok {
		return errors.New("mail: message without its transaction")
	}
	row, err := eventstore.DueOutboxOf(msg)
	if err != nil {
		return err
	}
	log := r.log.With(slog.String("outbox_id", row.ID), slog.String("kind", row.Kind), slog.Int("attempt", row.Attempts+1))
	sendErr := r.deliver(ctx, row)
	if sendErr == nil && ctx.Err() != nil {
		// Sent just as the relay stops: record it all the same, so that
		// only a crash can send it twice.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
	}
	if sendErr != nil && ctx.Err() != nil {
		// Stopping (or past the deadline) mid-delivery: the connection is
		// closed before the server's final reply to DATA, and the row
		// stays queued for the next attempt.
		_ = tx.Rollback()
		log.InfoContext(context.WithoutCancel(ctx), "delivery abandoned; the message stays queued")
		return nil
	}
	var perm *PermanentError
	switch {
	case sendErr == nil:
		if err = r.record(ctx, row, "sent"); err == nil {
			err = eventstore.MarkOutboxSent(ctx, tx, row.ID)
		}
		if err == nil {
			log.InfoContext(ctx, "e-mail sent")
		}
	case errors.As(sendErr, &perm) || row.Attempts+1 >= r.cfg.MaxAttempts:
		if err = r.record(ctx, row, "failed"); err == nil {
			err = eventstore.FailOutbox(ctx, tx, row.ID, sendErr.Error())
		}
		if err == nil {
			log.WarnContext(ctx, "e-mail failed for good", slog.String("error", sendErr.Error()))
		}
	default:
		wait := r.backoff(row.Attempts + 1)
		err = eventstore.RetryOutbox(ctx, tx, row.ID, sendErr.Error(), wait)
		if err == nil {
			log.InfoContext(ctx, "e-mail not sent; will retry", slog.String("error", sendErr.Error()), slog.Duration("retry_in", wait))
		}
	}
	if errors.Is(err, ErrErased) {
		if err = eventstore.ForgetOutbox(ctx, tx, row.ID); err == nil {
			log.InfoContext(ctx, "customer erased during delivery; the message is forgotten")
		}
	}
	if err != nil {
		_ = tx.Rollback()
		log.ErrorContext(ctx, "record delivery outcome", slog.String("error", err.Error()))
	}
	return nil
}

// record tells Config.Record how row ended.
func (r *Relay) record(ctx context.Context, row eventstore.DueOutbox, status string) error {
	if r.cfg.Record == nil || row.CustomerID == "" {
		return nil
	}
	return r.cfg.Record(ctx, Outcome{TenantID: row.TenantID, CustomerID: row.CustomerID, MessageID: row.ID, Kind: row.Kind,
		Message: row.Message, Status: status})
}

// deliver renders and sends one row.
func (r *Relay) deliver(ctx context.Context, row eventstore.DueOutbox) error {
	payload, err := r.open(ctx, row)
	if err != nil {
		return err
	}
	out, err := render(row.Kind, row.ID, payload, r.from, r.baseURL, row.Created)
	if err != nil {
		return &PermanentError{Err: err}
	}
	return r.smtp.Send(ctx, r.from.Address, out.to, out.msg)
}

// backoff is the wait after the n-th failed attempt: Backoff·2^(n-1), at
// most MaxBackoff, with up to 10% jitter so that rows failed together do
// not all come back together.
func (r *Relay) backoff(n int) time.Duration {
	d := r.cfg.Backoff
	for i := 1; i < n && d < r.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.cfg.MaxBackoff)
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

// wakeBackoff makes an idle subscriber wait for a wake-up or the poll
// interval, whichever comes first.
type wakeBackoff struct {
	ctx  context.Context
	wake <-chan struct{}
	poll time.Duration
	log  *slog.Logger
}

// wakeSpacing is the least time between two queries started by wake-ups:
// every commit wakes the relay, and under load one look per spacing is
// plenty.
const wakeSpacing = 50 * time.Millisecond

func (b *wakeBackoff) HandleError(_ watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err != nil {
		if b.ctx.Err() == nil {
			b.log.Warn("outbox query failed", slog.String("error", err.Error()))
		}
		return b.poll
	}
	if !noMsg {
		return 0
	}
	t := time.NewTimer(b.poll)
	defer t.Stop()
	select {
	case <-b.wake:
		return wakeSpacing
	case <-t.C:
	case <-b.ctx.Done():
	}
	return 0
}
