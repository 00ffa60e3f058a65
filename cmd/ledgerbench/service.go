package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	nethttp "net/http"
	"strconv"
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
	"github.com/assignment-ledger/ledger/projections"
)

// service is the ledger wired as `ledger serve` wires it (cmd/ledger/serve.go),
// on a phase database, with its HTTP API on 127.0.0.1:0 and its projections
// running, plus a tenant, an admin API key, users and customers.
type service struct {
	pool   *pgxpool.Pool
	db     string
	store  *eventstore.Store
	cmd    *commands.Commands
	runner *projections.Runner
	http   *nethttp.Server
	base   string
	client *nethttp.Client

	stopRunner func()
	runnerDone chan error

	tenantID  string
	admin     domain.Actor
	apiKey    string
	users     []string
	customers []string
	// slots[i] is how many assignments customer i has been given; user of
	// the next one is users[(offset[i]+slot) % len(users)], so a customer
	// never gets the same user twice and teams grow evenly.
	slots  []atomic.Int32
	offset []int
}

func startService(ctx context.Context, srv *server, phase string, maxConns int32, log *slog.Logger, opts ...commands.Option) (*service, error) {
	pool, db, err := srv.createDB(ctx, phase, maxConns, nil)
	if err != nil {
		return nil, err
	}
	s := &service{pool: pool, db: db, store: eventstore.New(pool)}
	s.cmd = commands.New(s.store, benchKeyring(), log, opts...)
	if s.runner, err = projections.New(pool, s.store, benchKeyring(), log); err != nil {
		pool.Close()
		return nil, err
	}
	api := ledgerhttp.NewServer(ledgerhttp.Deps{
		Pool: pool, Store: s.store, Commands: s.cmd, Projections: s.runner, Queries: projections.NewQueries(pool, benchKeyring()),
		Log: log, BaseURL: "http://bench.invalid", Registry: prometheus.NewRegistry(),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.http = &nethttp.Server{
		Handler: api, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { _ = s.http.Serve(ln) }()
	s.base = "http://" + ln.Addr().String()
	s.client = &nethttp.Client{
		Timeout: 30 * time.Second,
		Transport: &nethttp.Transport{
			MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute, DisableCompression: true,
		},
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopRunner = cancel
	s.runnerDone = make(chan error, 1)
	go func() { s.runnerDone <- s.runner.Run(rctx) }()
	return s, nil
}

func (s *service) close() {
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.http.Shutdown(sctx)
	s.stopRunner()
	select {
	case <-s.runnerDone:
	case <-time.After(35 * time.Second):
	}
	s.pool.Close()
}

// populate bootstraps a tenant (default policy: no maximum team size) and
// creates users and customers through the command handlers, concurrently.
// It is set-up, not measured.
func (s *service) populate(ctx context.Context, users, customers int) error {
	b, err := s.cmd.Bootstrap(ctx, "Bench", "Bench Admin", "admin@bench.example")
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	s.tenantID, s.apiKey = b.TenantID, b.APIKey
	s.admin = domain.Actor{UserID: b.UserID, Name: "Bench Admin", Role: domain.RoleAdmin}
	m := commands.Meta{TenantID: s.tenantID, Actor: s.admin}
	s.users = make([]string, users)
	s.customers = make([]string, customers)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range users {
		g.Go(func() error {
			r, err := s.cmd.CreateUser(gctx, m, fmt.Sprintf("User %05d", i), fmt.Sprintf("user%05d@bench.example", i), domain.RoleMember)
			s.users[i] = r.ID
			return err
		})
	}
	for i := range customers {
		g.Go(func() error {
			r, err := s.cmd.RegisterCustomer(gctx, m, domain.Profile{
				FirstName: fmt.Sprintf("First%07d", i), LastName: fmt.Sprintf("Last%07d", i),
				Email: fmt.Sprintf("customer%07d@bench.example", i),
			})
			s.customers[i] = r.ID
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("populate: %w", err)
	}
	s.slots = make([]atomic.Int32, customers)
	s.offset = make([]int, customers)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range s.offset {
		s.offset[i] = rng.IntN(users)
	}
	return nil
}

// analyze gives the planner statistics of the populated database, as
// autovacuum would on a running system (it analyzes a minute or more after
// a bulk load, which a measured run would otherwise straddle).
func (s *service) analyze(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return nil
}

// catchUp waits until every projection has applied every committed event.
func (s *service) catchUp(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	began := time.Now()
	var last int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM events`).Scan(&last); err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := s.runner.WaitFor(wctx, last)
	return time.Since(began), err
}

// errPairsExhausted says every customer has every user: the run is longer
// than -cmd-customers × -cmd-users assignments.
var errPairsExhausted = errors.New("every customer has every user: raise -cmd-customers or -cmd-users")

// nextPair picks a random customer and the next user not yet on its team.
func (s *service) nextPair(rng *rand.Rand) (customer, user string, err error) {
	for range 4 * len(s.customers) {
		i := rng.IntN(len(s.customers))
		slot := int(s.slots[i].Add(1)) - 1
		if slot >= len(s.users) {
			continue // every user is on this one already
		}
		return s.customers[i], s.users[(s.offset[i]+slot)%len(s.users)], nil
	}
	return "", "", errPairsExhausted
}

var errHTTP = errors.New("unexpected HTTP status")

// assign is one AssignUser through the API: POST /v1/customers/{id}/assignees
// with the admin's bearer key. It returns the X-Ledger-Position token.
func (s *service) assign(ctx context.Context, customer, user string) (int64, error) {
	body := []byte(`{"user_id":"` + user + `"}`)
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, s.base+"/v1/customers/"+customer+"/assignees", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+s.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != nethttp.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("%w %d: %s", errHTTP, resp.StatusCode, bytes.TrimSpace(b))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	pos, err := strconv.ParseInt(resp.Header.Get("X-Ledger-Position"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("X-Ledger-Position: %w", err)
	}
	return pos, nil
}

// backlog is how many events the slowest projection has not applied yet.
func (s *service) backlog(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM events e
		WHERE (e.transaction_id, e.position) > (SELECT last_transaction_id, last_position FROM projection_checkpoints
			ORDER BY last_transaction_id, last_position LIMIT 1)`).Scan(&n)
	return n, err
}

// onceErr remembers the first error of many goroutines.
type onceErr struct {
	mu  sync.Mutex
	err error
}

func (o *onceErr) set(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		o.err = err
	}
}

func (o *onceErr) get() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// drain waits until every projection has applied every committed event and
// tells how long each one took.
func (s *service) drain(ctx context.Context, timeout time.Duration) (time.Duration, map[string]float64, error) {
	began := time.Now()
	var last int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM events`).Scan(&last); err != nil {
		return 0, nil, err
	}
	each := map[string]float64{}
	if last == 0 {
		return 0, each, nil
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var g errgroup.Group
	var mu sync.Mutex
	for _, name := range s.runner.Names() {
		g.Go(func() error {
			err := s.runner.WaitFor(wctx, last, name)
			mu.Lock()
			each[name] = time.Since(began).Seconds()
			mu.Unlock()
			return err
		})
	}
	err := g.Wait()
	return time.Since(began), each, err
}
