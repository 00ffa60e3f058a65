package main

import (
	"context"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/smtptest"
	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/projections"
)

// A synchronous standby, `ledger serve` on a multi-host DATABASE_URL
// (target_session_attrs=read-write) with both clusters as its replicas,
// commands and reads running; the primary killed (pg_ctl stop -m
// immediate) and the standby promoted. The service answers 503 only after
// the kill, carries on with the new primary without a restart, every
// command it acknowledged is there, the outbox relay delivers and the
// notification listener is back, the old primary rejoined as a standby is
// read from as a replica, the projections resume and equal a rebuild (each
// event applied once), and `ledger verify` passes. The time from the kill
// to the first acknowledged command is logged.
func TestFailoverToAPromotedSynchronousStandby(t *testing.T) {
	t.Parallel()
	c := testdb.NewReplicated(t, testdb.ReplicatedOptions{Sync: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	key := bootstrapAt(ctx, t, c.PrimaryURL())
	sink := smtptest.Start(t)
	vars := map[string]string{"DATABASE_URL": c.MultiHostURL(), "LEDGER_ADDR": "127.0.0.1:0",
		"LEDGER_REPLICA_URLS": c.PrimaryURL() + "," + c.ReplicaURL(), "LEDGER_REQUEST_TIMEOUT": "5s",
		"LEDGER_SMTP_URL": sink.URL(), "LEDGER_MAIL_FROM": "ledger@acme.example"}
	base, exit := startServe(ctx, t, vars)
	api := &apiClient{t: t, base: base, key: key, http: &nethttp.Client{Timeout: 30 * time.Second}}

	type answer struct {
		at   time.Time
		code int
	}
	var (
		mu      sync.Mutex
		answers []answer
		acked   []string
		killed  time.Time
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for g := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var code int
				var m map[string]any
				var err error
				if i%3 == 2 {
					code, _, m, err = api.do("GET", "/v1/customers?limit=5", "")
				} else {
					name := fmt.Sprintf("F%dx%d", g, i)
					code, _, m, err = api.do("POST", "/v1/customers", `{"first_name":"`+name+`","email":"`+name+`@client.example"}`)
				}
				if err != nil {
					t.Errorf("request: %v", err)
					return
				}
				if code == 503 && m["code"] != "unavailable" {
					t.Errorf("503 %v, want the problem code unavailable", m)
				}
				mu.Lock()
				answers = append(answers, answer{time.Now(), code})
				if code == 201 {
					acked = append(acked, m["id"].(string))
				}
				mu.Unlock()
				if code >= 500 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	kill := time.Now()
	if err := c.KillPrimary(); err != nil {
		t.Fatal(err)
	}
	// From here the primary is down; a command in flight while it stopped
	// may still have been acknowledged by it.
	mu.Lock()
	killed = time.Now()
	mu.Unlock()
	// An operator (or Patroni) takes a moment to promote.
	time.Sleep(300 * time.Millisecond)
	if err := c.Promote(); err != nil {
		t.Fatal(err)
	}
	// recovered is the first command acknowledged after the kill; reads
	// may be answered before it, by the standby while it still replays.
	var recovered, firstRead time.Time
	eventually(t, "commands acknowledged after the promotion", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range answers {
			if a.at.After(killed) && a.code == 201 {
				if recovered.IsZero() {
					recovered = a.at
				}
				n++
			}
			if a.at.After(killed) && a.code == 200 && firstRead.IsZero() {
				firstRead = a.at
			}
		}
		return n >= 100
	})
	close(stop)
	wg.Wait()

	var last503 time.Time
	codes := map[int]int{}
	for _, a := range answers {
		codes[a.code]++
		switch {
		case a.code == 503 && a.at.Before(kill):
			t.Errorf("503 before the kill")
		case a.code == 503:
			last503 = a.at
		case a.code != 200 && a.code != 201:
			t.Errorf("answer %d", a.code)
		}
	}
	t.Logf("answers %v; from the kill to the first acknowledged command %v (first read answered after %v); last 503 %v after the kill; %d commands acknowledged",
		codes, recovered.Sub(killed).Round(time.Millisecond), firstRead.Sub(killed).Round(time.Millisecond),
		last503.Sub(killed).Round(time.Millisecond), len(acked))

	// The outbox relay carries on with the new primary: an invitation
	// e-mailed after the failover is delivered, once.
	api.must("POST", "/v1/clients/invitations", `{"first_name":"Ivy","email":"ivy@client.example","send_email":true}`, 201)
	if got := sink.Wait(t, 1, 60*time.Second); len(got) != 1 || !slices.Contains(got[0].To, "ivy@client.example") {
		t.Fatalf("e-mails after the failover: %+v", got)
	}

	// The listener for notifications reconnected to the new primary.
	newPrimary, err := pgxpool.New(ctx, c.ReplicaURL())
	if err != nil {
		t.Fatal(err)
	}
	defer newPrimary.Close()
	eventually(t, "a LISTEN session on the new primary", func() bool {
		var n int
		err := newPrimary.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ledger' AND query LIKE 'LISTEN %'`).Scan(&n)
		return err == nil && n > 0
	})

	// Roles swapped: the old primary comes back as a standby of the new
	// one, on its old address, and the router takes it as a replica.
	if err := c.RejoinAsStandby(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "reads on the rejoined old primary", func() bool {
		id, pos := api.register(fmt.Sprintf("Back%d", time.Now().UnixNano()))
		return api.served(func() { api.must("GET", "/v1/customers/"+id, "", 200, "X-Min-Position", pos) }) == "replica"
	})

	// Every acknowledged command is on the new primary.
	pool, err := pgxpool.New(ctx, c.ReplicaURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var missing []string
	if err := pool.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}') FROM unnest($1::uuid[]) id WHERE NOT EXISTS (SELECT 1 FROM streams WHERE stream_id = id)`,
		acked).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d acknowledged customers lost: %v", len(missing), len(acked), missing[:min(5, len(missing))])
	}

	// The projections resumed on the new primary and caught up.
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
		t.Fatalf("projections after the failover: %v", err)
	}
	stopServe(t, "serve", cancel, exit)

	var events, audit, distinct int
	if err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM events), count(*), count(DISTINCT position) FROM audit_log`).
		Scan(&events, &audit, &distinct); err != nil {
		t.Fatal(err)
	}
	if audit != events || distinct != events {
		t.Errorf("%d events: %d audit rows, %d distinct", events, audit, distinct)
	}
	if got := sink.Messages(); len(got) != 1 {
		t.Errorf("%d e-mails delivered, want the one invitation", len(got))
	}
	live := readModels(t, pool)
	env, _, errOut := testEnv(map[string]string{"DATABASE_URL": c.ReplicaURL()})
	if code := run(context.Background(), env, []string{"rebuild", "all"}); code != 0 {
		t.Fatalf("rebuild: %d %s", code, errOut.String())
	}
	rebuilt := readModels(t, pool)
	for tbl, rows := range live {
		if !slices.Equal(rows, rebuilt[tbl]) {
			t.Errorf("%s: %d rows live after the failover, %d rebuilt", tbl, len(rows), len(rebuilt[tbl]))
		}
	}
	env, _, errOut = testEnv(map[string]string{"DATABASE_URL": c.ReplicaURL()})
	if code := run(context.Background(), env, []string{"verify"}); code != 0 {
		t.Fatalf("verify on the new primary: %d %s", code, errOut.String())
	}
}
