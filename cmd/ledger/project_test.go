package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/smtptest"
	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/projections"
)

// An API node (`serve --no-projections`) and projection workers (`project`)
// against one database, wired as the CLI wires them: the API node applies
// no events itself (its X-Min-Position GET answers 503 until a worker
// runs), a worker's progress wakes its waits, two workers apply every event
// exactly once, and a worker, not the API node, delivers the outbox.
func TestAPINodeAndProjectionWorkersApart(t *testing.T) {
	t.Parallel()
	dsn := testdb.NewURL(t)
	apiMail, workerMail := smtptest.Start(t), smtptest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vars := func(smtpURL string) map[string]string {
		return map[string]string{"DATABASE_URL": dsn, "LEDGER_ADDR": "127.0.0.1:0",
			"LEDGER_SMTP_URL": smtpURL, "LEDGER_MAIL_FROM": "ledger@acme.example"}
	}

	bootEnv, bootOut, bootErr := testEnv(vars(apiMail.URL()))
	if code := run(ctx, bootEnv, []string{"bootstrap", "--tenant", "Acme", "--admin-name", "Ann", "--admin-email", "ann@acme.example"}); code != 0 {
		t.Fatalf("bootstrap: %d %s", code, bootErr.String())
	}
	var boot struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(bootOut.String()), &boot); err != nil {
		t.Fatal(err)
	}
	base, apiExit := startServing(ctx, t, vars(apiMail.URL()), "serve", "--no-projections")

	do := func(method, path, body string, header ...string) (int, string, map[string]any) {
		t.Helper()
		req, _ := nethttp.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+boot.APIKey)
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return resp.StatusCode, resp.Header.Get("X-Ledger-Position"), m
	}
	register := func(name string) (id, pos string) {
		t.Helper()
		code, pos, m := do("POST", "/v1/customers", `{"first_name":"`+name+`","email":"`+strings.ToLower(name)+`@client.example"}`)
		if code != 201 || pos == "" {
			t.Fatalf("register %s: %d %v", name, code, m)
		}
		return m["id"].(string), pos
	}
	listed := func(pos string) (int, string) {
		t.Helper()
		code, _, m := do("GET", "/v1/customers", "", "X-Min-Position", pos)
		raw, _ := json.Marshal(m)
		return code, string(raw)
	}

	// No worker yet: the API node applies nothing, so the wait runs out.
	carla, pos := register("Carla")
	if code, body := listed(pos); code != 503 || !strings.Contains(body, "position_not_reached") {
		t.Fatalf("GET with X-Min-Position and no worker running: %d %s", code, body)
	}

	startWorker := func(smtpURL string) (stop func()) {
		wctx, stopWorker := context.WithCancel(ctx)
		env, _, errOut := testEnv(vars(smtpURL))
		exit := make(chan int, 1)
		go func() { exit <- run(wctx, env, []string{"project"}) }()
		return func() {
			stopWorker()
			select {
			case code := <-exit:
				if code != 0 {
					t.Errorf("project exited %d: %s", code, errOut.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("project did not stop")
			}
		}
	}
	stopA := startWorker(workerMail.URL())
	// The worker may still be starting when the first wait begins.
	for deadline := time.Now().Add(60 * time.Second); ; {
		code, body := listed(pos)
		if code == 200 {
			if !strings.Contains(body, carla) {
				t.Fatalf("the customer list lacks %s: %s", carla, body)
			}
			break
		}
		if code != 503 || !strings.Contains(body, "position_not_reached") || time.Now().After(deadline) {
			t.Fatalf("GET with X-Min-Position, a worker running: %d %s", code, body)
		}
	}
	stopB := startWorker(workerMail.URL())

	// The outbox: queued by the API node, delivered by a worker.
	code, _, bob := do("POST", "/v1/users", `{"name":"Bob Baker","email":"bob@acme.example","role":"member"}`)
	if code != 201 {
		t.Fatalf("create user: %d %v", code, bob)
	}
	code, _, m := do("POST", "/v1/clients/invitations", `{"first_name":"Dora","email":"dora@client.example","team":["`+bob["id"].(string)+`"],"send_email":true}`)
	if code != 201 {
		t.Fatalf("invite: %d %v", code, m)
	}
	if got := workerMail.Wait(t, 1, 30*time.Second); len(got) != 1 || !slices.Contains(got[0].To, "dora@client.example") {
		t.Fatalf("the worker delivered %+v", got)
	}

	// Two workers, commands arriving from several clients at once.
	var (
		mu   sync.Mutex
		last int64
		wg   sync.WaitGroup
	)
	for g := range 6 {
		wg.Go(func() {
			for i := range 20 {
				_, pos := register(fmt.Sprintf("C%dx%d", g, i))
				p, err := strconv.ParseInt(pos, 10, 64)
				if err != nil {
					t.Errorf("position %q: %v", pos, err)
					return
				}
				mu.Lock()
				last = max(last, p)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if code, body := listed(strconv.FormatInt(last, 10)); code != 200 {
		t.Fatalf("GET with the last position: %d %s", code, body)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var head int64
	if err := pool.QueryRow(ctx, `SELECT max(position) FROM events`).Scan(&head); err != nil {
		t.Fatal(err)
	}
	waiter, err := projections.New(pool, eventstore.New(pool), testdb.Keyring(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := waiter.WaitFor(wctx, head); err != nil {
		t.Fatal(err)
	}
	stopA()
	stopB()
	if got := apiMail.Messages(); len(got) != 0 {
		t.Errorf("the API node delivered %d e-mail(s): it runs no relay", len(got))
	}

	var events, audit, distinct int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), count(*), count(DISTINCT position) FROM audit_log`).
		Scan(&events, &audit, &distinct); err != nil {
		t.Fatal(err)
	}
	if audit != events || distinct != events {
		t.Errorf("%d events: %d audit rows, %d distinct", events, audit, distinct)
	}
	live := readModels(t, pool)
	env, _, errOut := testEnv(vars(apiMail.URL()))
	if code := run(ctx, env, []string{"rebuild", "all"}); code != 0 {
		t.Fatalf("rebuild: %d %s", code, errOut.String())
	}
	rebuilt := readModels(t, pool)
	for tbl, rows := range live {
		if !slices.Equal(rows, rebuilt[tbl]) {
			t.Errorf("%s: %d rows applied by two workers, %d rebuilt", tbl, len(rows), len(rebuilt[tbl]))
		}
	}

	stopServe(t, "serve --no-projections", cancel, apiExit)
}

// readModels reads the read models' tables, each row as text, sorted.
func readModels(t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tbl := range []string{"customer_list", "my_clients", "assignment_intervals", "audit_log",
		"notifications", "groups", "customer_groups", "ledger_leaves"} {
		rows, err := pool.Query(context.Background(), `SELECT t::text FROM `+tbl+` t ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out[tbl] = vals
	}
	return out
}
