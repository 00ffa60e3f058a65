// Package readroute chooses where a read goes: a streaming replica (a hot
// standby of the primary) that is up and close enough behind, or the
// primary. It checks each replica in the background (is it still in
// recovery, how far has it replayed the primary's WAL) and answers at once;
// what a replica must hold for one read (a position) the caller asks
// through Await. It knows nothing of the service's tables.
package readroute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxLag is how far behind a replica may be to serve a read that
// asks for no position (LEDGER_REPLICA_MAX_LAG).
const DefaultMaxLag = time.Second

// checkInterval is how often each replica and the primary's WAL position
// are read: the lag a read can see is off by at most about this.
const checkInterval = 100 * time.Millisecond

// Target names where a read went, for the metric's label.
const (
	TargetPrimary = "primary"
	TargetReplica = "replica"
)

// Replica is one streaming replica: its pool and what the last check saw.
type Replica struct {
	name string
	pool *pgxpool.Pool

	mu sync.Mutex
	// up: the last check reached it, it is in recovery (a standby) and no
	// read failed on it since.
	up bool
	// replay is the WAL position it had replayed at the last check.
	replay uint64
	lag    time.Duration
}

// Name is host:port, the metric's label.
func (r *Replica) Name() string { return r.name }

// Pool is the replica's connection pool.
func (r *Replica) Pool() *pgxpool.Pool { return r.pool }

func (r *Replica) state() (up bool, lag time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up, r.lag
}

// sample is the primary's WAL position at a moment.
type sample struct {
	at  time.Time
	lsn uint64
}

// Router routes reads between the primary and its replicas.
type Router struct {
	primary  *pgxpool.Pool
	replicas []*Replica
	maxLag   time.Duration
	log      *slog.Logger
	next     atomic.Uint64

	mu sync.Mutex
	// samples are the primary's WAL positions of the last moments, oldest
	// first: a replica that has replayed a sample's position is at most as
	// far behind as that sample is old.
	samples []sample

	reads *prometheus.CounterVec
	lag   *prometheus.GaugeVec
}

// Config is what a Router is made of.
type Config struct {
	// URLs of the replicas (LEDGER_REPLICA_URLS, comma-separated).
	URLs []string
	// MaxLag bounds how far behind a replica may serve a read without a
	// position (default DefaultMaxLag).
	MaxLag time.Duration
	// MaxConns per replica pool (default 16).
	MaxConns int32
}

// New opens a pool per replica (lazily: a replica that is down now is
// taken when it comes up) and registers the metrics on reg. Call Run to
// keep the replicas checked, and Close at the end.
func New(ctx context.Context, primary *pgxpool.Pool, c Config, log *slog.Logger, reg prometheus.Registerer) (*Router, error) {
	if c.MaxLag <= 0 {
		c.MaxLag = DefaultMaxLag
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 16
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Router{
		primary: primary, maxLag: c.MaxLag, log: log,
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_read_queries_total",
			Help: "Reads served, by where they went: the primary or a replica.",
		}, []string{"target"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ledger_replica_lag_seconds",
			Help: "How far each replica's replay is behind the primary's WAL: the age of the oldest WAL it lacks (while it is down, up to the 10 s, or 4 x the bound, the router keeps).",
		}, []string{"replica"}),
	}
	r.reads.WithLabelValues(TargetPrimary)
	r.reads.WithLabelValues(TargetReplica)
	for _, u := range c.URLs {
		cfg, err := pgxpool.ParseConfig(u)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("replica URL: %w", err)
		}
		if len(cfg.ConnConfig.Fallbacks) > 0 {
			r.Close()
			return nil, fmt.Errorf("replica URL %q names several hosts: list each replica on its own", redact(u))
		}
		cfg.MaxConns = c.MaxConns
		cfg.ConnConfig.RuntimeParams["application_name"] = "ledger"
		if _, ok := cfg.ConnConfig.RuntimeParams["jit"]; !ok {
			cfg.ConnConfig.RuntimeParams["jit"] = "off"
		}
		// A replica that does not answer is skipped, not waited for.
		if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > 2*time.Second {
			cfg.ConnConfig.ConnectTimeout = 2 * time.Second
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("replica %s: %w", redact(u), err)
		}
		name := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
		r.replicas = append(r.replicas, &Replica{name: name, pool: pool})
	}
	if reg != nil {
		if err := reg.Register(r.reads); err != nil {
			r.Close()
			return nil, err
		}
		if err := reg.Register(r.lag); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// Replicas lists the replicas in the order of the URLs.
func (r *Router) Replicas() []*Replica { return r.replicas }

// Close closes the replicas' pools.
func (r *Router) Close() {
	for _, rep := range r.replicas {
		rep.pool.Close()
	}
}

// Run checks the primary's WAL position and every replica until ctx ends.
func (r *Router) Run(ctx context.Context) {
	t := time.NewTicker(checkInterval)
	defer t.Stop()
	for {
		r.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check reads the primary's WAL position, then each replica's replay, once.
func (r *Router) Check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	// The primary first: a replica that has replayed what the primary had
	// a moment ago is at most that moment behind. Without a primary (a
	// failover under way) the samples stay as they were.
	var lsn string
	if err := r.primary.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err == nil {
		if v, err := parseLSN(lsn); err == nil {
			r.addSample(time.Now(), v)
		}
	}
	var wg sync.WaitGroup
	for _, rep := range r.replicas {
		wg.Go(func() { r.checkReplica(ctx, rep) })
	}
	wg.Wait()
}

func (r *Router) addSample(at time.Time, lsn uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.samples); n > 0 && r.samples[n-1].lsn > lsn {
		// A new primary on a timeline that restarted lower (not
		// PostgreSQL's way, but cheap to survive): start over.
		r.samples = r.samples[:0]
	}
	r.samples = append(r.samples, sample{at: at, lsn: lsn})
	// Keep what measures lags well past the bound.
	keep := at.Add(-max(10*time.Second, 4*r.maxLag))
	i := 0
	for i < len(r.samples)-1 && r.samples[i].at.Before(keep) {
		i++
	}
	r.samples = r.samples[i:]
}

// lagOf is how long ago the primary first had WAL past replay: 0 when the
// replica has replayed the newest sample.
func (r *Router) lagOf(replay uint64, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.samples {
		if s.lsn > replay {
			return max(now.Sub(s.at), 0)
		}
	}
	return 0
}

func (r *Router) checkReplica(ctx context.Context, rep *Replica) {
	var recovery bool
	var replay *string
	err := rep.pool.QueryRow(ctx, `SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text`).Scan(&recovery, &replay)
	rep.mu.Lock()
	defer rep.mu.Unlock()
	was := rep.up
	switch {
	case err != nil:
		rep.up = false
	case !recovery || replay == nil:
		// Promoted (a primary now, which DATABASE_URL reaches if it is the
		// primary) or never a standby: not a replica to read from.
		rep.up = false
		err = errors.New("not in recovery: not a standby")
	default:
		if v, perr := parseLSN(*replay); perr == nil {
			rep.replay = v
			rep.up = true
		} else {
			rep.up, err = false, perr
		}
	}
	// A replica that is down falls further behind as the primary moves on.
	rep.lag = r.lagOf(rep.replay, time.Now())
	r.lag.WithLabelValues(rep.name).Set(rep.lag.Seconds())
	if was != rep.up {
		if rep.up {
			r.log.Info("replica serves reads", slog.String("replica", rep.name))
		} else {
			r.log.Warn("replica skipped", slog.String("replica", rep.name), slog.Any("error", err))
		}
	}
}

// healthy lists the replicas that are up and at most MaxLag behind,
// starting at a rotating one so reads spread over them.
func (r *Router) healthy() []*Replica {
	n := len(r.replicas)
	if n == 0 {
		return nil
	}
	start := int(r.next.Add(1) % uint64(n))
	var out []*Replica
	for i := range n {
		rep := r.replicas[(start+i)%n]
		if up, lag := rep.state(); up && lag <= r.maxLag {
			out = append(out, rep)
		}
	}
	return out
}

// Fresh returns a replica that is up and at most MaxLag behind, or nil:
// the read then goes to the primary.
func (r *Router) Fresh() *Replica {
	if h := r.healthy(); len(h) > 0 {
		return h[0]
	}
	return nil
}

// Await returns a healthy replica for which reached answers true, asking
// them in turn until ctx ends, or nil: the read then goes to the primary.
// A replica whose reached fails is marked down until its next check.
func (r *Router) Await(ctx context.Context, reached func(ctx context.Context, rep *Replica) (bool, error)) *Replica {
	pause := 5 * time.Millisecond
	for {
		h := r.healthy()
		if len(h) == 0 {
			return nil
		}
		for _, rep := range h {
			ok, err := reached(ctx, rep)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				r.Failed(rep, err)
				continue
			}
			if ok {
				return rep
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(pause*2, 50*time.Millisecond)
	}
}

// Failed takes rep out of service until its next check finds it well: a
// read failed on it (and was answered by the primary).
func (r *Router) Failed(rep *Replica, err error) {
	rep.mu.Lock()
	was := rep.up
	rep.up = false
	rep.mu.Unlock()
	if was {
		r.log.Warn("replica failed a read; skipped until its next check", slog.String("replica", rep.name), slog.Any("error", err))
	}
}

// Served counts a read answered by target (TargetPrimary or TargetReplica).
func (r *Router) Served(target string) { r.reads.WithLabelValues(target).Inc() }

// parseLSN reads PostgreSQL's "X/Y" WAL position.
func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("WAL position %q", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("WAL position %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("WAL position %q: %w", s, err)
	}
	return h<<32 | l, nil
}

func redact(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "…" + u[i:]
		}
	}
	return u
}
