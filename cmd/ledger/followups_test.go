package main

import (
	"context"
	"encoding/json"
	"io"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/internal/testdb"
)

// Follow-ups that fall due while no process runs the scheduler (only an
// API node, `serve --no-projections`, is up: the service's background work
// is down across the due time) are delivered late, once each, when two
// `serve` processes start at once and race for them; restarting one
// delivers nothing again.
func TestFollowUpsDueOnceWithTwoServeProcessesAfterDowntime(t *testing.T) {
	t.Parallel()
	dsn := testdb.NewURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vars := map[string]string{"DATABASE_URL": dsn, "LEDGER_ADDR": "127.0.0.1:0"}
	bootEnv, bootOut, bootErr := testEnv(vars)
	if code := run(ctx, bootEnv, []string{"bootstrap", "--tenant", "Acme", "--admin-name", "Ann", "--admin-email", "ann@acme.example"}); code != 0 {
		t.Fatalf("bootstrap: %d %s", code, bootErr.String())
	}
	var boot struct {
		APIKey string `json:"api_key"`
		UserID string `json:"user_id"`
	}
	if err := json.Unmarshal([]byte(bootOut.String()), &boot); err != nil {
		t.Fatal(err)
	}
	apiCtx, stopAPI := context.WithCancel(ctx)
	base, apiExit := startServing(apiCtx, t, vars, "serve", "--no-projections")
	do := func(base, method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := nethttp.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+boot.APIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return resp.StatusCode, m
	}
	// Customers with the admin on their team, and follow-ups due an hour
	// ago (they fell due while nothing ran the scheduler).
	due := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	const customers, perCustomer = 3, 2
	for i := range customers {
		code, c := do(base, "POST", "/v1/customers", `{"first_name":"C`+string(rune('a'+i))+`","team":["me"]}`)
		if code != 201 {
			t.Fatalf("register: %d %v", code, c)
		}
		for range perCustomer {
			if code, f := do(base, "POST", "/v1/customers/"+c["id"].(string)+"/follow-ups", `{"due_at":"`+due+`","note":"call"}`); code != 201 {
				t.Fatalf("schedule: %d %v", code, f)
			}
		}
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	count := func(q string) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const qDue = `SELECT count(*) FROM events WHERE type = 'FollowUpDue'`
	const qTold = `SELECT count(*) FROM notifications WHERE type = 'follow_up_due'`
	if n := count(qDue); n != 0 {
		t.Fatalf("%d fell due with no scheduler running", n)
	}
	stopAPI()
	<-apiExit

	// Two serve processes start at once; each runs the scheduler.
	want := customers * perCustomer
	start := func() (string, context.CancelFunc, <-chan int) {
		sctx, stop := context.WithCancel(ctx)
		b, exit := startServe(sctx, t, vars)
		return b, stop, exit
	}
	baseA, stopA, exitA := start()
	_, stopB, exitB := start()
	for deadline := time.Now().Add(60 * time.Second); count(qTold) < want && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if n := count(qDue); n != want {
		t.Fatalf("%d FollowUpDue events, want %d (one per follow-up)", n, want)
	}
	if n := count(qTold); n != want {
		t.Fatalf("%d follow_up_due notifications, want %d (one per recipient and follow-up)", n, want)
	}
	code, list := do(baseA, "GET", "/v1/users/me/notifications?limit=500", "")
	if code != 200 || len(list["items"].([]any)) < want {
		t.Fatalf("notifications: %d %v", code, list)
	}
	// A restart finds nothing more to deliver.
	stopA()
	<-exitA
	_, stopC, exitC := start()
	stopB()
	<-exitB
	stopC()
	<-exitC
	if n, m := count(qDue), count(qTold); n != want || m != want {
		t.Fatalf("after a restart: %d FollowUpDue, %d notifications, want %d", n, m, want)
	}
}
