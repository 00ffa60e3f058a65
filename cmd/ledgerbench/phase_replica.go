package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	nethttp "net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	ledgerhttp "github.com/assignment-ledger/ledger/http"
	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/projections"
	"github.com/assignment-ledger/ledger/readroute"
)

// The replica phase runs on a pair of clusters of its own (scripts/pg.sh,
// as `make run-replica` starts them): a durable primary and a synchronous
// hot standby, the service wired as `ledger serve` wires it with
// LEDGER_REPLICA_URLS and a multi-host DATABASE_URL. It measures My Clients
// and the customer list filtered by assigned user through the API, once
// with every read on the primary and once through the replica, alternating
// in rounds so both see the same machine; then, with commands running, it
// kills the primary, promotes the standby and times the first command
// acknowledged after the kill.

func runReplica(ctx context.Context, o options, _ *server, rep *report) error {
	dir, err := os.MkdirTemp("", "ledgerbench-replica")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pair, err := testdb.StartReplicated(ctx, dir, testdb.ReplicatedOptions{Sync: true})
	if err != nil {
		return fmt.Errorf("start a primary and a standby: %w", err)
	}
	defer pair.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}

	cfg, err := pgxpool.ParseConfig(pair.MultiHostURL())
	if err != nil {
		return err
	}
	cfg.MaxConns = 32
	cfg.ConnConfig.RuntimeParams["jit"] = "off"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := eventstore.New(pool)
	cmd := commands.New(store, benchKeyring(), log)
	runner, err := projections.New(pool, store, benchKeyring(), log)
	if err != nil {
		return err
	}
	rctx, stopRunner := context.WithCancel(context.WithoutCancel(ctx))
	runnerDone := make(chan struct{})
	go func() { defer close(runnerDone); _ = runner.Run(rctx) }()
	defer func() { stopRunner(); <-runnerDone }()

	registry := prometheus.NewRegistry()
	reads, err := readroute.New(ctx, pool, readroute.Config{URLs: []string{pair.ReplicaURL()}}, log, registry)
	if err != nil {
		return err
	}
	defer reads.Close()
	go reads.Run(rctx)
	var replicas []ledgerhttp.ReplicaDeps
	for _, r := range reads.Replicas() {
		rs := eventstore.New(r.Pool())
		rr, err := projections.New(r.Pool(), rs, benchKeyring(), log)
		if err != nil {
			return err
		}
		replicas = append(replicas, ledgerhttp.ReplicaDeps{Name: r.Name(), Pool: r.Pool(), Store: rs,
			Commands: commands.New(rs, benchKeyring(), log), Queries: projections.NewQueries(r.Pool(), benchKeyring()), Projections: rr})
	}
	deps := ledgerhttp.Deps{Pool: pool, Store: store, Commands: cmd, Projections: runner, Queries: projections.NewQueries(pool, benchKeyring()),
		Log: log, BaseURL: "http://bench.invalid"}
	onPrimary := deps
	onPrimary.Registry = prometheus.NewRegistry()
	throughReplica := deps
	throughReplica.Registry, throughReplica.Reads, throughReplica.Replicas = registry, reads, replicas
	basePrimary, stopA, err := serveOn(ledgerhttp.NewServer(onPrimary), log)
	if err != nil {
		return err
	}
	defer stopA()
	baseReplica, stopB, err := serveOn(ledgerhttp.NewServer(throughReplica), log)
	if err != nil {
		return err
	}
	defer stopB()

	// A tenant with users and customers, each customer with one to three
	// of the users: My Clients pages of tens of customers.
	users, customers := max(o.cmdUsers, 2), o.cmdCustomers
	b, err := cmd.Bootstrap(ctx, "Bench", "Bench Admin", "admin@bench.example")
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	m := commands.Meta{TenantID: b.TenantID, Actor: domain.Actor{UserID: b.UserID, Name: "Bench Admin", Role: domain.RoleAdmin}}
	userIDs := make([]string, users)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range users {
		g.Go(func() error {
			r, err := cmd.CreateUser(gctx, m, fmt.Sprintf("User %05d", i), fmt.Sprintf("user%05d@bench.example", i), domain.RoleMember)
			userIDs[i] = r.ID
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("populate users: %w", err)
	}
	var last atomic.Int64
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range customers {
		g.Go(func() error {
			team := []string{userIDs[i%users], userIDs[(i*7+1)%users]}
			r, err := cmd.RegisterCustomer(gctx, m, domain.Profile{FirstName: fmt.Sprintf("First%07d", i), LastName: fmt.Sprintf("Last%07d", i),
				Email: fmt.Sprintf("customer%07d@bench.example", i)}, team...)
			if err == nil {
				for p := last.Load(); r.Position > p && !last.CompareAndSwap(p, r.Position); p = last.Load() {
				}
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("populate customers: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	err = runner.WaitFor(wctx, last.Load())
	cancel()
	if err != nil {
		return fmt.Errorf("projections: %w", err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "   %d users, %d customers on a primary and a synchronous standby\n", users, customers)

	client := &nethttp.Client{Timeout: 30 * time.Second, Transport: &nethttp.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	get := func(ctx context.Context, base, path string) error {
		req, err := nethttp.NewRequestWithContext(ctx, "GET", base+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+b.APIKey)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		return nil
	}
	// The router takes the standby in once its checks see it close behind.
	for deadline := time.Now().Add(time.Minute); reads.Fresh() == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("the standby was never within the lag bound")
		}
	}
	kinds := []struct {
		name string
		path func(rng *rand.Rand) string
	}{
		{"My Clients", func(rng *rand.Rand) string { return "/v1/users/" + userIDs[rng.IntN(users)] + "/clients" }},
		{"customer list by assignee", func(rng *rand.Rand) string { return "/v1/customers?assigned_user=" + userIDs[rng.IntN(users)] }},
	}
	const clients, rounds = 8, 10
	details := map[string]any{"users": users, "customers": customers, "clients": clients}
	for _, k := range kinds {
		lat := map[string]latencies{}
		for round := range rounds {
			for _, target := range []struct{ name, base string }{{"primary", basePrimary}, {"replica", baseReplica}} {
				l, err := measureGets(ctx, clients, max(o.readQueries/rounds, clients), func(ctx context.Context, rng *rand.Rand) error {
					return get(ctx, target.base, k.path(rng))
				}, uint64(round))
				if err != nil {
					return fmt.Errorf("%s on the %s: %w", k.name, target.name, err)
				}
				lat[target.name] = append(lat[target.name], l...)
			}
		}
		for _, target := range []string{"primary", "replica"} {
			s := summarize(lat[target])
			rep.add(figure{Phase: "replica", Name: k.name + " p50, " + target, Value: s.P50, Unit: "ms"})
			rep.add(figure{Phase: "replica", Name: k.name + " p99, " + target, Value: s.P99, Unit: "ms"})
			details[k.name+" "+target] = s
		}
	}
	served := readCounts(registry)
	details["reads_served"] = served
	if served["replica"] == 0 {
		return errors.New("no read was served by the replica")
	}

	// Failover: commands through the multi-host pool, the primary killed,
	// the standby promoted at once.
	var (
		mu       sync.Mutex
		killed   time.Time
		firstOK  time.Time
		acked    atomic.Int64
		fails    atomic.Int64
		stopLoad = make(chan struct{})
		wg       sync.WaitGroup
	)
	for c := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				name := fmt.Sprintf("Failover%dx%d", c, i)
				req, _ := nethttp.NewRequest("POST", baseReplica+"/v1/customers",
					strings.NewReader(`{"first_name":"`+name+`","email":"`+strings.ToLower(name)+`@client.example"}`))
				req.Header.Set("Authorization", "Bearer "+b.APIKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				code := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				now := time.Now()
				if code == 201 {
					acked.Add(1)
					mu.Lock()
					if !killed.IsZero() && firstOK.IsZero() && now.After(killed) {
						firstOK = now
					}
					mu.Unlock()
				} else {
					fails.Add(1)
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	// Timed from the moment the primary is down (pg_ctl stop -m immediate
	// has returned): commands in flight during the stop may still be
	// acknowledged by it.
	killErr := pair.KillPrimary()
	mu.Lock()
	killed = time.Now()
	mu.Unlock()
	promoteAt := time.Now()
	promoteErr := pair.Promote()
	promoted := time.Since(promoteAt)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		done := !firstOK.IsZero()
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(time.Second)
	close(stopLoad)
	wg.Wait()
	if err := errors.Join(killErr, promoteErr); err != nil {
		return err
	}
	if firstOK.IsZero() {
		return errors.New("no command acknowledged within a minute of the failover")
	}
	rep.add(figure{Phase: "replica", Name: "failover: kill to first acknowledged command", Value: ms(firstOK.Sub(killed)), Unit: "ms",
		Note: fmt.Sprintf("pg_ctl promote took %s of it, issued right after the kill", promoted.Round(time.Millisecond))})
	details["failover"] = map[string]any{"kill_to_first_ack_ms": ms(firstOK.Sub(killed)), "promote_ms": ms(promoted),
		"acknowledged": acked.Load(), "failed_or_503": fails.Load()}
	rep.detail("replica", details)
	return nil
}

// serveOn serves h on 127.0.0.1:0.
func serveOn(h nethttp.Handler, log *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &nethttp.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// measureGets runs n calls of op from clients goroutines (closed loop) and
// returns their latencies.
func measureGets(ctx context.Context, clients, n int, op func(ctx context.Context, rng *rand.Rand) error, seed uint64) (latencies, error) {
	var (
		mu   sync.Mutex
		out  latencies
		left atomic.Int64
	)
	left.Store(int64(n))
	g, gctx := errgroup.WithContext(ctx)
	for c := range clients {
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(seed, uint64(c)))
			for left.Add(-1) >= 0 {
				t0 := time.Now()
				if err := op(gctx, rng); err != nil {
					return err
				}
				d := ms(time.Since(t0))
				mu.Lock()
				out = append(out, d)
				mu.Unlock()
			}
			return nil
		})
	}
	return out, g.Wait()
}

// readCounts reads ledger_read_queries_total by target from reg.
func readCounts(reg *prometheus.Registry) map[string]float64 {
	out := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if mf.GetName() != "ledger_read_queries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "target" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
