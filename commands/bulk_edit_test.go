package commands_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

func TestBulkEdit(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	b.policy(t, domain.Policy{MaxAssignees: ptr(2), RequireLead: true, MembersCanSelfAssign: true})
	c1, c2, c3 := b.customer(t), b.customer(t), b.customer(t)
	u1, u2, u3 := b.user(t), b.user(t), b.user(t)
	b.assign(t, c1, u1)
	b.assign(t, c3, u3)

	// Dry run: u1 unchanged on c1; c3 would overflow with u1+u2.
	before := b.eventCount(t)
	plan, err := cmd.BulkEdit(ctx, b.admin, commands.BulkRequest{Action: "add", CustomerIDs: []string{c1, c2, c3}, UserIDs: []string{u1, u2}, DryRun: true})
	wantErr(t, err, "")
	if len(plan.Unchanged) != 1 || len(plan.ToBeAssigned) != 4 || len(plan.Errors) != 1 ||
		plan.Errors[0].Code != domain.CodeMaxAssigneesReached || plan.Errors[0].CustomerID != c3 {
		t.Fatalf("plan %+v", plan)
	}
	if b.eventCount(t) != before {
		t.Fatal("dry run wrote")
	}

	// The same for real is refused, and writes nothing.
	_, err = cmd.BulkEdit(ctx, b.admin, commands.BulkRequest{Action: "add", CustomerIDs: []string{c1, c2, c3}, UserIDs: []string{u1, u2}})
	var rejected *commands.BulkRejectedError
	if !errors.As(err, &rejected) || len(rejected.Errors) != 1 {
		t.Fatalf("want BulkRejectedError, got %v", err)
	}
	if b.eventCount(t) != before {
		t.Fatal("refused bulk wrote")
	}

	// Unknown IDs fail their pairs.
	ghost := "0190c1f2-0000-7000-8000-000000000000"
	plan, err = cmd.BulkEdit(ctx, b.admin, commands.BulkRequest{Action: "add", CustomerIDs: []string{c2, ghost}, UserIDs: []string{u2, "bad"}, DryRun: true})
	wantErr(t, err, "")
	if len(plan.Errors) != 3 || len(plan.ToBeAssigned) != 1 {
		t.Fatalf("plan %+v", plan)
	}
	for _, e := range plan.Errors {
		if e.Code != commands.CodeNotFound {
			t.Fatalf("error %+v", e)
		}
	}

	// Success: one transaction, one correlation ID.
	res, err := cmd.BulkEdit(ctx, keyed(b.admin, "bulk", "1"), commands.BulkRequest{Action: "add", CustomerIDs: []string{c1, c2}, UserIDs: []string{u1, u2}})
	wantErr(t, err, "")
	if len(res.ToBeAssigned) != 3 || len(res.Unchanged) != 1 || res.Position == 0 {
		t.Fatalf("result %+v", res)
	}
	var corr, n int
	_ = b.pool.QueryRow(ctx, `SELECT count(DISTINCT metadata->>'correlation_id'), count(*) FROM events WHERE position > $1`, before).Scan(&corr, &n)
	if corr != 1 || n != 3 {
		t.Fatalf("%d events with %d correlation ids", n, corr)
	}
	after := b.eventCount(t)
	again, err := cmd.BulkEdit(ctx, keyed(b.admin, "bulk", "1"), commands.BulkRequest{Action: "add", CustomerIDs: []string{c1, c2}, UserIDs: []string{u1, u2}})
	wantErr(t, err, "")
	if again.Position != res.Position || len(again.ToBeAssigned) != 3 || b.eventCount(t) != after {
		t.Fatalf("replay %+v", again)
	}
	// Under require_lead the leads cannot go, also when their teams would
	// be left empty: only their pairs fail.
	_, err = cmd.BulkEdit(ctx, b.admin, commands.BulkRequest{Action: "remove", CustomerIDs: []string{c1, c2}, UserIDs: []string{u2, u1}})
	if !errors.As(err, &rejected) || len(rejected.Errors) != 2 || rejected.Errors[0].Code != domain.CodeLeadCannotBeRemoved ||
		rejected.Errors[1].Code != domain.CodeLeadCannotBeRemoved {
		t.Fatalf("removing the leads under require_lead: %v", err)
	}
	b.policy(t, domain.Policy{MaxAssignees: ptr(2), MembersCanSelfAssign: true})
	_, err = cmd.BulkEdit(ctx, keyed(b.admin, "bulk-remove", "2"), commands.BulkRequest{Action: "remove", CustomerIDs: []string{c1, c2}, UserIDs: []string{u1, u2}})
	wantErr(t, err, "") // removing a whole team is allowed without require_assignee and require_lead
	for _, c := range []string{c1, c2} {
		if v, _ := cmd.GetCustomer(ctx, b.tenantID, c); len(v.Assignees) != 0 {
			t.Fatalf("customer %s kept %+v", c, v.Assignees)
		}
	}

	_, err = cmd.BulkEdit(ctx, b.admin, commands.BulkRequest{Action: "move", CustomerIDs: []string{c1}, UserIDs: []string{u1}})
	wantErr(t, err, "validation")
	_, err = cmd.BulkEdit(ctx, b.memberMeta(u1), commands.BulkRequest{Action: "add", CustomerIDs: []string{c1}, UserIDs: []string{u2}})
	wantErr(t, err, "forbidden")
	_, err = cmd.BulkEdit(ctx, b.memberMeta(u1), commands.BulkRequest{Action: "add", CustomerIDs: []string{c1}, UserIDs: []string{u1}})
	wantErr(t, err, "") // members may add themselves
	_, err = cmd.BulkEdit(ctx, b.admin, commands.BulkRequest{Action: "add", CustomerIDs: make([]string, commands.MaxBulkCustomers+1), UserIDs: []string{u1}})
	wantErr(t, err, "validation")
}

// seedCustomers registers n customers in one append, fast.
func seedCustomers(t testing.TB, b *testBundle, n int) []string {
	t.Helper()
	ids := make([]string, n)
	streams := make([]eventstore.StreamWrite, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
		typ, schema, data, err := domain.EncodeEvent(domain.CustomerRegistered{CustomerID: ids[i], Profile: domain.Profile{FirstName: "Seed"}})
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = eventstore.StreamWrite{StreamID: ids[i], StreamType: "customer", ExpectedVersion: eventstore.NoStream,
			Events: []eventstore.EventData{{Type: typ, SchemaVersion: schema, Data: data}}}
	}
	if _, err := b.store.Append(context.Background(), eventstore.AppendRequest{TenantID: b.tenantID, Streams: streams}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestBulkEditTenThousandCustomers(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	ids := seedCustomers(t, b, commands.MaxBulkCustomers)
	u1, u2 := b.user(t), b.user(t)

	start := time.Now()
	res, err := cmd.BulkEdit(ctx, b.admin, commands.BulkRequest{Action: "add", CustomerIDs: ids, UserIDs: []string{u1, u2}})
	wantErr(t, err, "")
	t.Logf("bulk add of 2 users to %d customers: %v", len(ids), time.Since(start))
	if len(res.ToBeAssigned) != 2*len(ids) {
		t.Fatalf("%d assigned", len(res.ToBeAssigned))
	}
	start = time.Now()
	plan, err := cmd.BulkEdit(ctx, b.admin, commands.BulkRequest{Action: "remove", CustomerIDs: ids, UserIDs: []string{u1}, DryRun: true})
	wantErr(t, err, "")
	t.Logf("dry-run remove over %d customers: %v", len(ids), time.Since(start))
	if len(plan.ToBeDeassigned) != len(ids) {
		t.Fatalf("%d to be deassigned", len(plan.ToBeDeassigned))
	}
	if v, _ := cmd.GetCustomer(ctx, b.tenantID, ids[len(ids)-1]); len(v.Assignees) != 2 {
		t.Fatalf("last customer %+v", v)
	}
}
