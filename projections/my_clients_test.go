package projections

import (
	"context"
	"testing"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

// A live fold gives the my_clients rows of the members whose place an
// event changed, not the whole team's: with a team of a dozen, each later
// event costs one or two rows. Members who leave, and every member of an
// erased customer, are removed explicitly. The table equals the domain's
// teams and a rebuild's.
func TestLiveFoldWritesOnlyChangedMembers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	w := newWorld(t, b.store, 29)
	tn := w.newTenant(ctx)
	const team = 12
	for range team + 2 {
		w.newUser(ctx, tn)
	}
	var kept, erased wCustomer
	keptID, erasedID := "9e5c7a6b-2b8f-4c0e-9ab3-4f5a6b7c8d9e", "af6d8b7c-3c9a-4d1f-8bc4-5a6b7c8d9e0f"
	for _, cu := range []struct {
		wc *wCustomer
		id string
	}{{&kept, keptID}, {&erased, erasedID}} {
		cu.wc.tenant = tn.id
		w.commit(ctx, tn, cu.wc, cu.id, domain.CustomerRegistered{CustomerID: cu.id, Profile: w.profile()})
		for i := range team {
			w.commit(ctx, tn, cu.wc, cu.id, domain.UserAssigned{CustomerID: cu.id, UserID: tn.users[i], Lead: i == 0})
		}
	}
	u := tn.users
	w.commit(ctx, tn, &kept, keptID, domain.TeamLeadChanged{CustomerID: keptID, UserID: u[3], PreviousUserID: u[0]})
	w.commit(ctx, tn, &kept, keptID, domain.UserUnassigned{CustomerID: keptID, UserID: u[5]})
	w.commit(ctx, tn, &kept, keptID, domain.TeamMemberReplaced{CustomerID: keptID, UserID: u[7], WithUserID: u[team]})
	w.commit(ctx, tn, &kept, keptID, domain.TeamMemberReplaced{CustomerID: keptID, UserID: u[3], WithUserID: u[team+1], Lead: true})
	w.commit(ctx, tn, &kept, keptID, domain.UserAssigned{CustomerID: keptID, UserID: u[5]})
	w.commit(ctx, tn, &erased, erasedID, erased.c.Erase()...)
	tn.customers = append(tn.customers, &kept) // checkAgainstDomain knows no erasure

	db := stdlibDB(t, b.pool)
	events := readableEvents(t, db, w.events)
	eng := newEngine(all(), &foldCounts{}, testdb.Keyring(t))
	applyEachLive(t, db, eng, events, func(batch []*envelope) {
		entry := eng.cache.customers[batch[0].StreamID]
		if entry == nil || batch[0].Type == domain.TypeCustomerRegistered {
			return
		}
		most := 2 // a lead change or a replacement changes two places
		if batch[len(batch)-1].Type == domain.TypeCustomerErased {
			most = team
		}
		if given := len(entry.rows[MyClients]); given > most {
			t.Fatalf("after %s (version %d) the fold gave %d my_clients rows, want at most %d",
				batch[0].Type, batch[0].StreamVersion, given, most)
		}
		if n := len(entry.fold.state.MembersChanged); n != 0 {
			t.Fatalf("after version %d the fold still counts %d members changed", batch[0].StreamVersion, n)
		}
	})

	var rows, erasedRows int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE customer_id = $1), count(*) FILTER (WHERE customer_id = $2) FROM my_clients`,
		keptID, erasedID).Scan(&rows, &erasedRows); err != nil {
		t.Fatal(err)
	}
	if rows != len(kept.c.Team) || rows != team || erasedRows != 0 {
		t.Fatalf("my_clients: %d rows of the kept customer (team of %d), %d of the erased one; want %d and 0",
			rows, len(kept.c.Team), erasedRows, team)
	}
	checkAgainstDomain(t, b.q, w)
	live := snapshot(t, b.pool)
	if err := b.runner.Rebuild(ctx, MyClients, nil); err != nil {
		t.Fatal(err)
	}
	compareSnapshots(t, "live vs rebuilt", live, snapshot(t, b.pool))
}
