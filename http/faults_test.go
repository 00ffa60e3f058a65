package http_test

import (
	"context"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// adminConn connects to the cluster's maintenance database, outside the
// test's own database, to do to it what an operator or an outage would.
func adminConn(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (b *testBundle) dbName(t *testing.T) string {
	t.Helper()
	var name string
	if err := b.pool.QueryRow(context.Background(), `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// cutDatabase does to the test's database what a restart does to the
// service: it ends every connection and refuses new ones, until the returned
// function lets them in again (cleanup does too).
func (b *testBundle) cutDatabase(t *testing.T) (restore func()) {
	t.Helper()
	db := b.dbName(t)
	name := pgx.Identifier{db}.Sanitize()
	conn := adminConn(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()`, db); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore = func() {
		if restored {
			return
		}
		restored = true
		if _, err := conn.Exec(context.Background(), `ALTER DATABASE `+name+` ALLOW_CONNECTIONS true`); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(restore)
	return restore
}

func mustUnavailable(t *testing.T, r response, what string) {
	t.Helper()
	if r.status != 503 || r.code() != "unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("%s with the database down: %d %v %s, want 503 unavailable with Retry-After", what, r.status, r.header, r.body)
	}
}

func TestDatabaseOutageAnswers503(t *testing.T) {
	b := setup(t, setupOpts{noProjections: true})
	cust := b.createCustomer(t, "Carla")
	u := b.createUser(t, "Uma One", "member")
	anon := &client{t: t, base: b.base}
	restore := b.cutDatabase(t)

	mustUnavailable(t, b.admin.do("GET", "/v1/customers/"+cust, nil), "a read of the event store")
	mustUnavailable(t, b.admin.do("GET", "/v1/customers", nil), "a read of a projection")
	mustUnavailable(t, b.admin.do("POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID}), "a command")
	mustUnavailable(t, b.admin.do("PUT", "/v1/policy", map[string]any{"max_assignees": nil, "require_assignee": false,
		"require_lead": false, "members_can_self_assign": true}), "a locked command")
	mustUnavailable(t, b.admin.do("GET", "/v1/customers", nil, hdr{"Accept": "text/csv"}), "an export that fails before its first byte")
	if r := anon.do("GET", "/readyz", nil); r.status != 503 {
		t.Fatalf("/readyz with the database down: %d %s", r.status, r.body)
	}

	restore()
	b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID})
	anon.must(200, "GET", "/readyz", nil)
}

func TestBlockedDatabaseAnswers503InTime(t *testing.T) {
	b := setup(t, setupOpts{noProjections: true, requestTimeout: time.Second})
	cust := b.createCustomer(t, "Carla")
	u := b.createUser(t, "Uma One", "member")
	anon := &client{t: t, base: b.base}

	ctx := context.Background()
	locker, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Rollback(ctx) //nolint:errcheck
	if _, err := locker.Exec(ctx, `LOCK TABLE events IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what string
		do   func() response
	}{
		{"a command", func() response {
			return b.admin.do("POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID})
		}},
		{"a read", func() response { return b.admin.do("GET", "/v1/customers/"+cust+"/history", nil) }},
	} {
		start := time.Now()
		r := tc.do()
		if d := time.Since(start); d > 4*time.Second {
			t.Fatalf("%s waited %s on a locked table, want about the 1 s request timeout", tc.what, d)
		}
		mustUnavailable(t, r, tc.what)
	}
	start := time.Now()
	if r := anon.do("GET", "/readyz", nil); r.status != 503 || time.Since(start) > 4*time.Second {
		t.Fatalf("/readyz with the events table locked: %d after %s: %s", r.status, time.Since(start), r.body)
	}
	if err := locker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID})
	anon.must(200, "GET", "/readyz", nil)
}

// slowReader is a client whose sockets take little at a time, so that an
// export it stops reading stops too.
func slowReader() *nethttp.Client {
	d := &net.Dialer{}
	return &nethttp.Client{Transport: &nethttp.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(4096)
			}
			return c, err
		},
	}}
}

func TestExportFailingMidwayAbortsTheResponse(t *testing.T) {
	b := setup(t, setupOpts{smallBuffers: true})
	// More rows than one page of the exports' reads (1,000), so that the
	// export goes back to the database after its first bytes went out.
	var file strings.Builder
	file.WriteString("First Name,Last Name,Email,Phone Number,Team\n")
	for i := range 1500 {
		fmt.Fprintf(&file, "Name%d,Client,c%d@client.example,+1 555 %04d,\n", i, i, i)
	}
	imp := b.admin.csv("POST", "/v1/clients/import", file.String())
	if imp.status != 200 {
		t.Fatalf("import: %d %s", imp.status, imp.body)
	}
	pos := imp.header.Get("X-Ledger-Position")
	b.admin.readAfter(pos, "/v1/customers?limit=1")
	b.admin.readAfter(pos, "/v1/audit?limit=1")

	for _, tc := range []struct{ path, accept string }{
		{"/v1/customers", "text/csv"},
		{"/v1/audit", "text/csv"},
		{"/v1/audit", "application/x-ndjson"},
	} {
		t.Run(tc.path+" "+tc.accept, func(t *testing.T) {
			req, _ := nethttp.NewRequest("GET", b.base+tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+b.admin.key)
			req.Header.Set("Accept", tc.accept)
			resp, err := slowReader().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("export: %d", resp.StatusCode)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
				t.Fatal(err)
			}
			// The server is stuck writing its first page; the database goes.
			restore := b.cutDatabase(t)
			defer restore()
			rest, err := io.ReadAll(resp.Body)
			if err == nil {
				t.Fatalf("the export ended cleanly after %d more bytes with the database gone: a truncated file looks complete", len(rest))
			}
		})
	}
}

// After an outage the projections carry on by themselves: a read of one's
// own write is answered once they have caught up. (How soon is not this
// test's business: on a loaded machine it has taken longer than the 5 s
// an X-Min-Position waits, so the read is retried on 503.)
func TestProjectionsResumeAfterAnOutage(t *testing.T) {
	b := setup(t)
	cust := b.createCustomer(t, "Carla")
	restore := b.cutDatabase(t)
	time.Sleep(2 * time.Second) // the subscribers fail their polls meanwhile
	restore()
	u := b.createUser(t, "Uma One", "member")
	pos := b.admin.must(200, "POST", "/v1/customers/"+cust+"/assignees", map[string]string{"user_id": u.userID}).header.Get("X-Ledger-Position")
	start := time.Now()
	for {
		r := b.admin.do("GET", "/v1/customers?assigned_user="+u.userID, nil, hdr{"X-Min-Position": pos})
		if r.status == 200 {
			t.Logf("caught up %s after the database came back", time.Since(start).Round(time.Millisecond))
			return
		}
		if r.status != 503 || time.Since(start) > time.Minute {
			t.Fatalf("projections after an outage: %d after %s: %s", r.status, time.Since(start), r.body)
		}
	}
}
