package main

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Evidence of what bounds a run: where the database's sessions spend their
// time (pg_stat_activity sampled) and who used the CPUs.

// waitSampler samples pg_stat_activity of one database every 50 ms (more
// often, its own query became a visible share of the load it measures).
type waitSampler struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	samples int
	counts  map[string]int
}

// qWaits classifies each non-idle session of the database: the projections
// (their SQL names a read-model or checkpoint table, or is the Watermill
// subscriber's BEGIN or no-op ack) or the rest (commands, inserts, auth), and what it is doing: on CPU (active, no wait event),
// waiting (wait event type:name), or idle inside a transaction (waiting for
// its client, the Go side).
const qWaits = `SELECT CASE WHEN query ~ '(projection_checkpoints|ledger_checkpoint_claim|my_clients|customer_list|assignment_intervals|audit_log|notifications)'
              OR query IN ('begin isolation level read committed', 'SELECT 1')
            THEN 'projections' ELSE 'commands' END || ' ' ||
       CASE WHEN state = 'idle in transaction' THEN 'idle in tx (client side)'
            WHEN wait_event IS NULL THEN 'CPU'
            ELSE wait_event_type || ':' || wait_event END AS what, count(*)
FROM pg_stat_activity
WHERE datname = $1 AND pid <> pg_backend_pid()
  AND (state = 'idle in transaction' OR (state = 'active' AND query NOT LIKE 'LISTEN%'))
GROUP BY 1`

func startWaitSampler(ctx context.Context, admin *pgxpool.Pool, db string) *waitSampler {
	w := &waitSampler{stop: make(chan struct{}), done: make(chan struct{}), counts: map[string]int{}}
	go func() {
		defer close(w.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rows, err := admin.Query(ctx, qWaits, db)
			if err != nil {
				continue
			}
			w.mu.Lock()
			w.samples++
			for rows.Next() {
				var what string
				var n int
				if rows.Scan(&what, &n) == nil {
					w.counts[what] += n
				}
			}
			w.mu.Unlock()
			rows.Close()
		}
	}()
	return w
}

// waitShare is the average number of sessions in a state.
type waitShare struct {
	What     string  `json:"what"`
	Sessions float64 `json:"avg_sessions"`
}

// finish stops sampling and returns the average number of sessions per
// state, busiest first.
func (w *waitSampler) finish() []waitShare {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []waitShare
	for k, v := range w.counts {
		out = append(out, waitShare{What: k, Sessions: float64(v) / float64(max(1, w.samples))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Sessions > out[j].Sessions })
	if len(out) > 12 {
		out = out[:12]
	}
	return out
}

// cpuSnap is CPU time so far: this process, each process of the cluster
// (its postmaster and the postmaster's children; other clusters on the
// machine are not counted), and the whole machine (busy and total), in
// seconds.
type cpuSnap struct {
	at          time.Time
	self        float64
	postmaster  int
	cluster     map[int]float64
	busy, steal float64
	total       float64
}

// cpuUse is a run's CPU split, in cores (1.0 = one core busy all along).
// Machine minus bench minus postgres is everyone else on the machine.
type cpuUse struct {
	Bench    float64 `json:"bench_process_cores"`
	Postgres float64 `json:"postgres_cores"`
	Machine  float64 `json:"machine_busy_cores"`
	Others   float64 `json:"other_processes_cores"`
	// Steal is CPU time the hypervisor gave to other guests while this
	// one wanted to run: a slow-down no code here can cause or cure.
	Steal float64 `json:"steal_cores"`
	Cores int     `json:"cores"`
}

const clkTck = 100.0 // USER_HZ on Linux

// procStat returns a process's parent and CPU seconds.
func procStat(statPath string) (ppid int, secs float64, ok bool) {
	b, err := os.ReadFile(statPath)
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	close := strings.LastIndexByte(s, ')')
	if close < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[close+1:])
	// after the comm: state(0) ppid(1) ... utime(11) stime(12)
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return ppid, (u + st) / clkTck, true
}

// postmasterPID is the parent of one of the cluster's backends.
func postmasterPID(ctx context.Context, admin *pgxpool.Pool) int {
	var pid int
	if err := admin.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		return 0
	}
	ppid, _, _ := procStat(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	return ppid
}

func takeCPU(postmaster int) cpuSnap {
	c := cpuSnap{at: time.Now(), postmaster: postmaster, cluster: map[int]float64{}}
	_, c.self, _ = procStat("/proc/self/stat")
	if postmaster > 0 {
		dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, d := range dirs {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
			if ppid, secs, ok := procStat(d); ok && (pid == postmaster || ppid == postmaster) {
				c.cluster[pid] = secs
			}
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			x, _ := strconv.ParseFloat(v, 64)
			if i >= 8 { // guest times are already in user
				break
			}
			c.total += x / clkTck
			switch i {
			case 3, 4: // idle, iowait
			case 7:
				c.steal += x / clkTck
			default:
				c.busy += x / clkTck
			}
		}
	}
	return c
}

// since is the CPU used between s and now. A cluster process that exited
// meanwhile is missed; the pools keep theirs for the whole run.
func (s cpuSnap) since() cpuUse {
	n := takeCPU(s.postmaster)
	wall := n.at.Sub(s.at).Seconds()
	if wall <= 0 {
		return cpuUse{}
	}
	var pg float64
	for pid, secs := range n.cluster {
		pg += secs - s.cluster[pid] // a new process counts from 0
	}
	cores := 1
	if n.total > s.total {
		cores = int((n.total-s.total)/wall + 0.5)
	}
	u := cpuUse{Bench: (n.self - s.self) / wall, Postgres: pg / wall, Machine: (n.busy - s.busy) / wall,
		Steal: (n.steal - s.steal) / wall, Cores: cores}
	u.Others = max(0, u.Machine-u.Bench-u.Postgres)
	return u
}
