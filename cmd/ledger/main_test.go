package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	commandspkg "github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testEnv(vars map[string]string) (*cliEnv, *syncBuffer, *syncBuffer) {
	out, errOut := &syncBuffer{}, &syncBuffer{}
	return &cliEnv{stdout: out, stderr: errOut, getenv: func(k string) (string, bool) {
		v, ok := vars[k]
		if !ok && k == "LEDGER_KEK" && vars != nil {
			return testdb.KEK, true // every test's processes share one KEK
		}
		return v, ok
	}}, out, errOut
}

// startServe runs `ledger serve` in this process with vars as its
// environment until ctx is cancelled. It waits until serve logs that it is
// serving and returns its base URL and the channel that receives its exit
// code; the test fails if serve exits or takes 30 s before that.
func startServe(ctx context.Context, t *testing.T, vars map[string]string) (base string, exit <-chan int) {
	t.Helper()
	return startServing(ctx, t, vars, "serve")
}

// startServing is startServe for any command line that logs "serving"
// (serve with flags, project --metrics-addr).
func startServing(ctx context.Context, t *testing.T, vars map[string]string, args ...string) (base string, exit <-chan int) {
	t.Helper()
	pr, pw := io.Pipe()
	env := &cliEnv{stdout: io.Discard, stderr: pw, getenv: func(k string) (string, bool) {
		v, ok := vars[k]
		if !ok && k == "LEDGER_KEK" {
			return testdb.KEK, true // every test's processes share one KEK
		}
		return v, ok
	}}
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, env, args)
		pw.Close()
	}()
	select {
	case a := <-servingAddr(pr):
		return "http://" + a, code
	case c := <-code:
		t.Fatalf("%s exited early with %d", args[0], c)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start", args[0])
	}
	return "", nil
}

// servingAddr reads serve's JSON log from r to its end and sends the
// address of its "serving" line. It keeps reading, so serve never blocks on
// a full pipe.
func servingAddr(r io.Reader) <-chan string {
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && (line.Msg == "serving" || line.Msg == "serving metrics") {
				addr <- line.Addr
			}
		}
	}()
	return addr
}

func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	for _, c := range subcommands() {
		env, out, _ := testEnv(nil)
		if code := run(context.Background(), env, []string{c.name, "--help"}); code != 0 {
			t.Errorf("%s --help exited %d", c.name, code)
		}
		if !strings.Contains(out.String(), "Usage: ledger "+c.name) {
			t.Errorf("%s --help printed %q", c.name, out.String())
		}
	}
	env, _, errOut := testEnv(nil)
	if code := run(context.Background(), env, []string{"frobnicate"}); code != 2 || !strings.Contains(errOut.String(), "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errOut.String())
	}
}

func TestCommandsNeedDatabaseURL(t *testing.T) {
	t.Parallel()
	env, _, errOut := testEnv(nil)
	if code := run(context.Background(), env, []string{"migrate"}); code != 1 || !strings.Contains(errOut.String(), "DATABASE_URL") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}

// A replica lag bound that is not a duration is refused before anything
// connects.
func TestServeRefusesBadReplicaMaxLag(t *testing.T) {
	t.Parallel()
	env, _, errOut := testEnv(map[string]string{"DATABASE_URL": "postgres://unused",
		"LEDGER_REPLICA_URLS": "postgres://standby/ledger", "LEDGER_REPLICA_MAX_LAG": "soon"})
	if code := run(context.Background(), env, []string{"serve"}); code != 1 || !strings.Contains(errOut.String(), "LEDGER_REPLICA_MAX_LAG") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}

func TestBootstrapRequiresFlags(t *testing.T) {
	t.Parallel()
	env, _, errOut := testEnv(map[string]string{"DATABASE_URL": "postgres://unused"})
	if code := run(context.Background(), env, []string{"bootstrap", "--tenant", "Acme"}); code != 2 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errOut.String(), "--admin-email") {
		t.Fatalf("stderr %q does not name the missing flag", errOut.String())
	}
}

func TestBootstrapVerifyAndTamper(t *testing.T) {
	t.Parallel()
	dsn := testdb.NewURL(t)
	vars := map[string]string{"DATABASE_URL": dsn}
	ctx := context.Background()

	env, out, errOut := testEnv(vars)
	if code := run(ctx, env, []string{"bootstrap", "--tenant", "Acme", "--admin-name", "Ann Admin", "--admin-email", "ann@acme.example"}); code != 0 {
		t.Fatalf("bootstrap exit %d: %s", code, errOut.String())
	}
	var boot struct {
		TenantID string `json:"tenant_id"`
		UserID   string `json:"user_id"`
		APIKey   string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(out.String()), &boot); err != nil || boot.TenantID == "" || boot.UserID == "" || boot.APIKey == "" {
		t.Fatalf("bootstrap printed %q (%v)", out.String(), err)
	}

	env, out, errOut = testEnv(vars)
	if code := run(ctx, env, []string{"verify"}); code != 0 || !strings.Contains(out.String(), "OK") {
		t.Fatalf("verify on an intact store: exit %d, out %q, err %q", code, out.String(), errOut.String())
	}

	env, out, errOut = testEnv(vars)
	if code := run(ctx, env, []string{"rebuild", "all"}); code != 0 || !strings.Contains(out.String(), "rebuilt all") {
		t.Fatalf("rebuild all: exit %d, out %q, err %q", code, out.String(), errOut.String())
	}
	env, _, _ = testEnv(vars)
	if code := run(ctx, env, []string{"rebuild", "nonsense"}); code != 2 {
		t.Fatalf("rebuild of an unknown projection: exit %d", code)
	}
	env, _, errOut = testEnv(vars)
	if code := run(ctx, env, []string{"history", "--tenant", boot.TenantID, "--customer", boot.UserID}); code != 1 ||
		!strings.Contains(errOut.String(), "has no customer") {
		t.Fatalf("history of a user stream: exit %d, %q", code, errOut.String())
	}

	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var pos int64
	// Tampering needs a superuser who bypasses the append-only trigger.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `UPDATE events SET data = jsonb_set(data, '{name}', '"Mallory"')
			WHERE type = 'UserCreated' RETURNING position`).Scan(&pos)
	})
	if err != nil {
		t.Fatal(err)
	}
	env, _, errOut = testEnv(vars)
	if code := run(ctx, env, []string{"verify"}); code == 0 {
		t.Fatal("verify passed a tampered event")
	}
	if !strings.Contains(errOut.String(), fmt.Sprintf("position %d", pos)) {
		t.Fatalf("verify did not name event %d: %q", pos, errOut.String())
	}
}

func TestServeAnswersAndStopsGracefully(t *testing.T) {
	t.Parallel()
	dsn := testdb.NewURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, exit := startServe(ctx, t, map[string]string{"DATABASE_URL": dsn, "LEDGER_ADDR": "127.0.0.1:0"})
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := nethttp.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
		if path == "/metrics" && !bytes.Contains(body, []byte("ledger_projection")) {
			t.Errorf("/metrics lacks projection metrics")
		}
	}
	stopServe(t, "serve", cancel, exit)
}

// stopServe cancels a command's context (what SIGTERM does through
// signal.NotifyContext) and wants it to exit 0 within 30 s.
func stopServe(t *testing.T, name string, cancel context.CancelFunc, exit <-chan int) {
	t.Helper()
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("%s exited %d after shutdown", name, code)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop", name)
	}
}

func TestHistoryReplaysTheEventStore(t *testing.T) {
	t.Parallel()
	dsn := testdb.NewURL(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cmds := commandspkg.New(eventstore.New(pool), testdb.Keyring(t), log)
	boot, err := cmds.Bootstrap(ctx, "Acme", "Ann Admin", "ann@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	m := commandspkg.Meta{TenantID: boot.TenantID, Actor: domain.Actor{UserID: boot.UserID, Name: "Ann Admin", Role: domain.RoleAdmin}}
	bob, err := cmds.CreateUser(ctx, m, "Bob Baker", "bob@acme.example", domain.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	cust, err := cmds.RegisterCustomer(ctx, m, domain.Profile{FirstName: "Carla", Email: "carla@client.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmds.AssignUser(ctx, m, cust.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	between := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	if _, err := cmds.UnassignUser(ctx, m, cust.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"DATABASE_URL": dsn}
	historyOf := func(args ...string) history {
		t.Helper()
		env, out, errOut := testEnv(vars)
		args = append([]string{"history", "--tenant", boot.TenantID, "--customer", cust.ID, "--json"}, args...)
		if code := run(ctx, env, args); code != 0 {
			t.Fatalf("history exit %d: %s", code, errOut.String())
		}
		var h history
		if err := json.Unmarshal([]byte(out.String()), &h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	if h := historyOf(); len(h.Events) != 3 || len(h.Team) != 0 {
		t.Fatalf("history now: %+v", h)
	}
	h := historyOf("--as-of", between.Format(time.RFC3339Nano))
	if len(h.Team) != 1 || h.Team[0].Name != "Bob Baker" || h.Team[0].UserID != bob.ID {
		t.Fatalf("team as of %s: %+v", between, h.Team)
	}

	// What a user who has no IDs yet, or typed a flag wrong, is told.
	cli := func(args ...string) (int, string, string) {
		env, out, errOut := testEnv(vars)
		code := run(ctx, env, args)
		return code, out.String(), errOut.String()
	}
	if code, out, _ := cli("tenants"); code != 0 || !strings.Contains(out, boot.TenantID) || !strings.Contains(out, "Acme") {
		t.Fatalf("ledger tenants: exit %d: %q", code, out)
	}
	if code, _, errOut := cli("history", "--customer", cust.ID); code != 2 || !strings.Contains(errOut, "--tenant is required") ||
		!strings.Contains(errOut, "ledger tenants") {
		t.Fatalf("history without --tenant: exit %d: %q", code, errOut)
	}
	if code, _, errOut := cli("history", "--tenant", boot.TenantID, "--customer", cust.ID, "--as-of", "yesterday"); code != 2 ||
		strings.Contains(errOut, "2006") || !strings.Contains(errOut, `"yesterday"`) {
		t.Fatalf("history --as-of yesterday: exit %d: %q", code, errOut)
	}
	before := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	if code, out, _ := cli("history", "--tenant", boot.TenantID, "--customer", cust.ID, "--as-of", before); code != 0 ||
		!strings.Contains(out, "did not exist yet") || strings.Contains(out, "(nobody)") {
		t.Fatalf("history as of before the customer existed: exit %d: %q", code, out)
	}
	if code, out, _ := cli("history", "--tenant", boot.TenantID, "--customer", cust.ID, "--as-of", between.Format(time.RFC3339Nano)); code != 0 ||
		!strings.Contains(out, "UserAssigned") || !strings.Contains(out, "Bob Baker") {
		t.Fatalf("history --as-of lists no events: exit %d: %q", code, out)
	}
	if code, out, _ := cli("history", "--help"); code != 0 || !strings.Contains(out, "  --tenant") || strings.Contains(out, "  -tenant") {
		t.Fatalf("history --help spells flags unlike its usage line: %q", out)
	}
}

func TestLogsSpellDurations(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	newLogger(&b, slog.LevelInfo).Info("done", slog.Duration("took", 422867324*time.Nanosecond))
	if !strings.Contains(b.String(), `"took":"422.867324ms"`) {
		t.Fatalf("duration logged as %s", b.String())
	}
}
