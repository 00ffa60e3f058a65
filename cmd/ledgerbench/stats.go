package main

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// latencies are durations in milliseconds.
type latencies []float64

func (l latencies) percentile(p float64) float64 {
	if len(l) == 0 {
		return math.NaN()
	}
	s := slices.Clone(l)
	slices.Sort(s)
	// nearest rank
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (l latencies) mean() float64 {
	if len(l) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, v := range l {
		sum += v
	}
	return sum / float64(len(l))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summary is what the JSON keeps of a latency distribution.
type summary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p99_9_ms"`
	Max  float64 `json:"max_ms"`
}

func summarize(l latencies) summary {
	return summary{N: len(l), Mean: l.mean(), P50: l.percentile(50), P90: l.percentile(90), P99: l.percentile(99),
		P999: l.percentile(99.9), Max: l.percentile(100)}
}

// loopResult is one closed-loop run.
type loopResult struct {
	Clients   int     `json:"clients"`
	Ops       int64   `json:"ops"`
	Errors    int64   `json:"errors"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_s"`
	Latency   summary `json:"latency"`
	FirstErr  string  `json:"first_error,omitempty"`
}

type observed struct {
	loopResult
	cpu   cpuUse
	waits []waitShare
	// lat are the measured latencies, for merging runs (mergeObserved).
	lat latencies
}

// mergeObserved is the runs of one closed loop taken in turns as one run:
// operations and time added up, latencies pooled, CPU and session states
// averaged over the measured time.
func mergeObserved(runs []observed) observed {
	var out observed
	if len(runs) == 0 {
		return out
	}
	sessions := map[string]float64{}
	var order []string
	for _, r := range runs {
		out.Clients = r.Clients
		out.Ops += r.Ops
		out.Errors += r.Errors
		out.Seconds += r.Seconds
		if out.FirstErr == "" {
			out.FirstErr = r.FirstErr
		}
		out.lat = append(out.lat, r.lat...)
		out.cpu.Cores = r.cpu.Cores
		out.cpu.Bench += r.cpu.Bench * r.Seconds
		out.cpu.Postgres += r.cpu.Postgres * r.Seconds
		out.cpu.Machine += r.cpu.Machine * r.Seconds
		out.cpu.Others += r.cpu.Others * r.Seconds
		out.cpu.Steal += r.cpu.Steal * r.Seconds
		for _, w := range r.waits {
			if _, ok := sessions[w.What]; !ok {
				order = append(order, w.What)
			}
			sessions[w.What] += w.Sessions * r.Seconds
		}
	}
	if out.Seconds > 0 {
		out.OpsPerSec = float64(out.Ops) / out.Seconds
		out.cpu.Bench /= out.Seconds
		out.cpu.Postgres /= out.Seconds
		out.cpu.Machine /= out.Seconds
		out.cpu.Others /= out.Seconds
		out.cpu.Steal /= out.Seconds
		for _, what := range order {
			out.waits = append(out.waits, waitShare{What: what, Sessions: sessions[what] / out.Seconds})
		}
		slices.SortStableFunc(out.waits, func(a, b waitShare) int { return cmp.Compare(b.Sessions, a.Sessions) })
	}
	out.Latency = summarize(out.lat)
	return out
}

// closedLoopHooks runs op from clients goroutines, each issuing the next op
// as soon as the previous one answers: a warm-up that is not measured, then
// dur measured, calling begin when the measurement starts and end when it
// stops.
func closedLoopHooks(ctx context.Context, clients int, warmup, dur time.Duration, op func(ctx context.Context, rng *rand.Rand) error,
	begin func(), end func() (cpuUse, []waitShare)) observed {
	var obs observed
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		ops, errs atomic.Int64
		firstErr  atomic.Value
		wg        sync.WaitGroup
	)
	per := make([]latencies, clients)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w)+1, uint64(time.Now().UnixNano())))
			for !stop.Load() && ctx.Err() == nil {
				t0 := time.Now()
				err := op(ctx, rng)
				d := time.Since(t0)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(err.Error())
					}
					continue
				}
				ops.Add(1)
				per[w] = append(per[w], ms(d))
			}
		}()
	}
	sleep(ctx, warmup)
	if begin != nil {
		begin()
	}
	measuring.Store(true)
	began := time.Now()
	sleep(ctx, dur)
	measuring.Store(false)
	if end != nil {
		obs.cpu, obs.waits = end()
	}
	elapsed := time.Since(began)
	stop.Store(true)
	wg.Wait()
	var all latencies
	for _, l := range per {
		all = append(all, l...)
	}
	r := loopResult{Clients: clients, Ops: ops.Load(), Errors: errs.Load(), Seconds: elapsed.Seconds(),
		OpsPerSec: float64(ops.Load()) / elapsed.Seconds(), Latency: summarize(all)}
	if v, ok := firstErr.Load().(string); ok {
		r.FirstErr = v
	}
	obs.loopResult = r
	obs.lat = all
	return obs
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
