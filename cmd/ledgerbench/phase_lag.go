package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/projections"
)

// The lag phase sends AssignUser at a steady rate (open loop: request i is
// due at start + i/rate whatever the answers do) and measures, per command,
// the time from its HTTP answer (the commit) until my_clients,
// customer_list and the ledger log's tree (ledger_tree, in the other
// engine) have all applied it.
//
// Visibility is watched by one tracker, not a WaitFor per command: it wakes
// on the two read models' checkpoint notifications (and every 25 ms besides) and
// asks in one query which of the outstanding positions both checkpoints have
// passed; a checkpoint moves in the same transaction as the read-model
// writes, so passed means visible. One watcher keeps the measurement from
// loading the two cores with a query per waiter per wake-up.

type pendingPos struct {
	pos      int64
	answered time.Time
}

const qVisible = `SELECT e.position FROM events e
JOIN projection_checkpoints a ON a.consumer_group = 'my_clients'
JOIN projection_checkpoints b ON b.consumer_group = 'customer_list'
JOIN projection_checkpoints c ON c.consumer_group = 'ledger_tree'
WHERE e.position = ANY($1)
  AND (e.transaction_id, e.position) <= (a.last_transaction_id, a.last_position)
  AND (e.transaction_id, e.position) <= (b.last_transaction_id, b.last_position)
  AND (e.transaction_id, e.position) <= (c.last_transaction_id, c.last_position)`

type lagResult struct {
	TargetRate   int     `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	Sent         int64   `json:"sent"`
	Answered     int64   `json:"answered"`
	Errors       int64   `json:"errors"`
	FirstErr     string  `json:"first_error,omitempty"`
	Late         int64   `json:"dispatch_late"`
	Seconds      float64 `json:"seconds"`
	Lag          summary `json:"lag"`
	Unseen       int     `json:"never_visible"`
	// Response is from the request's due time (queueing included) to its
	// answer.
	Response summary `json:"response_from_due_time"`
	Workers  int     `json:"workers"`
	// WorstPerSecond is the worst lag (ms) of the commands answered in each
	// second of the run: whether the tail is a few stalls or everywhere.
	WorstPerSecond []float64 `json:"worst_lag_ms_per_second"`
	TrackerQs      int64     `json:"tracker_queries"`
	// CPU split and database session states over the measured run (and the
	// tracker's wait for the stragglers).
	CPU       cpuUse             `json:"cpu"`
	Waits     []waitShare        `json:"db_sessions"`
	Backlog   int64              `json:"projection_backlog_after"`
	DrainEach map[string]float64 `json:"projection_drain_each_s"`
	// Folds says how the engine brought customers up to date
	// over the whole phase (set-up included): from the batch alone, or read.
	Folds projections.FoldStats `json:"fold_stats"`
}

func runLag(ctx context.Context, o options, srv *server, rep *report) error {
	s, err := startService(ctx, srv, "lag", 32, srv.log)
	if err != nil {
		return err
	}
	defer s.close()
	t0 := time.Now()
	if err := s.populate(ctx, o.cmdUsers, o.cmdCustomers); err != nil {
		return err
	}
	if _, err := s.catchUp(ctx, 2*time.Minute); err != nil {
		return fmt.Errorf("projections catching up on the set-up: %w", err)
	}
	if err := s.analyze(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "   set-up: %d users, %d customers in %s\n", o.cmdUsers, o.cmdCustomers, time.Since(t0).Round(time.Millisecond))

	cfg, err := srv.connConfig(s.db)
	if err != nil {
		return err
	}
	qconn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer qconn.Close(context.WithoutCancel(ctx))
	lconn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer lconn.Close(context.WithoutCancel(ctx))
	if _, err := lconn.Exec(ctx, `LISTEN ledger_checkpoints`); err != nil {
		return err
	}
	lctx, stopListen := context.WithCancel(ctx)
	listening := make(chan struct{})
	// The connection is closed (deferred above) only once the listener has
	// returned from it.
	defer func() { stopListen(); <-listening }()
	wake := make(chan struct{}, 1)
	go func() {
		defer close(listening)
		for {
			n, err := lconn.WaitForNotification(lctx)
			if err != nil {
				return
			}
			// Only the two measured read models decide visibility; the
			// other projections' batches would only add queries.
			if n.Payload != "my_clients" && n.Payload != "customer_list" && n.Payload != "ledger_tree" {
				continue
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()

	// Warm up the workers' connections and caches unmeasured, then run.
	res := lagResult{TargetRate: o.lagRate, Workers: o.lagWorkers}
	runOnce := func(rate int, dur time.Duration, measure bool) error {
		n := int(float64(rate) * dur.Seconds())
		jobs := make(chan time.Time, n+1)
		track := make(chan pendingPos, n+1)
		var (
			answered, errs, late atomic.Int64
			firstErr             onceErr
			respMu               sync.Mutex
			resp                 latencies
			wg                   sync.WaitGroup
		)
		for w := range o.lagWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w)+100, uint64(time.Now().UnixNano())))
				var mine latencies
				for due := range jobs {
					c, u, err := s.nextPair(rng)
					var pos int64
					if err == nil {
						pos, err = s.assign(ctx, c, u)
					}
					at := time.Now()
					if err != nil {
						errs.Add(1)
						firstErr.set(err)
						continue
					}
					answered.Add(1)
					mine = append(mine, ms(at.Sub(due)))
					track <- pendingPos{pos: pos, answered: at}
				}
				respMu.Lock()
				resp = append(resp, mine...)
				respMu.Unlock()
			}()
		}
		var lags latencies
		var unseen int
		var queries int64
		trackDone := make(chan error, 1)
		start := time.Now()
		var perSecond []float64 // worst lag of the commands answered in each second
		go func() {
			var err error
			lags, unseen, queries, err = trackVisibility(ctx, qconn, track, wake, func(at time.Time, lag float64) {
				i := int(at.Sub(start) / time.Second)
				if i < 0 {
					return
				}
				for len(perSecond) <= i {
					perSecond = append(perSecond, 0)
				}
				perSecond[i] = max(perSecond[i], lag)
			})
			trackDone <- err
		}()
		interval := time.Second / time.Duration(rate)
		for i := range n {
			due := start.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			} else if d < -5*time.Millisecond {
				late.Add(1)
			}
			if ctx.Err() != nil {
				break
			}
			jobs <- due
		}
		close(jobs)
		wg.Wait()
		elapsed := time.Since(start)
		close(track)
		if err := <-trackDone; err != nil {
			return err
		}
		if !measure {
			return nil
		}
		res.Sent, res.Answered, res.Errors, res.Late = int64(n), answered.Load(), errs.Load(), late.Load()
		if err := firstErr.get(); err != nil {
			res.FirstErr = err.Error()
		}
		res.Seconds = elapsed.Seconds()
		res.AchievedRate = float64(res.Answered) / elapsed.Seconds()
		res.Lag, res.Unseen, res.Response, res.TrackerQs = summarize(lags), unseen, summarize(resp), queries
		res.WorstPerSecond = perSecond
		return nil
	}
	fmt.Fprintf(os.Stderr, "   warm-up at %d/s for %s ...\n", o.lagRate, o.warmup)
	if err := runOnce(o.lagRate, o.warmup, false); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "   measuring at %d/s for %s ...\n", o.lagRate, o.lagDuration)
	ws, cpu0 := startWaitSampler(ctx, srv.admin, s.db), takeCPU(postmasterPID(ctx, srv.admin))
	if err := runOnce(o.lagRate, o.lagDuration, true); err != nil {
		ws.finish()
		return err
	}
	res.CPU, res.Waits = cpu0.since(), ws.finish()
	res.Backlog, _ = s.backlog(ctx)
	_, res.DrainEach, _ = s.drain(ctx, 5*time.Minute)
	res.Folds = s.runner.FoldStats()
	fmt.Fprintf(os.Stderr, "   achieved %.0f/s, lag p50 %.1f ms p99 %.1f ms, response p99 %.1f ms\n",
		res.AchievedRate, res.Lag.P50, res.Lag.P99, res.Response.P99)

	note := ""
	if res.Errors > 0 {
		note = fmt.Sprintf("%d failed commands, first: %s", res.Errors, res.FirstErr)
	}
	if res.Unseen > 0 {
		note += fmt.Sprintf(" %d commands never became visible within 30 s", res.Unseen)
	}
	rateFig := figure{Phase: "lag", Name: "achieved command rate", Value: res.AchievedRate, Unit: "ops/s", Note: note}
	rateFig = targetAtLeast(rateFig, 0.98*float64(o.lagRate), fmt.Sprintf(">= %d (98%%)", o.lagRate))
	rep.add(rateFig)
	rep.add(figure{Phase: "lag", Name: "commit→read model p50", Value: res.Lag.P50, Unit: "ms"})
	rep.add(targetBelow(figure{Phase: "lag", Name: "commit→read model p99", Value: res.Lag.P99, Unit: "ms"}, 50, "< 50 ms"))
	rep.add(figure{Phase: "lag", Name: "command response p99", Value: res.Response.P99, Unit: "ms",
		Note: "from the request's due time (open loop: queueing included)"})
	rep.detail("lag", map[string]any{
		"result": res,
		"note": "open loop: request i is due at start+i/rate and queued to the workers; lag = first observation of both " +
			"my_clients, customer_list and ledger_tree checkpoints at or past the command's event, minus the time its HTTP answer arrived. " +
			"One watcher (LISTEN ledger_checkpoints for the two groups + 25 ms fallback poll, one query per wake-up) instead of a WaitFor per command.",
	})
	return nil
}

// trackVisibility records, for each position received on in, the time from
// its answer until both customer projections have applied it. It returns
// when in is closed and everything is visible, or 30 s after in closed.
func trackVisibility(ctx context.Context, conn *pgx.Conn, in <-chan pendingPos, wake <-chan struct{}, seenAt func(answered time.Time, lag float64)) (latencies, int, int64, error) {
	var (
		lags    latencies
		pend    = map[int64]time.Time{}
		closed  bool
		giveUp  time.Time
		queries int64
	)
	// A checkpoint moves only in a batch's commit, which notifies: the
	// ticker is a fallback, not the way visibility is noticed. (Polling
	// every few milliseconds cost a tenth of a core on the machine under
	// test, at the expense of what is measured.) A position whose batch
	// committed before it reached the tracker is seen at the next
	// notification or tick: an error that only ever adds lag.
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		// Take in whatever has arrived.
	drain:
		for !closed {
			select {
			case p, ok := <-in:
				if !ok {
					closed, giveUp = true, time.Now().Add(30*time.Second)
					break drain
				}
				pend[p.pos] = p.answered
			default:
				break drain
			}
		}
		if len(pend) == 0 {
			if closed {
				return lags, 0, queries, nil
			}
			select {
			case p, ok := <-in:
				if !ok {
					closed, giveUp = true, time.Now().Add(30*time.Second)
				} else {
					pend[p.pos] = p.answered
				}
			case <-ctx.Done():
				return lags, len(pend), queries, ctx.Err()
			}
			continue
		}
		if closed && time.Now().After(giveUp) {
			return lags, len(pend), queries, nil
		}
		positions := make([]int64, 0, len(pend))
		for p := range pend {
			positions = append(positions, p)
		}
		rows, err := conn.Query(ctx, qVisible, positions)
		if err != nil {
			return lags, len(pend), queries, err
		}
		queries++
		seen, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		now := time.Now()
		if err != nil {
			return lags, len(pend), queries, err
		}
		for _, p := range seen {
			lag := ms(now.Sub(pend[p]))
			lags = append(lags, lag)
			seenAt(pend[p], lag)
			delete(pend, p)
		}
		if len(pend) == 0 {
			continue
		}
		select {
		case <-wake:
		case <-tick.C:
		case <-ctx.Done():
			return lags, len(pend), queries, ctx.Err()
		}
	}
}
