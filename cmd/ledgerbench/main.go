// Command ledgerbench measures the ledger against the performance targets of
// docs/DESIGN.md in one run, each figure beside the physical limit it is
// judged against:
//
//   - commands: AssignUser through the real HTTP API (in-process server on
//     127.0.0.1:0, real router, API key, projections running) against raw
//     single-row INSERT transactions of an event-sized row, at the same
//     concurrency on the same database;
//   - lag: commit-to-read-model time at a steady, open-loop command rate;
//   - catchup: how fast the running service's read models reach the
//     position of a 10,000-row CSV import and of a BulkEdit of 2 users ×
//     10,000 customers, beside a rebuild of the same events;
//   - rebuild: Runner.Rebuild("all") over a generated event store;
//   - reads: "My Clients" and the customer list filtered by assigned user over
//     a large read model, beside a primary-key lookup;
//   - replica: the same two reads through the API with every read on the
//     primary and through a streaming replica (a primary and a synchronous
//     standby of its own), and the time from killing the primary under
//     commands to the first command acknowledged by the promoted standby;
//   - bulk: BulkEdit add, BulkEdit set and a transfer over 10,000 customers,
//     each one all-or-nothing transaction (time and peak heap), and the
//     exports of those customers in every format;
//   - imports: CSV imports of 10,000 and 100,000 rows (time and peak heap),
//     then the exports of those 110,000 customers in every format.
//
// It prints a table (figure, target, pass/miss) and writes the same data with
// machine information to a JSON file. Each phase runs in a database of its
// own, created on DATABASE_URL's server and dropped when the phase ends.
//
//	DATABASE_URL=postgres://... go run ./cmd/ledgerbench [-quick] [-only commands,lag] [-out bench.json]
//
// `make bench` / `make bench-quick` start a throwaway durable cluster.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/assignment-ledger/ledger/commands"
)

// options are the command-line settings.
type options struct {
	quick bool
	only  map[string]bool
	out   string

	duration time.Duration // per measured command run
	warmup   time.Duration
	// turns is how many turns each side of the commands phase takes.
	turns   int
	clients []int

	cmdCustomers int // customers of the command and lag phases
	cmdUsers     int

	lagRate     int
	lagDuration time.Duration
	lagWorkers  int

	catchUpRows int

	rebuildEvents int
	rebuildUsers  int

	customers   int // read-model size
	users       int
	assignments int
	readQueries int

	bulkCustomers int

	importRows int // the imports phase's larger import (a tenth as many too)

	noProjections bool // diagnostic: commands phase without the Runner
	committers    int

	cpuProfile string // prefix: one profile per phase
	keep       bool   // keep the databases
	verbose    bool
}

var phases = []string{"commands", "lag", "catchup", "rebuild", "reads", "replica", "bulk", "imports"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv("DATABASE_URL"))
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ledgerbench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("ledgerbench", flag.ContinueOnError)
	only := fs.String("only", strings.Join(phases, ","), "phases to run, comma-separated: "+strings.Join(phases, ","))
	clients := fs.String("clients", "1,16,64", "concurrent clients of the command phase, comma-separated")
	fs.BoolVar(&o.quick, "quick", false, "small sizes and short runs (make bench-quick: under two minutes)")
	fs.StringVar(&o.out, "out", "bench.json", "JSON report file (empty: none)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured command run")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each command run")
	fs.IntVar(&o.turns, "turns", 4, "turns of raw INSERTs and AssignUser taken alternately in the commands phase, -duration split among them")
	fs.IntVar(&o.cmdCustomers, "cmd-customers", 5000, "customers of the command and lag phases")
	fs.IntVar(&o.cmdUsers, "cmd-users", 200, "users of the command and lag phases")
	fs.IntVar(&o.lagRate, "lag-rate", 1000, "commands per second of the lag phase (open loop)")
	fs.DurationVar(&o.lagDuration, "lag-duration", 0, "length of the lag run (default: -duration)")
	fs.IntVar(&o.lagWorkers, "lag-workers", 64, "HTTP clients the lag phase dispatches to")
	fs.IntVar(&o.catchUpRows, "catchup-rows", 10_000, "clients of the catch-up phase's import and bulk edit")
	fs.IntVar(&o.rebuildEvents, "rebuild-events", 1_000_000, "events in the rebuild phase's event store")
	fs.IntVar(&o.rebuildUsers, "rebuild-users", 1000, "users named by the rebuild phase's events")
	fs.IntVar(&o.customers, "customers", 1_000_000, "customers of the reads phase")
	fs.IntVar(&o.users, "users", 10_000, "users of the reads phase")
	fs.IntVar(&o.assignments, "assignments", 3_000_000, "assignments of the reads phase")
	fs.IntVar(&o.readQueries, "read-queries", 2000, "measured queries per read kind")
	fs.IntVar(&o.bulkCustomers, "bulk-customers", commands.MaxBulkCustomers, "customers of each bulk command of the bulk phase")
	fs.IntVar(&o.importRows, "import-rows", commands.MaxImportRows, "rows of the imports phase's larger import (and a tenth as many)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of each phase to PREFIX.<phase>.pprof")
	fs.IntVar(&o.committers, "committers", 0, "command groups committing at once in the commands phase (0: the service's default)")
	fs.BoolVar(&o.noProjections, "no-projections", false, "diagnostic: run the commands phase without the projections (no target verdict)")
	fs.BoolVar(&o.keep, "keep", false, "keep the phase databases (default: drop them)")
	fs.BoolVar(&o.verbose, "v", false, "log the service's warnings to stderr (the rebuild's phase timings are in the JSON report, rebuild_log)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		// Sizes that keep `make bench-quick` (cluster start and compile
		// included) under two minutes on 2 cores; explicit flags win.
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("duration", func() { o.duration = 3 * time.Second })
		def("warmup", func() { o.warmup = 500 * time.Millisecond })
		def("turns", func() { o.turns = 2 })
		def("cmd-customers", func() { o.cmdCustomers = 1000 })
		def("cmd-users", func() { o.cmdUsers = 50 })
		def("rebuild-events", func() { o.rebuildEvents = 100_000 })
		def("rebuild-users", func() { o.rebuildUsers = 200 })
		def("customers", func() { o.customers = 100_000 })
		def("users", func() { o.users = 1000 })
		def("assignments", func() { o.assignments = 300_000 })
		def("read-queries", func() { o.readQueries = 500 })
		def("import-rows", func() { o.importRows = 10_000 })
	}
	if o.lagDuration == 0 {
		o.lagDuration = o.duration
	}
	o.only = map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !slices.Contains(phases, p) {
			return o, fmt.Errorf("-only: unknown phase %q (choose from %s)", p, strings.Join(phases, ","))
		}
		o.only[p] = true
	}
	for _, c := range strings.Split(*clients, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(c), &n); err != nil || n < 1 {
			return o, fmt.Errorf("-clients: %q is not a positive number", c)
		}
		o.clients = append(o.clients, n)
	}
	switch {
	case o.turns < 1 || o.duration/time.Duration(o.turns) < 100*time.Millisecond:
		return o, errors.New("-turns must be at least 1, and leave each turn 100 ms of -duration")
	case o.cmdUsers < 2 || o.cmdCustomers < 1:
		return o, errors.New("-cmd-users must be at least 2 and -cmd-customers at least 1")
	case o.users < 1 || o.customers < 1 || o.assignments < 0:
		return o, errors.New("-users and -customers must be positive, -assignments not negative")
	case o.assignments > o.customers*o.users:
		return o, errors.New("-assignments exceeds -customers × -users")
	case o.bulkCustomers < 1 || o.bulkCustomers > commands.MaxBulkCustomers:
		return o, fmt.Errorf("-bulk-customers must be from 1 to %d", commands.MaxBulkCustomers)
	case o.lagRate < 1 || o.lagWorkers < 1:
		return o, errors.New("-lag-rate and -lag-workers must be positive")
	case o.importRows < 10 || o.importRows > commands.MaxImportRows:
		return o, fmt.Errorf("-import-rows must be from 10 to %d", commands.MaxImportRows)
	case o.catchUpRows < 1:
		return o, errors.New("-catchup-rows must be positive")
	case o.rebuildEvents < o.rebuildUsers+2:
		return o, errors.New("-rebuild-events must exceed -rebuild-users + 1")
	}
	return o, nil
}

// run runs the phases args select against the server of url (a
// PostgreSQL URL whose user may create databases).
func run(ctx context.Context, args []string, url string) error {
	o, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if url == "" {
		return errors.New("DATABASE_URL is not set (make bench starts a throwaway cluster)")
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400) // as ledger serve runs (cmd/ledger/serve.go)
	}

	logLevel := slog.LevelError
	var logOut io.Writer = os.Stderr
	if o.verbose {
		logLevel = slog.LevelWarn
	}
	log := slog.New(quietShutdown{slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: logLevel})})

	srv, err := openServer(ctx, url, log)
	if err != nil {
		return err
	}
	defer srv.close()

	rep := &report{Started: time.Now().UTC(), Command: strings.Join(append([]string{"ledgerbench"}, args...), " ")}
	rep.Machine = machineInfo(ctx, srv)
	rep.Tree = treeState()
	rep.Settings = settingsOf(o)
	printHeader(os.Stdout, rep)
	if rep.Machine.Fsync != "on" || rep.Machine.SynchronousCommit != "on" {
		fmt.Fprintf(os.Stdout, "WARNING: fsync=%s synchronous_commit=%s: not the production durability, the figures do not count\n\n",
			rep.Machine.Fsync, rep.Machine.SynchronousCommit)
	}

	type phase struct {
		name string
		run  func(ctx context.Context, o options, srv *server, rep *report) error
	}
	all := []phase{{"commands", runCommands}, {"lag", runLag}, {"catchup", runCatchUp}, {"rebuild", runRebuild}, {"reads", runReads}, {"replica", runReplica}, {"bulk", runBulk}, {"imports", runImports}}
	var failed []string
	for _, p := range all {
		if !o.only[p.name] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "== %s (load average %s)\n", p.name, loadAvg())
		rep.LoadAvg = append(rep.LoadAvg, p.name+" start: "+loadAvg())
		began := time.Now()
		stopProfile, err := startProfile(o.cpuProfile, p.name)
		if err != nil {
			return err
		}
		err = p.run(ctx, o, srv, rep)
		stopProfile()
		if !o.keep {
			// Now rather than at the end: autovacuum would otherwise work
			// through what this phase wrote while the next one measures.
			srv.dropAll(context.WithoutCancel(ctx))
		}
		rep.PhaseSeconds = append(rep.PhaseSeconds, phaseTime{Phase: p.name, Seconds: time.Since(began).Seconds()})
		if err != nil {
			fmt.Fprintf(os.Stderr, "ledgerbench: phase %s failed: %v\n", p.name, err)
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", p.name, err))
			failed = append(failed, p.name)
		}
		fmt.Fprintf(os.Stderr, "== %s done in %s\n", p.name, time.Since(began).Round(time.Millisecond))
		rep.LoadAvg = append(rep.LoadAvg, p.name+" end: "+loadAvg())
	}
	rep.Finished = time.Now().UTC()
	printTable(os.Stdout, rep)
	if o.out != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", o.out, err)
		}
		fmt.Fprintf(os.Stdout, "\nwrote %s\n", o.out)
	}
	if len(failed) > 0 {
		return fmt.Errorf("phase(s) failed: %s", strings.Join(failed, ", "))
	}
	return ctx.Err()
}

func startProfile(prefix, phase string) (func(), error) {
	if prefix == "" {
		return func() {}, nil
	}
	f, err := os.Create(prefix + "." + phase + ".pprof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func settingsOf(o options) map[string]any {
	var only []string
	for _, p := range phases {
		if o.only[p] {
			only = append(only, p)
		}
	}
	return map[string]any{
		"quick": o.quick, "only": only, "duration_s": o.duration.Seconds(), "warmup_s": o.warmup.Seconds(), "turns": o.turns,
		"clients": o.clients, "cmd_customers": o.cmdCustomers, "cmd_users": o.cmdUsers,
		"lag_rate": o.lagRate, "lag_duration_s": o.lagDuration.Seconds(), "lag_workers": o.lagWorkers,
		"catchup_rows": o.catchUpRows, "rebuild_events": o.rebuildEvents, "rebuild_users": o.rebuildUsers,
		"customers": o.customers, "users": o.users, "assignments": o.assignments, "read_queries": o.readQueries,
		"bulk_customers": o.bulkCustomers,
		"gomaxprocs":     runtime.GOMAXPROCS(0), "no_projections": o.noProjections,
	}
}

// quietShutdown drops the log records of a phase's service being stopped
// (Watermill reports its cancelled batch transactions as errors).
type quietShutdown struct{ slog.Handler }

func (q quietShutdown) Handle(ctx context.Context, r slog.Record) error {
	cancelled := false
	r.Attrs(func(a slog.Attr) bool {
		s := a.Value.String()
		if strings.Contains(s, "context canceled") || strings.Contains(s, "conn closed") {
			cancelled = true
			return false
		}
		return true
	})
	if cancelled {
		return nil
	}
	return q.Handler.Handle(ctx, r)
}

func (q quietShutdown) WithAttrs(as []slog.Attr) slog.Handler {
	return quietShutdown{q.Handler.WithAttrs(as)}
}

func (q quietShutdown) WithGroup(name string) slog.Handler {
	return quietShutdown{q.Handler.WithGroup(name)}
}

// loadAvg is /proc/loadavg's first three fields: on a shared machine, other
// load during a run shows here (and in the CPU split of each run).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// treeState is the commit and the locally modified files the benchmark was
// built from: figures belong to a tree, and this one is edited in parallel.
func treeState() map[string]any {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return nil
	}
	st, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output()
	return map[string]any{"commit": strings.TrimSpace(string(head)), "modified": strings.Fields(strings.ReplaceAll(string(st), " M ", " "))}
}
