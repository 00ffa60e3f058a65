package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/eventstore"
	ledgerhttp "github.com/assignment-ledger/ledger/http"
	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/ledgerlog"
	"github.com/assignment-ledger/ledger/mail"
	"github.com/assignment-ledger/ledger/projections"
)

// testBundle holds what a test needs besides the API under test.
type testBundle struct {
	pool   *pgxpool.Pool
	cmd    *commands.Commands
	base   string
	tenant string
	admin  *client
	runner *projections.Runner
	// signingKey signs the ledger log's checkpoints.
	signingKey ledgerlog.Key
}

type setupOpts struct {
	// noProjections leaves the projections stopped (X-Min-Position timeouts).
	noProjections bool
	// only runs just these projections (default: all).
	only []string
	// requestTimeout is the server's request time limit (default: the
	// configuration's).
	requestTimeout time.Duration
	// exportTimeout is the server's export time limit (default: the
	// configuration's).
	exportTimeout time.Duration
	// smallBuffers gives the server's sockets a small send buffer, so that a
	// client that stops reading stops a streamed export within a few
	// kilobytes.
	smallBuffers bool
	// smtpURL turns e-mail on: a relay delivers the outbox to this server.
	smtpURL string
	// serial runs the test alone rather than in parallel with the
	// package's others: a heavy test (a 10,000-row import and its
	// catch-up) would otherwise push their X-Min-Position waits past 5 s.
	serial bool
}

func setup(t *testing.T, opts ...setupOpts) *testBundle {
	t.Helper()
	var o setupOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	t.Parallel()
	pool := testdb.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := eventstore.New(pool)
	var cmdOpts []commands.Option
	if o.smtpURL != "" {
		cmdOpts = append(cmdOpts, commands.WithEmail())
	}
	cmd := commands.New(store, testdb.Keyring(t), log, cmdOpts...)
	runner, err := projections.New(pool, store, testdb.Keyring(t), log, projections.WithPollInterval(200*time.Millisecond), projections.WithProjections(o.only...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if !o.noProjections {
		go func() {
			defer close(done)
			_ = runner.Run(ctx)
		}()
	} else {
		close(done)
	}
	relayDone := make(chan struct{})
	if o.smtpURL != "" {
		sender, err := mail.ParseURL(o.smtpURL)
		if err != nil {
			t.Fatal(err)
		}
		relay, err := mail.NewRelay(pool, sender, "Acme <ledger@acme.example>", "https://ledger.example", log,
			mail.Config{PollInterval: 20 * time.Millisecond, Backoff: 20 * time.Millisecond, MaxAttempts: 3, Record: cmd.RecordEmailOutcome, Open: cmd.OpenEmail})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer close(relayDone)
			_ = relay.Run(ctx)
		}()
	} else {
		close(relayDone)
	}
	signingKey, _, err := ledgerlog.LoadOrCreateKey(filepath.Join(t.TempDir(), "signing-key"), "ledger.example")
	if err != nil {
		t.Fatal(err)
	}
	api := ledgerhttp.NewServer(ledgerhttp.Deps{
		Pool: pool, Store: store, Commands: cmd, Projections: runner, Queries: projections.NewQueries(pool, testdb.Keyring(t)),
		Log: log, BaseURL: "https://ledger.example", RequestTimeout: o.requestTimeout, ExportTimeout: o.exportTimeout,
		Ledger: ledgerlog.New(pool, signingKey, "https://ledger.example", log),
	})
	srv := httptest.NewUnstartedServer(api)
	if o.smallBuffers {
		srv.Listener = smallBufferListener{srv.Listener}
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		<-relayDone
	})
	boot, err := cmd.Bootstrap(context.Background(), "Acme", "Ann Admin", "ann@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	b := &testBundle{pool: pool, cmd: cmd, base: srv.URL, tenant: boot.TenantID, runner: runner, signingKey: signingKey}
	b.admin = &client{t: t, base: srv.URL, key: boot.APIKey, userID: boot.UserID}
	return b
}

// client speaks to the API as one user.
type client struct {
	t      *testing.T
	base   string
	key    string
	userID string
}

type response struct {
	status int
	header nethttp.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, r.body)
	}
}

// code is the problem code of an error answer.
func (r response) code() string {
	var p struct{ Code string }
	_ = json.Unmarshal(r.body, &p)
	return p.Code
}

type hdr map[string]string

func (c *client) do(method, path string, body any, headers ...hdr) response {
	c.t.Helper()
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, contentType = strings.NewReader(b), "application/json"
	case []byte:
		rd, contentType = bytes.NewReader(b), "application/json"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd, contentType = bytes.NewReader(raw), "application/json"
	}
	req, err := nethttp.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	for _, h := range headers {
		for k, v := range h {
			if v == "" {
				req.Header.Del(k)
			} else {
				req.Header.Set(k, v)
			}
		}
	}
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// must fails the test unless the answer has the wanted status.
func (c *client) must(status int, method, path string, body any, headers ...hdr) response {
	c.t.Helper()
	r := c.do(method, path, body, headers...)
	// A loaded test machine can keep the read models more than the
	// contract's 5 s behind a large import; nothing changed on such an
	// answer, so the test retries it as a client would.
	for try := 0; try < 5 && r.status == 503 && status != 503 && r.code() == "position_not_reached"; try++ {
		r = c.do(method, path, body, headers...)
	}
	if r.status != status {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, status, r.body)
	}
	return r
}

func (b *testBundle) createUser(t *testing.T, name, role string) *client {
	t.Helper()
	email := fmt.Sprintf("user.%d@acme.example", time.Now().UnixNano())
	u := b.admin.must(201, "POST", "/v1/users", map[string]string{"name": name, "email": email, "role": role}).json(t)
	id := u["id"].(string)
	key := b.admin.must(201, "POST", "/v1/users/"+id+"/api-keys", nil).json(t)["api_key"].(string)
	return &client{t: t, base: b.base, key: key, userID: id}
}

func (b *testBundle) createCustomer(t *testing.T, first string) string {
	t.Helper()
	email := fmt.Sprintf("%s.%d@client.example", strings.ToLower(first), time.Now().UnixNano())
	c := b.admin.must(201, "POST", "/v1/customers", map[string]string{"first_name": first, "last_name": "Client", "email": email}).json(t)
	return c["id"].(string)
}

func (b *testBundle) setPolicy(t *testing.T, max any, requireAssignee, requireLead, selfAssign bool) {
	t.Helper()
	b.admin.must(200, "PUT", "/v1/policy", map[string]any{"max_assignees": max, "require_assignee": requireAssignee,
		"require_lead": requireLead, "members_can_self_assign": selfAssign})
}

func (b *testBundle) countEvents(t *testing.T) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func assignees(t *testing.T, r response) []map[string]any {
	t.Helper()
	var c struct {
		Assignees []map[string]any `json:"assignees"`
	}
	r.decode(t, &c)
	return c.Assignees
}

// smallBufferListener shrinks the send buffer of every accepted connection.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}
