package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// attempt is one keyed command sent to the serve process that is killed.
type attempt struct {
	key                string
	customer           string
	method, path, body string
	// acked: serve answered 2xx; position is the X-Ledger-Position it
	// answered.
	acked    bool
	position int64
}

// kill -9 of a serve process while many clients' commands are being
// committed in groups: every command it acknowledged is present (its events
// and its stored answer), and every command it did not acknowledge is either
// all there or not at all: no events without a stored answer, no recorded
// key without one, no stream head apart from its events, no broken chain. A
// new serve process then replays the acknowledged answers and takes new
// commands on the same customers.
//
// Not parallel: its load would slow the package's other tests past their
// waits.
func TestKill9MidGroupLosesNothingAcknowledged(t *testing.T) {
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
	}
	if err := json.Unmarshal([]byte(bootOut.String()), &boot); err != nil {
		t.Fatal(err)
	}

	// The real binary, so that SIGKILL kills the process with its
	// connections and the groups it is committing.
	proc := exec.Command(os.Args[0], "serve", "--no-projections")
	proc.Env = append(os.Environ(), "LEDGER_TEST_RUN_MAIN=1", "DATABASE_URL="+dsn, "LEDGER_ADDR=127.0.0.1:0", "LEDGER_KEK="+testdb.KEK)
	stderr, err := proc.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Process.Kill(); _ = proc.Wait() })
	var base string
	select {
	case a := <-servingAddr(stderr):
		base = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}

	client := &nethttp.Client{Timeout: 30 * time.Second}
	do := func(base, method, path, body, key string) (int, int64, map[string]any, error) {
		req, _ := nethttp.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+boot.APIKey)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, nil, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, 0, nil, err
		}
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		pos, _ := strconv.ParseInt(resp.Header.Get("X-Ledger-Position"), 10, 64)
		return resp.StatusCode, pos, m, nil
	}
	mustCreate := func(path, body string) string {
		t.Helper()
		code, _, m, err := do(base, "POST", path, body, "")
		if err != nil || code != 201 {
			t.Fatalf("POST %s: %d %v %v", path, code, m, err)
		}
		return m["id"].(string)
	}
	var users, customers []string
	for i := range 12 {
		users = append(users, mustCreate("/v1/users", fmt.Sprintf(`{"name":"User %d","email":"u%d@acme.example","role":"member"}`, i, i)))
	}
	for i := range 6 {
		customers = append(customers, mustCreate("/v1/customers", fmt.Sprintf(`{"first_name":"C%d","email":"c%d@client.example"}`, i, i)))
	}

	// Sixteen clients assign and unassign on six customers, each command
	// with a key of its own, until serve has acknowledged enough of them
	// in groups; then it is killed under their load.
	const clients = 16
	var (
		mu       sync.Mutex
		attempts []*attempt
		acked    atomic.Int64
		wg       sync.WaitGroup
		killed   = make(chan struct{})
	)
	for g := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-killed:
					return
				default:
				}
				a := &attempt{key: fmt.Sprintf("kill9-%d-%d", g, i), customer: customers[(g+i)%len(customers)]}
				user := users[(g*7+i)%len(users)]
				method, path, body := "POST", "/v1/customers/"+a.customer+"/assignees", `{"user_id":"`+user+`"}`
				if i%2 == 1 {
					method, path, body = "DELETE", "/v1/customers/"+a.customer+"/assignees/"+user, ""
				}
				a.method, a.path, a.body = method, path, body
				mu.Lock()
				attempts = append(attempts, a)
				mu.Unlock()
				code, pos, _, err := do(base, method, path, body, a.key)
				if err != nil {
					return // serve is gone
				}
				if code >= 200 && code < 300 {
					mu.Lock()
					a.acked, a.position = true, pos
					mu.Unlock()
					acked.Add(1)
				}
			}
		})
	}
	grouped := func() (groups, cmds float64) {
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		for line := range strings.SplitSeq(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "ledger_command_groups_total "); ok {
				groups, _ = strconv.ParseFloat(v, 64)
			}
			if v, ok := strings.CutPrefix(line, "ledger_commands_grouped_total "); ok {
				cmds, _ = strconv.ParseFloat(v, 64)
			}
		}
		return groups, cmds
	}
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve acknowledged %d commands in 2 minutes", acked.Load())
		}
		if acked.Load() < 300 {
			continue
		}
		// Groups of more than one command have committed: the kill lands
		// among groups, not lone commands.
		if groups, cmds := grouped(); cmds > groups {
			break
		}
	}
	if err := proc.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	close(killed)
	wg.Wait()
	_ = proc.Wait()

	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// What was written, by key.
	type written struct {
		stored    bool
		position  *int64
		events    int
		lastEvent int64
		stream    string
	}
	byKey := map[string]*written{}
	rows, err := pool.Query(ctx, `SELECT key, response IS NOT NULL, position FROM idempotency_keys`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var key string
		w := &written{}
		if err := rows.Scan(&key, &w.stored, &w.position); err != nil {
			t.Fatal(err)
		}
		byKey[key] = w
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows, err = pool.Query(ctx, `SELECT metadata->>'idempotency_key', count(*), max(position), min(stream_id::text)
		FROM events WHERE metadata ? 'idempotency_key' GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var key, stream string
		var n int
		var last int64
		if err := rows.Scan(&key, &n, &last, &stream); err != nil {
			t.Fatal(err)
		}
		w := byKey[key]
		if w == nil {
			t.Errorf("key %s: %d event(s) at %d and no idempotency record", key, n, last)
			continue
		}
		w.events, w.lastEvent, w.stream = n, last, stream
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	var nAcked, nLost, nUnacked int
	for _, a := range attempts {
		w := byKey[a.key]
		switch {
		case a.acked:
			nAcked++
			if w == nil || !w.stored {
				t.Errorf("acknowledged %s (position %d) has no stored answer", a.key, a.position)
				continue
			}
			// A refusal or no-op answers with no events of its own.
			if w.events > 0 && (w.lastEvent != a.position || w.stream != a.customer) {
				t.Errorf("acknowledged %s answered position %d; its events end at %d on %s", a.key, a.position, w.lastEvent, w.stream)
			}
			if w.position != nil && *w.position != a.position {
				t.Errorf("acknowledged %s answered position %d, stored %d", a.key, a.position, *w.position)
			}
		case w == nil:
			nLost++
		case !w.stored:
			t.Errorf("unacknowledged %s: a key recorded without its answer", a.key)
		default:
			nUnacked++ // committed whole, its answer lost with serve
		}
	}
	for key, w := range byKey {
		if !w.stored {
			t.Errorf("key %s recorded without an answer", key)
		}
	}
	t.Logf("%d commands sent: %d acknowledged, %d written whole but not acknowledged, %d not written (refused or lost)",
		len(attempts), nAcked, nUnacked, nLost)
	store := eventstore.New(pool)
	if _, err := store.Verify(ctx, nil); err != nil {
		t.Fatalf("verify after kill -9: %v", err)
	}

	// A new process: the acknowledged answers replay, and the customers
	// take commands (no lock or head left behind).
	base2, exit := startServe(ctx, t, vars)
	replayed := 0
	for _, a := range attempts {
		if !a.acked || replayed == 20 {
			continue
		}
		replayed++
		// The same request under the same key.
		code, pos, m, err := do(base2, a.method, a.path, a.body, a.key)
		if err != nil || code < 200 || code >= 300 || pos != a.position {
			t.Errorf("replay of %s after restart: %d position %d (%v %v), first answered %d", a.key, code, pos, m, err, a.position)
		}
	}
	for i, c := range customers {
		code, _, m, err := do(base2, "POST", "/v1/customers/"+c+"/assignees", `{"user_id":"`+users[i]+`"}`, "")
		if err != nil || (code != 200 && code != 409) {
			t.Errorf("assign on %s after restart: %d %v %v", c, code, m, err)
		}
	}
	cancel()
	select {
	case <-exit:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}
