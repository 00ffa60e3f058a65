package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/internal/testdb"
)

// apiClient speaks to a served API with one key.
type apiClient struct {
	t    *testing.T
	base string
	key  string
	http *nethttp.Client
}

func (c *apiClient) do(method, path, body string, header ...string) (int, nethttp.Header, map[string]any, error) {
	req, err := nethttp.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	if m == nil {
		m = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, resp.Header, m, nil
}

func (c *apiClient) must(method, path, body string, want int, header ...string) (nethttp.Header, map[string]any) {
	c.t.Helper()
	code, h, m, err := c.do(method, path, body, header...)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	if code != want {
		c.t.Fatalf("%s %s: %d, want %d: %v", method, path, code, want, m)
	}
	return h, m
}

// register creates a customer and returns its ID and the answer's position.
func (c *apiClient) register(name string) (string, string) {
	c.t.Helper()
	h, m := c.must("POST", "/v1/customers", `{"first_name":"`+name+`","email":"`+strings.ToLower(name)+`@client.example"}`, 201)
	return m["id"].(string), h.Get("X-Ledger-Position")
}

// metric reads one sample of /metrics ("name{labels}" as exposed).
func (c *apiClient) metric(series string) float64 {
	c.t.Helper()
	resp, err := c.http.Get(c.base + "/metrics")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				c.t.Fatal(err)
			}
			return f
		}
	}
	c.t.Fatalf("no %s in /metrics", series)
	return 0
}

const (
	replicaReads = `ledger_read_queries_total{target="replica"}`
	primaryReads = `ledger_read_queries_total{target="primary"}`
)

// served runs read and says where it was answered: "replica", "primary"
// or "both" (another request counted meanwhile: nothing else runs here).
func (c *apiClient) served(read func()) string {
	c.t.Helper()
	r0, p0 := c.metric(replicaReads), c.metric(primaryReads)
	read()
	r1, p1 := c.metric(replicaReads), c.metric(primaryReads)
	switch {
	case r1-r0 == 1 && p1 == p0:
		return "replica"
	case p1-p0 == 1 && r1 == r0:
		return "primary"
	}
	return fmt.Sprintf("replica +%v, primary +%v", r1-r0, p1-p0)
}

// bootstrapAt makes a tenant through the CLI and returns its admin's key.
func bootstrapAt(ctx context.Context, t *testing.T, dsn string) string {
	t.Helper()
	env, out, errOut := testEnv(map[string]string{"DATABASE_URL": dsn})
	if code := run(ctx, env, []string{"bootstrap", "--tenant", "Acme", "--admin-name", "Ann", "--admin-email", "ann@acme.example"}); code != 0 {
		t.Fatalf("bootstrap: %d %s", code, errOut.String())
	}
	var boot struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(out.String()), &boot); err != nil {
		t.Fatal(err)
	}
	return boot.APIKey
}

// eventually retries cond every 50 ms for up to 60 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60 s", what)
		}
	}
}

// signInConsole signs in to the console with key and returns a browser
// holding the session (redirects not followed).
func signInConsole(t *testing.T, base, key string) *nethttp.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &nethttp.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*nethttp.Request, []*nethttp.Request) error { return nethttp.ErrUseLastResponse }}
	resp, err := b.Get(base + "/sign-in")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	u, _ := url.Parse(base + "/sign-in")
	var tok string
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "ledger_sign_in" {
			tok = ck.Value
		}
	}
	resp, err = b.PostForm(base+"/sign-in", url.Values{"api_key": {key}, "csrf": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != nethttp.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	return b
}

// A real primary and a real hot standby, `ledger serve` with
// LEDGER_REPLICA_URLS: GETs with and without X-Min-Position are answered
// by the standby (the metric says so) and see the client's own writes; the
// standby stopped under load leaves every read answered by the primary
// (no 5xx) and is taken back once it is started again; the standby's
// replay paused makes the lag bound send reads to the primary.
// replicatedServe is `ledger serve` over a primary and a hot standby it
// reads from (LEDGER_REPLICA_MAX_LAG 2s), with a client of the tenant's
// first admin; stop ends serve and checks it exits 0.
type replicatedServe struct {
	c    *testdb.Replicated
	api  *apiClient
	base string
	key  string
	stop func()
}

func serveWithReplica(ctx context.Context, t *testing.T) replicatedServe {
	t.Helper()
	c := testdb.NewReplicated(t, testdb.ReplicatedOptions{})
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	key := bootstrapAt(ctx, t, c.PrimaryURL())
	base, exit := startServe(ctx, t, map[string]string{"DATABASE_URL": c.PrimaryURL(), "LEDGER_ADDR": "127.0.0.1:0",
		"LEDGER_REPLICA_URLS": c.ReplicaURL(), "LEDGER_REPLICA_MAX_LAG": "2s"})
	api := &apiClient{t: t, base: base, key: key, http: &nethttp.Client{Timeout: 30 * time.Second}}
	return replicatedServe{c: c, api: api, base: base, key: key, stop: func() { stopServe(t, "serve", cancel, exit) }}
}

func TestReadsGoToAHealthyReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := serveWithReplica(ctx, t)
	c, api, base, key := rs.c, rs.api, rs.base, rs.key
	replica := fmt.Sprintf(`ledger_replica_lag_seconds{replica="127.0.0.1:%d"}`, c.ReplicaPort)

	// The router's first checks take the replica in.
	eventually(t, "the replica taken in", func() bool {
		id, pos := api.register(fmt.Sprintf("Warm%d", time.Now().UnixNano()))
		return api.served(func() { api.must("GET", "/v1/customers/"+id, "", 200, "X-Min-Position", pos) }) == "replica"
	})

	// onReplica repeats read (which checks its answer) until the replica
	// served it: a loaded machine may put the replica past the lag bound
	// for a moment, and the read then rightly goes to the primary.
	onReplica := func(what string, read func()) {
		t.Helper()
		eventually(t, what+" served by the replica", func() bool { return api.served(read) == "replica" })
	}

	// With X-Min-Position: read models (the list, My Clients' source) and
	// the write model (the customer) on the replica, each with the write.
	carla, pos := api.register("Carla")
	onReplica("GET /v1/customers with X-Min-Position", func() {
		_, m := api.must("GET", "/v1/customers", "", 200, "X-Min-Position", pos)
		if raw, _ := json.Marshal(m); !strings.Contains(string(raw), carla) {
			t.Errorf("the list read at the write's position lacks %s: %s", carla, raw)
		}
	})
	onReplica("GET /v1/customers/{id} with X-Min-Position", func() {
		api.must("GET", "/v1/customers/"+carla, "", 200, "X-Min-Position", pos)
	})
	onReplica("GET /v1/audit with X-Min-Position", func() {
		_, m := api.must("GET", "/v1/audit", "", 200, "X-Min-Position", pos)
		if raw, _ := json.Marshal(m); !strings.Contains(string(raw), carla) {
			t.Errorf("the audit log read at the write's position lacks %s: %s", carla, raw)
		}
	})
	// The ledger log: the latest checkpoint on the primary (reading it may
	// sign one), not counted as a routed read; its proofs on the replica.
	var size float64
	if got := api.served(func() {
		_, cp := api.must("GET", "/v1/ledger/checkpoint", "", 200, "X-Min-Position", pos, "Accept", "application/json")
		size, _ = cp["tree_size"].(float64)
	}); got != "replica +0, primary +0" || size < 1 {
		t.Fatalf("GET /v1/ledger/checkpoint: %s, tree size %v", got, size)
	}
	onReplica("GET /v1/ledger/proofs/inclusion", func() {
		api.must("GET", fmt.Sprintf("/v1/ledger/proofs/inclusion?leaf_index=0&tree_size=%d", int64(size)), "", 200, "X-Min-Position", pos)
	})
	// The console's pages: one shown after a command (?pos=) and a plain one.
	browser := signInConsole(t, base, key)
	for _, page := range []string{"/customers?pos=" + pos, "/customers", "/my-clients"} {
		onReplica("console "+page, func() {
			resp, err := browser.Get(base + page)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || (page != "/my-clients" && !strings.Contains(string(body), "Carla")) {
				t.Errorf("console %s: %d %.300s", page, resp.StatusCode, body)
			}
		})
	}
	// Without: a read model from a replica within the lag bound, which
	// soon has the write.
	dora, _ := api.register("Dora")
	eventually(t, "the replica has Dora", func() bool {
		var code int
		var m map[string]any
		got := api.served(func() { code, _, m, _ = api.do("GET", "/v1/customers?q=Dora", "") })
		raw, _ := json.Marshal(m)
		return got == "replica" && code == 200 && strings.Contains(string(raw), dora)
	})
	// A read of the event store alone stays on the primary without a
	// position: it shows the latest write, so an erased customer answers
	// 410 at once (found by hostile testing: its data, from a replica that
	// had not replayed the erasure).
	api.must("DELETE", "/v1/customers/"+dora, "", 204)
	for _, path := range []string{"/v1/customers/" + dora, "/v1/customers/" + dora + "/history"} {
		want := 410
		if strings.HasSuffix(path, "/history") {
			want = 200
		}
		if got := api.served(func() { api.must("GET", path, "", want) }); got != "primary" {
			t.Errorf("GET %s without a position: served by %s", path, got)
		}
	}
	t.Logf("replica lag while idle: %v s", api.metric(replica))

	// The replica stopped under load: every read answered, none 5xx.
	var (
		statuses sync.Map
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	count := func(code int) {
		v, _ := statuses.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	loadUntil := time.Now().Add(2 * time.Minute)
	for g := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load() && time.Now().Before(loadUntil); i++ {
				id, pos := api.register(fmt.Sprintf("Load%dx%d", g, i))
				for _, path := range []string{"/v1/customers/" + id, "/v1/customers?q=Load", "/v1/audit?limit=5"} {
					for _, h := range [][]string{{"X-Min-Position", pos}, nil} {
						code, _, m, err := api.do("GET", path, "", h...)
						if err != nil {
							t.Errorf("GET %s: %v", path, err)
							return
						}
						// Without a position a read may come before the
						// write (a replica within the lag bound): a 404
						// of the customer just made is allowed then.
						if code != 200 && (h != nil || code != 404) {
							t.Errorf("GET %s %v: %d %v", path, h, code, m)
						}
						count(code)
					}
				}
			}
		})
	}
	time.Sleep(time.Second)
	r0 := api.metric(replicaReads)
	if r0 == 0 {
		t.Fatal("no read on the replica before it stopped")
	}
	if err := c.StopReplica(); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	time.Sleep(2 * time.Second)
	p0 := api.metric(primaryReads)
	time.Sleep(time.Second)
	rStopped, p1 := api.metric(replicaReads), api.metric(primaryReads)
	if p1 <= p0 {
		t.Errorf("reads on the primary with the replica down: %v then %v", p0, p1)
	}
	if err := c.StartReplica(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "reads back on the replica", func() bool { return api.metric(replicaReads) > rStopped })
	t.Logf("replica down %v; reads back on it after its restart", time.Since(stoppedAt).Round(time.Millisecond))
	stop.Store(true)
	wg.Wait()
	statuses.Range(func(k, v any) bool {
		t.Logf("status %d: %d reads", k, v.(*atomic.Int64).Load())
		return true
	})

	// The replay paused: writes move the primary on, the lag passes the
	// bound, and reads go to the primary until the replay resumes.
	standby, err := pgxpool.New(ctx, c.ReplicaURL())
	if err != nil {
		t.Fatal(err)
	}
	defer standby.Close()
	eventually(t, "the replica caught up", func() bool { return api.metric(replica) < 0.5 })
	if _, err := standby.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "lag past the bound", func() bool {
		api.register(fmt.Sprintf("Paused%d", time.Now().UnixNano()))
		return api.metric(replica) > 2
	})
	erin, pos := api.register("Erin")
	for _, read := range []struct {
		path   string
		header []string
	}{{"/v1/customers/" + erin, nil}, {"/v1/customers", []string{"X-Min-Position", pos}}, {"/v1/customers/" + erin, []string{"X-Min-Position", pos}}} {
		if got := api.served(func() { api.must("GET", read.path, "", 200, read.header...) }); got != "primary" {
			t.Errorf("GET %s %v with the replica paused: served by %s", read.path, read.header, got)
		}
	}
	if _, err := standby.Exec(ctx, `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "reads back on the resumed replica", func() bool {
		return api.served(func() { api.must("GET", "/v1/customers/"+erin, "", 200, "X-Min-Position", pos) }) == "replica"
	})
	rs.stop()
}

// A replica that hangs (SIGSTOP: a frozen host, a partition without a
// reset) is given up on within replicaAnswerWithin, and the primary
// answers: no read waits out the request's deadline to answer 503 (found
// by hostile testing).
func TestAHungReplicaIsGivenUp(t *testing.T) {
	t.Parallel()
	rs := serveWithReplica(context.Background(), t)
	c, api := rs.c, rs.api
	eventually(t, "the replica taken in", func() bool {
		return api.served(func() { api.must("GET", "/v1/customers?limit=5", "", 200) }) == "replica"
	})

	thaw, err := c.FreezeReplica()
	if err != nil {
		t.Fatal(err)
	}
	defer thaw()
	// Reads sent at once, while the router still takes the replica for
	// healthy: each is answered, by the primary.
	var wg sync.WaitGroup
	for _, path := range []string{"/v1/customers?limit=5", "/v1/users", "/v1/groups", "/v1/audit?limit=5"} {
		wg.Go(func() {
			if code, _, m, err := api.do("GET", path, ""); err != nil || code != 200 {
				t.Errorf("GET %s with the replica frozen: %d %v %v", path, code, m, err)
			}
		})
	}
	wg.Wait()
	thaw()
	rs.stop()
}
