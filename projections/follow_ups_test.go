package projections

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// A live fold gives only the follow-ups an event changed: a customer with
// many done follow-ups costs each later event none of them. Rows the fold
// no longer gives stay; a cancelled follow-up's row and, on erasure, every
// row of the customer's go. The table equals a rebuild's and the domain's.
func TestLiveFoldWritesOnlyChangedFollowUps(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	w := newWorld(t, b.store, 23)
	tn := w.newTenant(ctx)
	w.newUser(ctx, tn)
	w.newUser(ctx, tn)
	due := time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)
	fid := func(c, i int) string { return fmt.Sprintf("f0000000-0000-4000-8000-%06d%06d", c, i) }

	const followUps = 12
	var kept, erased wCustomer
	customers := []struct {
		wc *wCustomer
		id string
	}{{&kept, "6b2f4d3e-9e5c-4f7b-8d80-1c2e3f4a5b6c"}, {&erased, "7c3a5e4f-0f6d-4a8c-9e91-2d3f4a5b6c7d"}}
	for c, cu := range customers {
		cu.wc.tenant = tn.id
		w.commit(ctx, tn, cu.wc, cu.id, domain.CustomerRegistered{CustomerID: cu.id, Profile: w.profile()})
		tn.customers = append(tn.customers, cu.wc)
		w.commit(ctx, tn, cu.wc, cu.id, domain.UserAssigned{CustomerID: cu.id, UserID: tn.users[0], Lead: true})
		for i := range followUps {
			w.commit(ctx, tn, cu.wc, cu.id, domain.FollowUpScheduled{FollowUpID: fid(c, i), CustomerID: cu.id,
				DueAt: due.Add(time.Duration(i) * time.Hour), Note: "call back", To: domain.FollowUpToTeam, CreatedBy: tn.users[0]})
		}
		for i := range followUps - 4 {
			w.commit(ctx, tn, cu.wc, cu.id, domain.FollowUpCompleted{FollowUpID: fid(c, i), CustomerID: cu.id})
		}
	}
	id := customers[0].id
	// A done one, an open one cancelled; an open one snoozed, one fell due.
	w.commit(ctx, tn, &kept, id, domain.FollowUpCancelled{FollowUpID: fid(0, 0), CustomerID: id})
	w.commit(ctx, tn, &kept, id, domain.FollowUpCancelled{FollowUpID: fid(0, followUps-1), CustomerID: id})
	w.commit(ctx, tn, &kept, id, domain.FollowUpSnoozed{FollowUpID: fid(0, followUps-2), CustomerID: id, Until: due.Add(48 * time.Hour)})
	w.commit(ctx, tn, &kept, id, domain.FollowUpDue{FollowUpID: fid(0, followUps-3), CustomerID: id, DueAt: due,
		To: domain.FollowUpToTeam, Recipients: []string{tn.users[0]}})
	for i := range 10 {
		from, to := tn.users[i%2], tn.users[(i+1)%2]
		w.commit(ctx, tn, &kept, id, domain.TeamMemberReplaced{CustomerID: id, UserID: from, WithUserID: to, Lead: true})
	}
	// The erasure cancels every live follow-up, then erases (Customer.Erase).
	gone := customers[1].id
	var erasure []domain.Event
	for i := range followUps {
		erasure = append(erasure, domain.FollowUpCancelled{FollowUpID: fid(1, i), CustomerID: gone, Reason: "erased"})
	}
	w.commit(ctx, tn, &erased, gone, append(erasure, domain.CustomerErased{CustomerID: gone})...)

	db := stdlibDB(t, b.pool)
	events := readableEvents(t, db, w.events)
	eng := newEngine(all(), &foldCounts{}, testdb.Keyring(t))
	// One event a batch, but the erasure's events in one.
	applyEachLive(t, db, eng, events, func(batch []*envelope) {
		entry := eng.cache.customers[batch[0].StreamID]
		if entry == nil {
			return
		}
		if given, most := len(entry.rows[FollowUps]), max(len(batch)-1, 1); given > most {
			t.Fatalf("after event %d of %s the fold gave %d follow-up rows, want at most %d (those the batch changed)",
				batch[0].StreamVersion, batch[0].StreamID, given, most)
		}
		if len(entry.fold.state.FollowUpsChanged) != 0 {
			t.Fatalf("after event %d the fold still counts %d follow-ups changed", batch[0].StreamVersion, len(entry.fold.state.FollowUpsChanged))
		}
	})

	// The rows are the domain's live follow-ups, and the erased one's
	// tombstones (cancelled, not pending).
	want := map[string][]string{}
	for _, cu := range customers {
		for fid, f := range cu.wc.c.FollowUps {
			switch {
			case cu.wc.c.Erased:
				want[cu.id] = append(want[cu.id], fmt.Sprintf("%s %s %s false", fid, domain.FollowUpStatusCancelled, f.DueAt.UTC().Format(time.RFC3339)))
			case f.Status != domain.FollowUpStatusCancelled:
				want[cu.id] = append(want[cu.id], fmt.Sprintf("%s %s %s %t", fid, f.Status, f.DueAt.UTC().Format(time.RFC3339), f.Pending()))
			}
		}
		slices.Sort(want[cu.id])
	}
	got := map[string][]string{}
	rows, err := b.pool.Query(ctx, `SELECT customer_id::text, follow_up_id::text || ' ' || status || ' ' || to_char(due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ' ' || pending
		FROM follow_ups ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c, row string
		if err := rows.Scan(&c, &row); err != nil {
			t.Fatal(err)
		}
		got[c] = append(got[c], row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(want[id]) != followUps-2 || len(want[gone]) != followUps || len(got) != 2 || !slices.Equal(got[id], want[id]) || !slices.Equal(got[gone], want[gone]) {
		t.Fatalf("follow_ups rows:\n got %q\nwant %q", got, want)
	}

	live := snapshot(t, b.pool)
	if err := b.runner.Rebuild(ctx, CustomerList, nil); err != nil {
		t.Fatal(err)
	}
	compareSnapshots(t, "live vs rebuilt", live, snapshot(t, b.pool))
}
