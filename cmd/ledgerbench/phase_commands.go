package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/assignment-ledger/ledger/commands"
)

// commandRun is one concurrency level of the commands phase.
type commandRun struct {
	Clients int        `json:"clients"`
	Raw     loopResult `json:"raw_insert"`
	Command loopResult `json:"assign_user_http"`
	Ratio   float64    `json:"ratio"`
	// WAL flushes and bytes per operation (pg_stat_wal): group commit
	// shows as fewer syncs than commits.
	RawWALSyncsPerOp float64 `json:"raw_wal_syncs_per_op"`
	RawWALBytesPerOp float64 `json:"raw_wal_bytes_per_op"`
	CmdWALSyncsPerOp float64 `json:"cmd_wal_syncs_per_op"`
	CmdWALBytesPerOp float64 `json:"cmd_wal_bytes_per_op"`
	// Events the slowest projection had not applied when the run ended,
	// and how long it then took to apply them.
	BacklogAtEnd int64 `json:"projection_backlog_at_end"`
	// Commands per transaction (the group committer's groups).
	Groups       uint64             `json:"groups"`
	GroupMean    float64            `json:"group_size_mean"`
	GroupP50     int                `json:"group_size_p50"`
	GroupP99     int                `json:"group_size_p99"`
	DrainSeconds float64            `json:"projection_drain_s"`
	DrainEach    map[string]float64 `json:"projection_drain_each_s,omitempty"`
	// What the database sessions did and who used the CPUs during the
	// measured part of each run.
	RawWaits []waitShare `json:"raw_db_sessions"`
	CmdWaits []waitShare `json:"cmd_db_sessions"`
	RawCPU   cpuUse      `json:"raw_cpu"`
	CmdCPU   cpuUse      `json:"cmd_cpu"`
	// CPU per operation, in µs: the bench process (HTTP server and client,
	// commands, projections) and PostgreSQL, for the raw insert and for
	// the command.
	RawCPUPerOp cpuPerOp `json:"raw_cpu_per_op_us"`
	CmdCPUPerOp cpuPerOp `json:"cmd_cpu_per_op_us"`
}

// cpuPerOp is CPU time per operation in µs.
type cpuPerOp struct {
	Bench    float64 `json:"bench_process"`
	Postgres float64 `json:"postgres"`
	Machine  float64 `json:"machine"`
}

func perOp(u cpuUse, opsPerSec float64) cpuPerOp {
	if opsPerSec <= 0 {
		return cpuPerOp{}
	}
	return cpuPerOp{Bench: u.Bench * 1e6 / opsPerSec, Postgres: u.Postgres * 1e6 / opsPerSec, Machine: u.Machine * 1e6 / opsPerSec}
}

const qCreateRaw = `CREATE TABLE bench_raw (
    id          bigserial PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    stream_id   uuid NOT NULL,
    data        jsonb NOT NULL,
    metadata    jsonb NOT NULL,
    recorded_at timestamptz NOT NULL
)`

const qRawInsert = `INSERT INTO bench_raw (tenant_id, stream_id, data, metadata, recorded_at) VALUES ($1, $2, $3, $4, $5)`

func runCommands(ctx context.Context, o options, srv *server, rep *report) error {
	var opts []commands.Option
	if o.committers > 0 {
		opts = append(opts, commands.WithCommitters(o.committers))
	}
	s, err := startService(ctx, srv, "commands", 32, srv.log, opts...)
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
	if _, err := s.pool.Exec(ctx, qCreateRaw); err != nil {
		return err
	}
	if o.noProjections {
		// Diagnostic only: the command's own cost without the projections
		// competing for the CPUs. Not the figure the target is about.
		s.stopRunner()
		<-s.runnerDone
		s.runnerDone <- nil
	}

	// The raw row is an event-sized row: the same columns' worth of data
	// and metadata JSON as an UserAssigned event.
	rawOp := func(ctx context.Context, rng *rand.Rand) error {
		customer, user, corr := uuid.New(), uuid.New(), uuid.New()
		data := `{"lead": false, "user_id": "` + user.String() + `", "customer_id": "` + customer.String() + `"}`
		meta := `{"actor": {"name": "Bench Admin", "user_id": "` + s.admin.UserID + `"}, "correlation_id": "` + corr.String() + `"}`
		// [16]byte, not uuid.UUID: pgx encodes a uuid.UUID through its
		// driver.Valuer string, a failed binary attempt and a formatted
		// error, which cost the raw side an eighth of its client CPU.
		_, err := s.pool.Exec(ctx, qRawInsert, s.tenantID, [16]byte(customer), data, meta, time.Now())
		return err
	}
	cmdOp := func(ctx context.Context, rng *rand.Rand) error {
		c, u, err := s.nextPair(rng)
		if err != nil {
			return err
		}
		_, err = s.assign(ctx, c, u)
		return err
	}

	var runs []commandRun
	for _, c := range o.clients {
		var r commandRun
		r.Clients = c
		fmt.Fprintf(os.Stderr, "   %d client(s): raw INSERT and AssignUser over HTTP, %d turns each ...\n", c, o.turns)
		var raws, cmds []observed
		var rw, cw walStats
		// Only the command turns run commands: the counts over all turns
		// are theirs.
		gs0 := s.cmd.GroupStats()
		for turn := range o.turns {
			// The first turn of each side warms it up fully (pools, caches,
			// connections); later ones only until the closed loop is
			// running again.
			warmup := o.warmup
			if turn > 0 {
				warmup = min(o.warmup, turnWarmup)
			}
			w0 := readWAL(ctx, s.pool)
			raws = append(raws, observedLoop(ctx, srv, s.db, c, warmup, o.duration/time.Duration(o.turns), rawOp))
			w1 := readWAL(ctx, s.pool)
			cmds = append(cmds, observedLoop(ctx, srv, s.db, c, warmup, o.duration/time.Duration(o.turns), cmdOp))
			w2 := readWAL(ctx, s.pool)
			rw, cw = rw.add(w1.sub(w0)), cw.add(w2.sub(w1))
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		raw, cmd := mergeObserved(raws), mergeObserved(cmds)
		r.Raw, r.RawWaits, r.RawCPU = raw.loopResult, raw.waits, raw.cpu
		r.Command, r.CmdWaits, r.CmdCPU = cmd.loopResult, cmd.waits, cmd.cpu
		gs := s.cmd.GroupStats().Sub(gs0)
		r.Groups, r.GroupP50, r.GroupP99 = gs.Groups(), gs.Quantile(0.50), gs.Quantile(0.99)
		if r.Groups > 0 {
			r.GroupMean = float64(gs.Commands()) / float64(r.Groups)
		}
		// The WAL deltas include the warm-ups; per op over all ops run.
		warmups := o.warmup + time.Duration(o.turns-1)*min(o.warmup, turnWarmup)
		rawAll := float64(r.Raw.Ops) * (o.duration + warmups).Seconds() / o.duration.Seconds()
		cmdAll := float64(r.Command.Ops) * (o.duration + warmups).Seconds() / o.duration.Seconds()
		if rawAll > 0 {
			r.RawWALSyncsPerOp, r.RawWALBytesPerOp = float64(rw.Syncs)/rawAll, float64(rw.Bytes)/rawAll
		}
		if cmdAll > 0 {
			r.CmdWALSyncsPerOp, r.CmdWALBytesPerOp = float64(cw.Syncs)/cmdAll, float64(cw.Bytes)/cmdAll
		}
		if r.Raw.OpsPerSec > 0 {
			r.Ratio = r.Command.OpsPerSec / r.Raw.OpsPerSec
		}
		r.RawCPUPerOp, r.CmdCPUPerOp = perOp(r.RawCPU, r.Raw.OpsPerSec), perOp(r.CmdCPU, r.Command.OpsPerSec)
		r.BacklogAtEnd, _ = s.backlog(ctx)
		if o.noProjections {
			r.BacklogAtEnd = 0
		}
		var d time.Duration
		var each map[string]float64
		if !o.noProjections {
			d, each, err = s.drain(ctx, 5*time.Minute)
		}
		r.DrainEach = each
		if err != nil {
			return fmt.Errorf("projections catching up after %d clients: %w", c, err)
		}
		r.DrainSeconds = d.Seconds()
		fmt.Fprintf(os.Stderr, "   %d client(s): raw %.0f/s, AssignUser %.0f/s, ratio %.2f, group size p50/p99 %d/%d (mean %.1f), "+
			"CPU µs/op bench+postgres: command %.0f+%.0f, raw %.0f+%.0f, projection backlog %d (drained in %s)\n",
			c, r.Raw.OpsPerSec, r.Command.OpsPerSec, r.Ratio, r.GroupP50, r.GroupP99, r.GroupMean,
			r.CmdCPUPerOp.Bench, r.CmdCPUPerOp.Postgres, r.RawCPUPerOp.Bench, r.RawCPUPerOp.Postgres,
			r.BacklogAtEnd, d.Round(time.Millisecond))
		runs = append(runs, r)

		name := func(what string) string { return fmt.Sprintf("%s @%d", what, c) }
		note := ""
		if r.Command.Errors > 0 {
			note = fmt.Sprintf("%d failed commands, first: %s", r.Command.Errors, r.Command.FirstErr)
		}
		rep.add(figure{Phase: "commands", Name: name("AssignUser HTTP"), Value: r.Command.OpsPerSec, Unit: "ops/s", Note: note})
		rep.add(figure{Phase: "commands", Name: name("AssignUser p50"), Value: r.Command.Latency.P50, Unit: "ms"})
		rep.add(figure{Phase: "commands", Name: name("AssignUser p99"), Value: r.Command.Latency.P99, Unit: "ms"})
		rawNote := ""
		if r.Raw.Errors > 0 {
			rawNote = fmt.Sprintf("%d failed inserts, first: %s", r.Raw.Errors, r.Raw.FirstErr)
		}
		rep.add(figure{Phase: "commands", Name: name("raw INSERT"), Value: r.Raw.OpsPerSec, Unit: "ops/s", Note: rawNote})
		rep.add(figure{Phase: "commands", Name: name("raw INSERT p50"), Value: r.Raw.Latency.P50, Unit: "ms"})
		rep.add(figure{Phase: "commands", Name: name("raw INSERT p99"), Value: r.Raw.Latency.P99, Unit: "ms"})
		rep.add(figure{Phase: "commands", Name: name("AssignUser group size p50"), Value: float64(r.GroupP50), Unit: "commands/tx"})
		rep.add(figure{Phase: "commands", Name: name("AssignUser group size p99"), Value: float64(r.GroupP99), Unit: "commands/tx"})
		rep.add(figure{Phase: "commands", Name: name("AssignUser CPU bench process"), Value: r.CmdCPUPerOp.Bench, Unit: "µs/op"})
		rep.add(figure{Phase: "commands", Name: name("AssignUser CPU postgres"), Value: r.CmdCPUPerOp.Postgres, Unit: "µs/op"})
		rep.add(figure{Phase: "commands", Name: name("raw INSERT CPU bench process"), Value: r.RawCPUPerOp.Bench, Unit: "µs/op"})
		rep.add(figure{Phase: "commands", Name: name("raw INSERT CPU postgres"), Value: r.RawCPUPerOp.Postgres, Unit: "µs/op"})
		ratio := figure{Phase: "commands", Name: name("ratio cmd/raw"), Value: r.Ratio, Unit: "x"}
		switch {
		case o.noProjections:
		case c >= 16:
			ratio = targetAtLeast(ratio, 0.60, ">= 0.60")
		case c == 1:
			ratio = targetAtLeast(ratio, 0.20, ">= 0.20 (no worse than before group commit)")
		}
		if o.noProjections {
			ratio.Note = "DIAGNOSTIC RUN: projections not running (-no-projections)"
		}
		rep.add(ratio)
	}
	rep.detail("commands", map[string]any{
		"runs": runs,
		"note": "closed loop: each client sends its next request when the previous one answers. " +
			"The two sides take turns (-turns, -duration split among them), so that a machine whose speed drifts during the phase slows both alike; each side's turns are reported merged. " +
			"AssignUser: POST /v1/customers/{id}/assignees through an in-process net/http server (real router, admin API key), " +
			"random customer, a user not yet on its team; projections running (ledger serve's Runner). " +
			"raw INSERT: one autocommit single-row INSERT of an event-sized row (uuid, uuid, jsonb data, jsonb metadata, timestamptz) into bench_raw via the same pgx pool.",
		"customers": o.cmdCustomers, "users": o.cmdUsers, "committers": o.committers, "turns": o.turns,
	})
	return nil
}

// turnWarmup is the warm-up of every turn after a side's first.
const turnWarmup = 300 * time.Millisecond

// observedLoop is closedLoop with the database's session states sampled and
// the CPU split measured over the measured part.
func observedLoop(ctx context.Context, srv *server, db string, clients int, warmup, dur time.Duration,
	op func(ctx context.Context, rng *rand.Rand) error) observed {
	var (
		ws  *waitSampler
		cpu cpuSnap
	)
	return closedLoopHooks(ctx, clients, warmup, dur, op, func() {
		ws = startWaitSampler(ctx, srv.admin, db)
		cpu = takeCPU(postmasterPID(ctx, srv.admin))
	}, func() (cpuUse, []waitShare) {
		return cpu.since(), ws.finish()
	})
}
