package projections

import (
	"context"
	"testing"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// A customer handed back and forth for years has a long history of
// closed stretches. Each live batch must cost its open stretches, not that
// history: the fold forgets a closed stretch once it is written, and the
// rows stay as a rebuild makes them.
func TestLiveFoldForgetsWrittenStretches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	w := newWorld(t, b.store, 21)
	tn := w.newTenant(ctx)
	w.newUser(ctx, tn)
	w.newUser(ctx, tn)
	wc := &wCustomer{tenant: tn.id}
	id := "5a1f3c2e-8d4b-4e6a-9c7f-0b1d2e3f4a5b"
	w.commit(ctx, tn, wc, id, domain.CustomerRegistered{CustomerID: id, Profile: w.profile()})
	tn.customers = append(tn.customers, wc)
	w.commit(ctx, tn, wc, id, domain.UserAssigned{CustomerID: id, UserID: tn.users[0], Lead: true})
	const handovers = 30
	for i := range handovers {
		from, to := tn.users[i%2], tn.users[(i+1)%2]
		w.commit(ctx, tn, wc, id, domain.TeamMemberReplaced{CustomerID: id, UserID: from, WithUserID: to, Lead: true})
	}

	db := stdlibDB(t, b.pool)
	events := readableEvents(t, db, w.events)
	eng := newEngine(all(), &foldCounts{}, testdb.Keyring(t))
	// One event a batch (each was committed alone).
	applyEachLive(t, db, eng, events, func(batch []*envelope) {
		if entry := eng.cache.customers[id]; entry != nil && len(entry.fold.stretches.all) > 1 {
			t.Fatalf("after event %d the fold keeps %d stretches, want the one open", batch[0].StreamVersion, len(entry.fold.stretches.all))
		}
	})
	var rows, open int
	if err := b.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE valid_to IS NULL) FROM assignment_intervals WHERE customer_id = $1`, id).
		Scan(&rows, &open); err != nil {
		t.Fatal(err)
	}
	if rows != handovers+1 || open != 1 {
		t.Fatalf("assignment_intervals has %d rows, %d open; want %d, 1", rows, open, handovers+1)
	}
	live := snapshot(t, b.pool)
	if err := b.runner.Rebuild(ctx, AssignmentIntervals, nil); err != nil {
		t.Fatal(err)
	}
	compareSnapshots(t, "live vs rebuilt", live, snapshot(t, b.pool))
	checkAgainstDomain(t, b.q, w)
}
