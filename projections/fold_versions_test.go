package projections

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// The fold read models record the version they applied once, in
// customer_list; an erased customer, gone from the list, keeps it in
// customer_list_erased. Without that, the start of an erased customer's
// stream delivered again (a process starting over from an older
// checkpoint) looked new to the fold, which folded it from the batch alone
// and listed the customer again.
func TestErasedCustomerStaysUnlistedWhenItsEventsComeAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	w := newWorld(t, b.store, 31)
	tn := w.newTenant(ctx)
	var wc wCustomer
	wc.tenant = tn.id
	id := "8d4b6f5a-1a7e-4b9d-8fa2-3e4f5a6b7c8d"
	w.commit(ctx, tn, &wc, id, domain.CustomerRegistered{CustomerID: id, Profile: w.profile()})
	tn.customers = append(tn.customers, &wc)
	w.commit(ctx, tn, &wc, id, domain.CustomerUpdated{CustomerID: id, Profile: w.profile()})
	w.commit(ctx, tn, &wc, id, domain.CustomerErased{CustomerID: id})

	db := stdlibDB(t, b.pool)
	events := readableEvents(t, db, w.events)
	applyEachLive(t, db, newEngine(all(), &foldCounts{}, testdb.Keyring(t)), events, func([]*envelope) {})
	check := func(when string) {
		t.Helper()
		var listed int
		var version int64
		if err := b.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM customer_list WHERE customer_id = $1),
			coalesce((SELECT version FROM customer_list_erased WHERE customer_id = $1), 0)`, id).Scan(&listed, &version); err != nil {
			t.Fatal(err)
		}
		if listed != 0 || version != 3 {
			t.Fatalf("%s: customer_list rows %d, erased at version %d; want 0 and 3", when, listed, version)
		}
	}
	check("applied once")
	applied := snapshot(t, b.pool)

	// A fresh engine is handed the registration again.
	counts := &foldCounts{}
	eng := newEngine(all(), counts, testdb.Keyring(t))
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(events, func(e *envelope) bool { return e.StreamID == id })
	if err := eng.applyLive(ctx, tx, events[i:i+1], fromTheStart()); err != nil {
		tx.Rollback() //nolint:errcheck
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	check("its registration delivered again")
	if counts.read.Load() != 1 || counts.fromBatch.Load() != 0 {
		t.Errorf("read %d, folded from the batch %d; want the customer read from its stream", counts.read.Load(), counts.fromBatch.Load())
	}
	compareSnapshots(t, "applied once vs again", applied, snapshot(t, b.pool))

	if err := b.runner.Rebuild(ctx, "all", nil); err != nil {
		t.Fatal(err)
	}
	check("rebuilt")
	compareSnapshots(t, "applied vs rebuilt", applied, snapshot(t, b.pool))
}

// The fold read models share one record of the versions applied, so they
// are selected, caught up and swapped as one: a rebuild of any of them
// rebuilds them all, and every fold checkpoint moves to the same place.
func TestRebuildingOneFoldReadModelRebuildsThemAll(t *testing.T) {
	t.Parallel()
	folds := []string{MyClients, CustomerList, AssignmentIntervals}
	for _, name := range folds {
		ps, err := selectProjections([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		if got := names(ps); !slices.Equal(got, folds) {
			t.Errorf("selecting %s gives %v, want %v", name, got, folds)
		}
	}
	if ps, err := selectProjections([]string{AuditLog}); err != nil || !slices.Equal(names(ps), []string{AuditLog}) {
		t.Errorf("selecting %s gives %v, %v", AuditLog, names(ps), err)
	}

	b := setup(t)
	ctx := context.Background()
	w := newWorld(t, b.store, 37)
	start(t, b.runner)
	w.run(ctx, 200)
	waitFor(t, b.runner, w.lastPos)
	epochs := func() map[string]int64 {
		t.Helper()
		out := map[string]int64{}
		rows, err := b.pool.Query(ctx, `SELECT consumer_group, tables_epoch FROM projection_checkpoints`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			var e int64
			if err := rows.Scan(&n, &e); err != nil {
				t.Fatal(err)
			}
			out[n] = e
		}
		return out
	}
	live := snapshot(t, b.pool)
	before := epochs()
	if err := b.runner.Rebuild(ctx, AssignmentIntervals, nil); err != nil {
		t.Fatal(err)
	}
	after := epochs()
	for n, e := range after {
		want := before[n]
		if slices.Contains(folds, n) {
			want++
		}
		if e != want {
			t.Errorf("%s tables epoch %d, was %d; want %d", n, e, before[n], want)
		}
	}
	cks, err := b.runner.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range folds {
		if cks[n] != cks[MyClients] {
			t.Errorf("%s checkpoint %v, %s's %v: the fold read models were not swapped together", n, cks[n], MyClients, cks[MyClients])
		}
	}
	compareSnapshots(t, "live vs rebuilt", live, snapshot(t, b.pool))

	// And they go on together from there.
	w.run(ctx, 50)
	waitFor(t, b.runner, w.lastPos)
	checkAgainstDomain(t, b.q, w)
}

// A rebuild that fails (here cancelled once its tables are being filled)
// leaves none of them behind: they hold customers' personal data, which a
// later erasure would not reach.
func TestFailedRebuildLeavesNoTablesBehind(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := newWorld(t, b.store, 41)
	w.run(context.Background(), 300)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.runner.Rebuild(ctx, "all", nil) }()
	rebuildSchemas := func() int {
		var n int
		if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild\_%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); rebuildSchemas() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the rebuild made no tables")
		}
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the rebuild finished before it was cancelled: nothing failed")
	}
	if n := rebuildSchemas(); n != 0 {
		t.Fatalf("a failed rebuild left %d schemas of tables behind", n)
	}
}
