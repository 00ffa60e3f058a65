package commands_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// A group deleted while customers are being added to it: every add either
// commits before the deletion or is refused as not found, never after it
// (the bulk call share-locks the group's stream by a guard).
func TestGroupDeletionRacesBulkAdds(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	g, err := cmd.CreateGroup(ctx, b.admin, "Race")
	wantErr(t, err, "")
	var customers []string
	for range 8 {
		customers = append(customers, b.customer(t))
	}
	var wg sync.WaitGroup
	for i, c := range customers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := cmd.BulkCustomers(ctx, b.admin, commands.CustomerBulkRequest{Action: domain.CustomerActionAddToGroup, GroupID: g.ID, CustomerIDs: []string{c}})
			if err != nil && !errors.Is(err, commands.ErrNotFound) {
				t.Errorf("add %d: %v", i, err)
			}
		}()
		if i == len(customers)/2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := cmd.DeleteGroup(ctx, b.admin, g.ID); err != nil {
					t.Errorf("delete: %v", err)
				}
			}()
		}
	}
	wg.Wait()
	var late int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM events a, events d
		WHERE a.type = 'CustomerAddedToGroup' AND a.data->>'group_id' = $1
		  AND d.type = 'GroupDeleted' AND d.stream_id = $1::uuid AND a.position > d.position`, g.ID).Scan(&late); err != nil {
		t.Fatal(err)
	}
	if late != 0 {
		t.Fatalf("%d customers were added to the group after its deletion", late)
	}
	_, err = cmd.BulkCustomers(ctx, b.admin, commands.CustomerBulkRequest{Action: domain.CustomerActionAddToGroup, GroupID: g.ID, CustomerIDs: customers[:1]})
	wantErr(t, err, "not_found")
}

// Creating a group with an Idempotency-Key twice answers the first group
// and appends once; a group of another tenant is not found.
func TestGroupIdempotencyAndTenancy(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	m := keyed(b.admin, "k1", `{"name":"VIP"}`)
	first, err := cmd.CreateGroup(ctx, m, "VIP")
	wantErr(t, err, "")
	before := b.eventCount(t)
	again, err := cmd.CreateGroup(ctx, m, "VIP")
	wantErr(t, err, "")
	if again.ID != first.ID || b.eventCount(t) != before {
		t.Fatalf("replay %+v of %+v appended %d events", again, first, b.eventCount(t)-before)
	}
	other := b.otherTenant(t)
	_, err = cmd.RenameGroup(ctx, other, first.ID, "Mine")
	wantErr(t, err, "not_found")
	// The same name in another tenant is free.
	_, err = cmd.CreateGroup(ctx, other, "vip")
	wantErr(t, err, "")
	_, err = cmd.CreateGroup(ctx, b.admin, "vip")
	wantErr(t, err, commands.CodeNameTaken)
}
