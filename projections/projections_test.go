package projections

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

type testBundle struct {
	pool   *pgxpool.Pool
	store  *eventstore.Store
	runner *Runner
	q      *Queries
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func setup(t *testing.T, opts ...Option) testBundle {
	t.Helper()
	pool := testdb.New(t)
	store := eventstore.New(pool)
	r, err := New(pool, store, testdb.Keyring(t), testLogger(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return testBundle{pool: pool, store: store, runner: r, q: NewQueries(pool, testdb.Keyring(t))}
}

// start runs r until the returned stop is called (or the test ends).
func start(t *testing.T, r *Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("runner: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, r *Runner, pos int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, pos); err != nil {
		t.Fatalf("wait for %d: %v", pos, err)
	}
}

// snapshot reads every projection table, each row as text, sorted.
func snapshot(t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, p := range all() {
		for _, tbl := range p.tableNames() {
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
	}
	return out
}

func compareSnapshots(t *testing.T, what string, a, b map[string][]string) {
	t.Helper()
	for tbl, rows := range a {
		other := b[tbl]
		if slices.Equal(rows, other) {
			continue
		}
		t.Errorf("%s: table %s differs: %d rows vs %d", what, tbl, len(rows), len(other))
		for i := 0; i < max(len(rows), len(other)); i++ {
			var x, y string
			if i < len(rows) {
				x = rows[i]
			}
			if i < len(other) {
				y = other[i]
			}
			if x != y {
				t.Errorf("first difference at row %d:\n  %s\n  %s", i, x, y)
				break
			}
		}
	}
}

// checkAgainstDomain compares the read models with the domain's own view of
// every customer.
// checkFollowUps compares the customer's listed follow-ups with the
// domain's live ones.
func checkFollowUps(t *testing.T, q *Queries, tenantID string, c domain.Customer) {
	t.Helper()
	// Pages of two, so that the cursor is under test too.
	var got []FollowUp
	err := eachItem(func(cursor string) (Page[FollowUp], error) {
		return q.CustomerFollowUps(context.Background(), tenantID, c.ID, 2, cursor)
	}, func(f FollowUp) error { got = append(got, f); return nil })
	if err != nil {
		t.Fatalf("customer %s follow-ups: %v", c.ID, err)
	}
	var want []FollowUp
	for _, f := range c.FollowUps {
		if f.Status != domain.FollowUpStatusCancelled {
			want = append(want, FollowUp{ID: f.ID, CustomerID: c.ID, DueAt: f.DueAt, Note: f.Note, To: f.To, Status: f.Status,
				CreatedBy: f.CreatedBy, CreatedAt: f.CreatedAt})
		}
	}
	key := func(f FollowUp) string { return f.ID }
	slices.SortFunc(got, func(a, b FollowUp) int { return cmp.Compare(key(a), key(b)) })
	slices.SortFunc(want, func(a, b FollowUp) int { return cmp.Compare(key(a), key(b)) })
	same := func(a, b FollowUp) bool {
		return a.ID == b.ID && a.CustomerID == b.CustomerID && a.DueAt.Equal(b.DueAt) && a.Note == b.Note && a.To == b.To &&
			a.Status == b.Status && a.CreatedBy == b.CreatedBy && a.CreatedAt.Equal(b.CreatedAt)
	}
	if !slices.EqualFunc(got, want, same) {
		t.Errorf("customer %s follow-ups:\n got %+v\nwant %+v", c.ID, got, want)
	}
}

func checkAgainstDomain(t *testing.T, q *Queries, w *world) {
	t.Helper()
	ctx := context.Background()
	for _, tn := range w.tenants {
		type mine struct {
			lead bool
			at   time.Time
		}
		byUser := map[string]map[string]mine{}
		for _, wc := range tn.customers {
			c := wc.c
			got, err := q.Customer(ctx, tn.id, c.ID)
			if err != nil {
				t.Fatalf("customer %s: %v", c.ID, err)
			}
			if got.Status != string(c.Status) || got.Version != c.Version || got.FirstName != c.Profile.FirstName ||
				got.Email != c.Profile.Email || got.Title != c.Profile.Title || !got.CreatedAt.Equal(c.CreatedAt) {
				t.Errorf("customer %s: got %+v, domain %+v", c.ID, got, c)
			}
			var wantGroups []GroupRef
			for _, g := range c.Groups {
				for _, wg := range tn.groups {
					if wg.g.ID == g && !wg.g.Deleted {
						wantGroups = append(wantGroups, GroupRef{ID: g, Name: wg.g.Name})
					}
				}
			}
			slices.SortFunc(wantGroups, func(a, b GroupRef) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
			if len(got.Groups) != len(wantGroups) || (len(wantGroups) > 0 && !slices.Equal(got.Groups, wantGroups)) {
				t.Errorf("customer %s: groups %+v, domain %+v", c.ID, got.Groups, wantGroups)
			}
			checkFollowUps(t, q, tn.id, c)
			if len(got.Assignees) != len(c.Team) {
				t.Errorf("customer %s: assignees %+v, domain team %+v", c.ID, got.Assignees, c.Team)
				continue
			}
			for i, m := range c.Team {
				a := got.Assignees[i]
				if a.UserID != m.UserID || a.Lead != m.Lead || !a.AssignedAt.Equal(m.AssignedAt) || a.Name != w.names[m.UserID] {
					t.Errorf("customer %s: assignee %d = %+v, domain %+v", c.ID, i, a, m)
				}
				if byUser[m.UserID] == nil {
					byUser[m.UserID] = map[string]mine{}
				}
				byUser[m.UserID][c.ID] = mine{m.Lead, m.AssignedAt}
			}
		}
		groups, err := q.Groups(ctx, tn.id)
		if err != nil {
			t.Fatal(err)
		}
		var live int
		for _, wg := range tn.groups {
			if wg.g.Deleted {
				continue
			}
			live++
			n := 0
			for _, wc := range tn.customers {
				if wc.c.InGroup(wg.g.ID) {
					n++
				}
			}
			i := slices.IndexFunc(groups, func(g Group) bool { return g.ID == wg.g.ID })
			if i < 0 || groups[i].Name != wg.g.Name || groups[i].Customers != n {
				t.Errorf("group %+v with %d customers: listed %+v", wg.g, n, groups)
				continue
			}
			page, err := q.Customers(ctx, tn.id, CustomerFilter{Group: wg.g.ID}, 500, "")
			if err != nil || len(page.Items) != n {
				t.Errorf("group %s filter: %d customers (%v), domain %d", wg.g.ID, len(page.Items), err, n)
			}
		}
		if len(groups) != live {
			t.Errorf("%d groups listed, %d live", len(groups), live)
		}
		for _, u := range tn.users {
			page, err := q.MyClients(ctx, tn.id, u, "", 500, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != len(byUser[u]) {
				t.Errorf("user %s: %d clients, domain %d", u, len(page.Items), len(byUser[u]))
			}
			for i, it := range page.Items {
				want, ok := byUser[u][it.ID]
				if !ok || want.lead != it.Lead || !want.at.Equal(it.AssignedAt) {
					t.Errorf("user %s: client %+v, domain %+v (%v)", u, it, want, ok)
				}
				if i > 0 && it.AssignedAt.After(page.Items[i-1].AssignedAt) {
					t.Errorf("user %s: clients not newest first", u)
				}
			}
		}
	}
}

func TestLiveProjectionsEqualRebuildAndDomain(t *testing.T) {
	t.Parallel()
	b := setup(t, WithBatchSize(50))
	ctx := context.Background()
	w := newWorld(t, b.store, 1)
	start(t, b.runner)
	w.run(ctx, 2500)
	waitFor(t, b.runner, w.lastPos)

	checkAgainstDomain(t, b.q, w)
	// One runner alone keeps its cache: customers come from the batches
	// (the read path is taken when two runners alternate, below).
	if st := b.runner.FoldStats(); st.FromBatch == 0 {
		t.Errorf("folded %d customers from batches and read %d", st.FromBatch, st.Read)
	}
	live := snapshot(t, b.pool)
	var calls int
	var last [2]int64
	if err := b.runner.Rebuild(ctx, "all", func(done, total int64) { calls, last = calls+1, [2]int64{done, total} }); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if calls == 0 || last[0] != last[1] {
		t.Errorf("progress: %d calls, last %v", calls, last)
	}
	compareSnapshots(t, "live vs rebuilt", live, snapshot(t, b.pool))
	// The notifications alone: read and decoded without the folds.
	if err := b.runner.Rebuild(ctx, Notifications, nil); err != nil {
		t.Fatalf("rebuild notifications: %v", err)
	}
	compareSnapshots(t, "live vs notifications rebuilt alone", live, snapshot(t, b.pool))
	// The swapped-in table keeps its storage parameters (room for HOT
	// updates) and its indexes, and autovacuum, off while it was built, is
	// back on.
	var opts, auditOpts []string
	var indexes int
	if err := b.pool.QueryRow(ctx, `SELECT coalesce(c.reloptions, '{}'), (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid),
		(SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = 'public.audit_log'::regclass)
		FROM pg_class c WHERE c.oid = 'public.customer_list'::regclass`).Scan(&opts, &indexes, &auditOpts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(opts, []string{"fillfactor=80"}) || indexes != 3 || len(auditOpts) != 0 {
		t.Errorf("rebuilt customer_list: options %v, %d indexes; audit_log options %v", opts, indexes, auditOpts)
	}
	var audit int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&audit); err != nil {
		t.Fatal(err)
	}
	if audit != w.events {
		t.Errorf("audit_log has %d rows, %d events appended", audit, w.events)
	}
	// customer_id is taken from the stream of customer events: it must be
	// the customer the event's data names, and nothing for other events.
	var wrongCustomer int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log a JOIN events e USING (position)
		WHERE a.customer_id IS DISTINCT FROM nullif(e.data->>'customer_id', '')::uuid`).Scan(&wrongCustomer); err != nil {
		t.Fatal(err)
	}
	if wrongCustomer != 0 {
		t.Errorf("%d audit_log rows name another customer than their event", wrongCustomer)
	}
	// The notifications are made in Go from typed events; they must be
	// what the SQL derivation from the events' JSON they replaced made.
	var notifications, missing, extra int
	if err := b.pool.QueryRow(ctx, `WITH want AS (`+qNotificationsFromJSON+`)
		SELECT (SELECT count(*) FROM notifications),
		       (SELECT count(*) FROM (SELECT * FROM want EXCEPT SELECT * FROM notifications) m),
		       (SELECT count(*) FROM (SELECT * FROM notifications EXCEPT SELECT * FROM want) x)`).Scan(&notifications, &missing, &extra); err != nil {
		t.Fatal(err)
	}
	if notifications == 0 || missing != 0 || extra != 0 {
		t.Errorf("notifications: %d rows, %d missing and %d extra against the derivation from the events' JSON", notifications, missing, extra)
	}
	// The live handlers carry on on the swapped tables.
	w.run(ctx, 200)
	waitFor(t, b.runner, w.lastPos)
	checkAgainstDomain(t, b.q, w)
}

// replayTeam is the team as the domain replays it: every event recorded at
// or before at, in stream order.
func replayTeam(h []histEvent, at time.Time) []domain.Member {
	var c domain.Customer
	for _, e := range h {
		if !e.at.After(at) {
			c.Apply(e.event, e.at)
		}
	}
	return c.Team
}

func TestAsOfEqualsReplay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	w := newWorld(t, b.store, 2)
	w.run(ctx, 1500)
	start(t, b.runner)
	waitFor(t, b.runner, w.lastPos)

	first := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, tn := range w.tenants {
		for i, wc := range tn.customers {
			if i%3 != 0 {
				continue
			}
			h := w.history[wc.c.ID]
			instants := []time.Time{first, w.clock.Add(time.Hour)}
			for range 4 {
				e := h[w.rng.IntN(len(h))]
				instants = append(instants, e.at, e.at.Add(-time.Microsecond), e.at.Add(time.Microsecond))
			}
			for _, at := range instants {
				got, err := b.q.TeamAsOf(ctx, tn.id, wc.c.ID, at)
				if err != nil {
					t.Fatal(err)
				}
				want := replayTeam(h, at)
				if len(got) != len(want) {
					t.Errorf("customer %s at %s: %+v, replay %+v", wc.c.ID, at.Format(time.RFC3339Nano), got, want)
					continue
				}
				for j := range want {
					if got[j].UserID != want[j].UserID || got[j].Lead != want[j].Lead || !got[j].AssignedAt.Equal(want[j].AssignedAt) ||
						got[j].Name != w.names[want[j].UserID] {
						t.Errorf("customer %s at %s: member %d %+v, replay %+v", wc.c.ID, at.Format(time.RFC3339Nano), j, got[j], want[j])
					}
				}
			}
		}
		// The other way round: a user's customers at random instants.
		for _, u := range tn.users {
			for range 5 {
				at := first.Add(time.Duration(w.rng.Int64N(int64(w.clock.Sub(first)) + 1)))
				got, err := b.q.ClientsAsOf(ctx, tn.id, u, at)
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for _, wc := range tn.customers {
					for _, m := range replayTeam(w.history[wc.c.ID], at) {
						if m.UserID == u {
							want = append(want, fmt.Sprintf("%s %v %s", wc.c.ID, m.Lead, m.AssignedAt.Format(time.RFC3339Nano)))
						}
					}
				}
				var gotS []string
				for _, c := range got {
					gotS = append(gotS, fmt.Sprintf("%s %v %s", c.CustomerID, c.Lead, c.AssignedAt.Format(time.RFC3339Nano)))
				}
				sort.Strings(want)
				sort.Strings(gotS)
				if !slices.Equal(want, gotS) {
					t.Errorf("user %s at %s: %v, replay %v", u, at.Format(time.RFC3339Nano), gotS, want)
				}
			}
		}
	}
}

func TestRebuildWhileEventsArrive(t *testing.T) {
	t.Parallel()
	b := setup(t, WithBatchSize(20))
	ctx := context.Background()
	w := newWorld(t, b.store, 3)
	w.run(ctx, 1500)
	start(t, b.runner)

	stopAppending := make(chan struct{})
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		for {
			select {
			case <-stopAppending:
				return
			default:
				w.step(ctx)
			}
		}
	}()
	for _, name := range []string{"all", CustomerList, AssignmentIntervals, AuditLog} {
		if err := b.runner.Rebuild(ctx, name, nil); err != nil {
			close(stopAppending)
			<-appended
			t.Fatalf("rebuild %s: %v", name, err)
		}
	}
	close(stopAppending)
	<-appended
	waitFor(t, b.runner, w.lastPos)
	checkAgainstDomain(t, b.q, w)
	live := snapshot(t, b.pool)
	var audit int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&audit); err != nil {
		t.Fatal(err)
	}
	if audit != w.events {
		t.Errorf("audit_log has %d rows, %d events appended", audit, w.events)
	}
	if err := b.runner.Rebuild(ctx, "all", nil); err != nil {
		t.Fatal(err)
	}
	compareSnapshots(t, "live vs rebuilt", live, snapshot(t, b.pool))
}

// A backlog is applied in large batches while commands keep arriving, and
// the result is what a rebuild makes of the same events, row for row.
func TestLargeCatchUpEqualsRebuild(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	w := newWorld(t, b.store, 12)
	w.run(ctx, 4000)
	backlog := w.events
	start(t, b.runner)
	w.run(ctx, 300) // arriving during the catch-up
	waitFor(t, b.runner, w.lastPos)
	checkAgainstDomain(t, b.q, w)
	if st := b.runner.FoldStats(); st.FromBatch == 0 {
		t.Errorf("fold stats %+v: no customer folded from a batch alone", st)
	}
	live := snapshot(t, b.pool)
	if err := b.runner.Rebuild(ctx, "all", nil); err != nil {
		t.Fatal(err)
	}
	compareSnapshots(t, "caught up vs rebuilt", live, snapshot(t, b.pool))
	t.Logf("backlog of %d events, %d in all", backlog, w.events)
}

func newPool(t *testing.T, url, app string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	cfg.MaxConns = 12
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Two processes feed the same projections: every event is applied exactly
// once, even when one of them loses its connections mid-batch and is then
// stopped. A trigger counts every attempted audit_log insert that commits
// (ON CONFLICT would hide a duplicate otherwise).
func TestTwoRunnersApplyEveryEventExactlyOnce(t *testing.T) {
	t.Parallel()
	url := testdb.NewURL(t)
	poolA, poolB := newPool(t, url, "runner_a"), newPool(t, url, "runner_b")
	ctx := context.Background()
	if _, err := poolA.Exec(ctx, `
CREATE TABLE audit_attempts (position bigint NOT NULL, app text NOT NULL);
CREATE FUNCTION count_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit_attempts VALUES (NEW.position, current_setting('application_name')); RETURN NEW; END $$;
CREATE TRIGGER count_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION count_audit();`); err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(newPool(t, url, "writer"))
	ra, err := New(poolA, eventstore.New(poolA), testdb.Keyring(t), testLogger(t), WithBatchSize(10), WithRetryInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := New(poolB, eventstore.New(poolB), testdb.Keyring(t), testLogger(t), WithBatchSize(10), WithRetryInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	stopA := start(t, ra)
	start(t, rb)

	w := newWorld(t, store, 4)
	w.run(ctx, 500)
	// Kill runner A's connections mid-stream, as if its process died.
	if _, err := poolB.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'runner_a' AND datname = current_database() AND state <> 'idle'`); err != nil {
		t.Fatal(err)
	}
	w.run(ctx, 500)
	stopA()
	w.run(ctx, 500)
	waitFor(t, rb, w.lastPos)

	var attempts, distinct, rows int
	if err := poolB.QueryRow(ctx, `SELECT count(*), count(DISTINCT position), (SELECT count(*) FROM audit_log) FROM audit_attempts`).
		Scan(&attempts, &distinct, &rows); err != nil {
		t.Fatal(err)
	}
	if attempts != w.events || distinct != w.events || rows != w.events {
		t.Errorf("events %d: %d committed audit inserts, %d distinct, %d rows", w.events, attempts, distinct, rows)
	}
	// The two alternate, so each finds the other's writes and reads the
	// customers' streams: the read path was taken and matched.
	if sa, sb := ra.FoldStats(), rb.FoldStats(); sa.Read+sb.Read == 0 {
		t.Errorf("no customer read from its stream: %+v %+v", sa, sb)
	}
	var byApp []string
	r, _ := poolB.Query(ctx, `SELECT app || '=' || count(*) FROM audit_attempts GROUP BY app ORDER BY app`)
	byApp, _ = pgx.CollectRows(r, pgx.RowTo[string])
	t.Logf("audit rows applied by: %v", byApp)
	checkAgainstDomain(t, NewQueries(poolB, testdb.Keyring(t)), w)
}

// An event appended by a transaction that commits after later events is
// still projected, because subscribers read only below the snapshot xmin.
func TestLateCommittedEventIsProjected(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	w := newWorld(t, b.store, 5)
	w.run(ctx, 50)
	start(t, b.runner)
	waitFor(t, b.runner, w.lastPos)

	tn := w.tenants[0]
	appended, release := make(chan int64), make(chan struct{})
	lateErr := make(chan error, 1)
	late := uuid.NewString()
	go func() {
		lateErr <- b.store.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
			_, _, data, _ := domain.EncodeEvent(domain.CustomerRegistered{CustomerID: late, Profile: domain.Profile{FirstName: "Late"}})
			res, err := tx.Append(ctx, eventstore.AppendRequest{TenantID: tn.id, Streams: []eventstore.StreamWrite{{
				StreamID: late, StreamType: "customer", ExpectedVersion: eventstore.NoStream,
				Events: []eventstore.EventData{{Type: domain.TypeCustomerRegistered, SchemaVersion: 1, Data: data}},
			}}})
			if err != nil {
				close(appended)
				return err
			}
			appended <- res.Position
			<-release
			return nil
		})
	}()
	latePos, ok := <-appended
	if !ok {
		t.Fatal(<-lateErr)
	}
	w.run(ctx, 5) // commits before the late transaction, with larger positions
	early := w.lastPos

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := b.runner.WaitFor(short, early)
	cancel()
	var wte *WaitTimeoutError
	if !errors.As(err, &wte) || !errors.Is(err, ErrWaitTimeout) || !errors.Is(err, context.DeadlineExceeded) || len(wte.Pending) == 0 {
		t.Fatalf("wait while an older transaction is open: %v", err)
	}
	close(release)
	if err := <-lateErr; err != nil {
		t.Fatal(err)
	}
	waitFor(t, b.runner, early)
	waitFor(t, b.runner, latePos)
	if _, err := b.q.Customer(ctx, tn.id, late); err != nil {
		t.Errorf("late customer: %v", err)
	}
	var n int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE position = $1`, latePos).Scan(&n); err != nil || n != 1 {
		t.Errorf("late event in audit_log: %d, %v", n, err)
	}
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if err := b.runner.WaitFor(ctx, 0); err != nil {
		t.Errorf("position 0: %v", err)
	}
	if err := b.runner.WaitFor(ctx, 1<<40); !errors.Is(err, ErrUnknownPosition) {
		t.Errorf("unknown position: %v", err)
	}
	if err := b.runner.WaitFor(ctx, 1, "nope"); !errors.Is(err, ErrUnknownProjection) {
		t.Errorf("unknown projection: %v", err)
	}
	w := newWorld(t, b.store, 6)
	w.run(ctx, 20)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := b.runner.WaitFor(short, w.lastPos)
	cancel()
	var wte *WaitTimeoutError
	if !errors.As(err, &wte) || len(wte.Pending) != len(AllNames()) {
		t.Fatalf("no runner: %v", err)
	}
	start(t, b.runner)
	began := time.Now()
	waitFor(t, b.runner, w.lastPos)
	t.Logf("caught up %d events in %v", w.events, time.Since(began))
	cks, err := b.runner.Checkpoints(ctx)
	if err != nil || len(cks) != len(AllNames()) {
		t.Fatalf("checkpoints: %v %v", cks, err)
	}
	// Live: new events are awaited through notifications (logged, not
	// asserted: timings belong to benchmarks).
	var lags []time.Duration
	for range 20 {
		w.run(ctx, 1)
		began = time.Now()
		waitFor(t, b.runner, w.lastPos)
		lags = append(lags, time.Since(began))
	}
	slices.Sort(lags)
	t.Logf("append-to-projected wait: median %v, max %v", lags[len(lags)/2], lags[len(lags)-1])
}

// A process that only answers waits (ledger serve --no-projections) wakes
// when another process's projections commit: its re-check is set to an
// hour here, so only the notification Listen receives can end the wait.
func TestWaitForWakesOnAnotherProcesssCheckpoints(t *testing.T) {
	t.Parallel()
	url := testdb.NewURL(t)
	poolW, poolA := newPool(t, url, "waiter"), newPool(t, url, "runner")
	ctx := context.Background()
	worker, err := New(poolA, eventstore.New(poolA), testdb.Keyring(t), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	waiter, err := New(poolW, eventstore.New(poolW), testdb.Keyring(t), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	waiter.cfg.recheck = time.Hour
	w := newWorld(t, eventstore.New(poolW), 3)
	w.run(ctx, 20)

	listenCtx, stopListening := context.WithCancel(ctx)
	listening := make(chan struct{})
	go func() { defer close(listening); waiter.Listen(listenCtx) }()
	defer func() { stopListening(); <-listening }()

	waited := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		waited <- waiter.WaitFor(wctx, w.lastPos)
	}()
	start(t, worker)
	if err := <-waited; err != nil {
		t.Fatalf("waiting on a process that does not run the projections: %v", err)
	}
}

// An event applied twice in one transaction (Watermill re-sends a nacked
// message without rolling back) is written once, and the checkpoint moves
// with the write; the rebuild form writes without a checkpoint.
// Applying a batch again, in the same transaction or after a commit,
// changes nothing: the fold projections record the versions they applied,
// the derived ones' rows are keyed by position, and checkpoints only move
// forward.
func TestApplyingABatchTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	w := newWorld(t, b.store, 8)
	w.run(ctx, 40)
	db := stdlibDB(t, b.pool)
	batch := readableEvents(t, db, w.events)
	claims := fromTheStart()
	eng := newEngine(all(), nil, testdb.Keyring(t))
	apply := func() {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck
		// The test cluster runs without synchronous commit; a live batch
		// turns it off for its own transaction whatever the server's.
		if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = on`); err != nil {
			t.Fatal(err)
		}
		half := batch[:len(batch)/2]
		for _, part := range [][]*envelope{half, half, batch, batch} {
			if err := eng.applyLive(ctx, tx, part, claims); err != nil {
				t.Fatal(err)
			}
		}
		var sync string
		if err := tx.QueryRowContext(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if sync != "off" {
			t.Errorf("a live batch's transaction commits with synchronous_commit %q, want off", sync)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	apply()
	once := snapshot(t, b.pool)
	eng.cache = foldCache{} // as a process that starts over would
	apply()
	compareSnapshots(t, "applied once vs again", once, snapshot(t, b.pool))
	cks, err := checkpoints(ctx, b.pool, AllNames())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range AllNames() {
		if cks[n] != batch[len(batch)-1].cursor() {
			t.Errorf("%s checkpoint %+v, want the batch's last event", n, cks[n])
		}
	}
	if err := b.runner.Rebuild(ctx, "all", nil); err != nil {
		t.Fatal(err)
	}
	compareSnapshots(t, "applied vs rebuilt", once, snapshot(t, b.pool))
}

// readableEvents waits until the n events in the store are readable by a
// subscriber, and returns them in commit order.
func readableEvents(t *testing.T, db *sql.DB, n int) []*envelope {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		events, err := readAfter(context.Background(), db, eventstore.Cursor{}, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == n {
			return events
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events readable", len(events), n)
		}
	}
}

// fromTheStart are the claims of an engine that every read model's
// checkpoint finds at the start.
func fromTheStart() map[string]claim {
	claims := map[string]claim{}
	for _, n := range AllNames() {
		claims[n] = claim{}
	}
	return claims
}

// applyEachLive applies the events a transaction at a time, each batch in
// a transaction of its own, as a live runner that nobody else competes
// with does (the claims are where its last write left them); after runs
// after each batch.
func applyEachLive(t *testing.T, db *sql.DB, eng *engine, events []*envelope, after func(batch []*envelope)) {
	t.Helper()
	ctx := context.Background()
	claims := fromTheStart()
	for i := 0; i < len(events); {
		n := 1
		for i+n < len(events) && events[i+n].TransactionID == events[i].TransactionID {
			n++
		}
		batch := events[i : i+n]
		i += n
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.applyLive(ctx, tx, batch, claims); err != nil {
			tx.Rollback() //nolint:errcheck
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		claims = eng.wrote
		after(batch)
	}
	if n := eng.cache.counts.read.Load(); n != 0 {
		t.Fatalf("%d customers were read from their streams: the cached path is not under test", n)
	}
}

func stdlibDB(t *testing.T, pool *pgxpool.Pool) *sql.DB {
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestQueriesFiltersPagesAndNotifications(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	w := newWorld(t, b.store, 7)
	w.run(ctx, 1200)
	start(t, b.runner)
	waitFor(t, b.runner, w.lastPos)
	tn := w.tenants[0]

	// Every filter equals the domain's answer, and paging through equals
	// the whole list.
	ids := func(items []CustomerItem) []string {
		var out []string
		for _, it := range items {
			out = append(out, it.ID)
		}
		sort.Strings(out)
		return out
	}
	expect := func(keep func(domain.Customer) bool) []string {
		var out []string
		for _, wc := range tn.customers {
			if keep(wc.c) {
				out = append(out, wc.c.ID)
			}
		}
		sort.Strings(out)
		return out
	}
	user := tn.users[0]
	cases := []struct {
		f    CustomerFilter
		keep func(domain.Customer) bool
	}{
		{CustomerFilter{}, func(domain.Customer) bool { return true }},
		{CustomerFilter{AssignedUser: user}, func(c domain.Customer) bool { _, ok := c.Member(user); return ok }},
		{CustomerFilter{AssignedUser: "none"}, func(c domain.Customer) bool { return len(c.Team) == 0 }},
		{CustomerFilter{Status: "blocked"}, func(c domain.Customer) bool { return c.Status == domain.CustomerStatusBlocked }},
		{CustomerFilter{Q: "ADA LOVE"}, func(c domain.Customer) bool {
			return strings.Contains(strings.ToLower(c.Profile.FirstName+" "+c.Profile.LastName), "ada love")
		}},
		{CustomerFilter{Q: "100%_s"}, func(c domain.Customer) bool { return strings.Contains(c.Profile.LastName, "100%_S") }},
	}
	for _, tc := range cases {
		var all []CustomerItem
		cursor := ""
		for {
			page, err := b.q.Customers(ctx, tn.id, tc.f, 7, cursor)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page.Items...)
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		// Pages follow the list's order, whichever index serves them.
		if !slices.IsSortedFunc(all, func(a, b CustomerItem) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		}) {
			t.Errorf("filter %+v: pages out of (created_at, id) order", tc.f)
		}
		var each []CustomerItem
		if err := b.q.EachCustomer(ctx, tn.id, tc.f, func(it CustomerItem) error { each = append(each, it); return nil }); err != nil {
			t.Fatal(err)
		}
		if want := expect(tc.keep); !slices.Equal(ids(all), want) || !slices.Equal(ids(each), want) {
			t.Errorf("filter %+v: %d paged, %d streamed, domain %d", tc.f, len(all), len(each), len(want))
		}
	}
	if _, err := b.q.Customers(ctx, tn.id, CustomerFilter{}, 5, "garbage"); !errors.Is(err, ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}
	// Another tenant sees nothing of this one.
	if other, err := b.q.Customer(ctx, uuid.NewString(), tn.customers[0].c.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("other tenant: %+v %v", other, err)
	}

	// Notifications: read marks survive a rebuild; others' ids are ignored.
	unread, items, err := b.q.Notifications(ctx, tn.id, user, 10, 0)
	if err != nil || len(items) == 0 || unread == 0 {
		t.Fatalf("notifications: %d %v %v", unread, items, err)
	}
	_, others, _ := b.q.Notifications(ctx, tn.id, tn.users[1], 5, 0)
	if err := b.q.MarkRead(ctx, tn.id, user, []string{items[0].ID, items[1].ID, others[0].ID, "junk"}); err != nil {
		t.Fatal(err)
	}
	unread2, items2, err := b.q.Notifications(ctx, tn.id, user, 10, 0)
	if err != nil || unread2 != unread-2 || !items2[0].Read || !items2[1].Read || items2[2].Read {
		t.Fatalf("after marking two read: %d (was %d) %+v %v", unread2, unread, items2, err)
	}
	if _, o, _ := b.q.Notifications(ctx, tn.id, tn.users[1], 5, 0); o[0].Read {
		t.Errorf("another user's notification was marked read")
	}
	if err := b.runner.Rebuild(ctx, Notifications, nil); err != nil {
		t.Fatal(err)
	}
	unread3, items3, err := b.q.Notifications(ctx, tn.id, user, 10, 0)
	if err != nil || unread3 != unread2 || fmt.Sprint(items3) != fmt.Sprint(items2) {
		t.Errorf("after rebuild: %d %+v, before %d %+v (%v)", unread3, items3, unread2, items2, err)
	}

	// Audit filters.
	page, err := b.q.Audit(ctx, tn.id, AuditFilter{CustomerID: tn.customers[0].c.ID}, 500, "")
	if err != nil || int64(len(page.Items)) != tn.customers[0].c.Version {
		t.Errorf("customer history: %d entries, version %d (%v)", len(page.Items), tn.customers[0].c.Version, err)
	}
	page, err = b.q.Audit(ctx, tn.id, AuditFilter{UserID: user, Type: domain.TypeUserAssigned}, 500, "")
	if err != nil || len(page.Items) == 0 {
		t.Fatalf("audit by user: %v", err)
	}
	for _, e := range page.Items {
		if e.Type != domain.TypeUserAssigned || !slices.Contains(e.UserIDs, user) {
			t.Errorf("audit by user: %+v", e)
		}
	}
	var n int
	if err := b.q.EachAudit(ctx, tn.id, AuditFilter{}, func(AuditEntry) error { n++; return nil }); err != nil || n == 0 {
		t.Errorf("each audit: %d %v", n, err)
	}
}

// A rebuild's swap may leave the checkpoint exactly where the live handler's
// last write put it, over tables built apart from the folds the handler
// keeps in memory: the swap's new tables epoch must make the handler read
// the customers again rather than trust its memory.
func TestSwapAtTheSameCheckpointDropsCachedFolds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	w := newWorld(t, b.store, 11)
	start(t, b.runner)
	w.run(ctx, 300)
	waitFor(t, b.runner, w.lastPos)

	before, err := b.runner.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.runner.Rebuild(ctx, CustomerList, nil); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	after, err := b.runner.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after[CustomerList] != before[CustomerList] {
		t.Fatalf("the swap moved the checkpoint from %v to %v: not the case under test", before[CustomerList], after[CustomerList])
	}

	// One more event for a customer the engine has folded: its cache no
	// longer describes customer_list, so the customer is read.
	tn := w.tenants[0]
	wc := tn.customers[0]
	s1 := b.runner.FoldStats()
	w.commit(ctx, tn, wc, wc.c.ID, domain.CustomerUpdated{CustomerID: wc.c.ID, Profile: w.profile()})
	waitFor(t, b.runner, w.lastPos)
	s2 := b.runner.FoldStats()
	if s2.Read != s1.Read+1 || s2.FromBatch != s1.FromBatch {
		t.Errorf("after the swap: %+v, before %+v; want the customer read", s2, s1)
	}
	// And the next one is folded from the batch again.
	w.commit(ctx, tn, wc, wc.c.ID, domain.CustomerUpdated{CustomerID: wc.c.ID, Profile: w.profile()})
	waitFor(t, b.runner, w.lastPos)
	if s3 := b.runner.FoldStats(); s3.FromBatch != s2.FromBatch+1 || s3.Read != s2.Read {
		t.Errorf("the next event: %+v, before %+v; want the customer folded from the batch", s3, s2)
	}
	checkAgainstDomain(t, b.q, w)
}

// qNotificationsFromJSON is how the notifications were derived from the
// events' JSON in SQL before they were made from typed events: the
// reference their rows are held to.
const qNotificationsFromJSON = `SELECT e.tenant_id,
       (CASE WHEN e.type = 'TeamMemberReplaced' THEN e.data->>'with_user_id' ELSE e.data->>'user_id' END)::uuid,
       e.position,
       CASE e.type WHEN 'UserAssigned' THEN 'assigned' WHEN 'UserUnassigned' THEN 'unassigned'
                   WHEN 'TeamLeadChanged' THEN 'made_lead' ELSE 'handed_over' END,
       (e.data->>'customer_id')::uuid, e.recorded_at
FROM events e
WHERE e.type IN ('UserAssigned', 'UserUnassigned', 'TeamLeadChanged', 'TeamMemberReplaced')
UNION ALL
SELECT e.tenant_id, (e.data->>'user_id')::uuid, e.position, 'unassigned', (e.data->>'customer_id')::uuid, e.recorded_at
FROM events e
WHERE e.type = 'TeamMemberReplaced'
UNION ALL
SELECT e.tenant_id, r.u::uuid, e.position, 'follow_up_due', (e.data->>'customer_id')::uuid, e.recorded_at
FROM events e, jsonb_array_elements_text(e.data->'recipients') AS r(u)
WHERE e.type = 'FollowUpDue'`
