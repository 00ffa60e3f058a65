package projections

import (
	"context"
	"testing"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// A customer handed back and forth for years has a long history of
// closed stretches. Each live batch must cost the stretches it changed,
// not that history: the fold forgets every stretch it has written (an open
// one until it closes), and the rows stay as a rebuild makes them.
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
		entry := eng.cache.customers[id]
		if entry == nil {
			return
		}
		if n := len(entry.fold.stretches.all); n != 0 {
			t.Fatalf("after event %d the fold keeps %d stretches to give, want none", batch[0].StreamVersion, n)
		}
		// A hand-over closes one stretch and opens one.
		if given := len(entry.rows[AssignmentIntervals]); given > 2 {
			t.Fatalf("after event %d the fold gave %d stretches, want at most 2", batch[0].StreamVersion, given)
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
