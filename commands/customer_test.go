package commands_test

import (
	"context"
	"sync"
	"testing"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

func TestRegisterCustomer(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()

	res, err := cmd.RegisterCustomer(ctx, b.admin, domain.Profile{FirstName: " Grace ", LastName: "Hopper", Email: "Grace@Navy.example", ExternalID: "X-1"})
	wantErr(t, err, "")
	if res.Email != "grace@navy.example" || res.FirstName != "Grace" || res.Status != "active" || res.Version != 1 || res.Position == 0 || res.Assignees == nil {
		t.Fatalf("registered %+v", res)
	}
	_, err = cmd.RegisterCustomer(ctx, b.admin, domain.Profile{FirstName: "G", Email: "grace@navy.example"})
	wantErr(t, err, domain.CodeEmailTaken)
	_, err = cmd.RegisterCustomer(ctx, b.admin, domain.Profile{FirstName: "G", ExternalID: "X-1"})
	wantErr(t, err, "external_id_taken")
	_, err = cmd.RegisterCustomer(ctx, b.admin, domain.Profile{Phone: "123"})
	wantErr(t, err, "validation")
	_, err = cmd.RegisterCustomer(ctx, b.admin, domain.Profile{FirstName: "x", Email: "nope"})
	wantErr(t, err, "validation")
	_, err = cmd.RegisterCustomer(ctx, b.memberMeta(b.user(t)), domain.Profile{FirstName: "x"})
	wantErr(t, err, "forbidden")

	// Another tenant may use the same email.
	other := b.otherTenant(t)
	_, err = cmd.RegisterCustomer(ctx, other, domain.Profile{FirstName: "G", Email: "grace@navy.example"})
	wantErr(t, err, "")

	// Idempotent replay.
	k := keyed(b.admin, "reg", "alan")
	first, err := cmd.RegisterCustomer(ctx, k, domain.Profile{FirstName: "Alan", Email: "alan@example.com"})
	wantErr(t, err, "")
	n := b.eventCount(t)
	again, err := cmd.RegisterCustomer(ctx, k, domain.Profile{FirstName: "Alan", Email: "alan@example.com"})
	wantErr(t, err, "")
	if again.ID != first.ID || again.Position != first.Position || b.eventCount(t) != n {
		t.Fatalf("replay %+v first %+v", again, first)
	}
	_, err = cmd.RegisterCustomer(ctx, keyed(b.admin, "reg", "other"), domain.Profile{FirstName: "Alan", Email: "alan2@example.com"})
	wantErr(t, err, "key_reused")
}

func TestRegisterCustomerSameEmailRace(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = cmd.RegisterCustomer(ctx, b.admin, domain.Profile{FirstName: "Twin", Email: "twin@example.com"})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			wantErr(t, err, domain.CodeEmailTaken)
		}
	}
	if ok != 1 {
		t.Fatalf("%d registrations won", ok)
	}
}

func TestInviteAndAccept(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	b.policy(t, domain.Policy{RequireLead: true, MaxAssignees: ptr(2), MembersCanSelfAssign: true})
	u1, u2, u3 := b.user(t), b.user(t), b.user(t)

	inv, err := cmd.InviteClient(ctx, b.admin, domain.Profile{FirstName: "Ivy", Email: "ivy@client.example"}, []string{u2, u1}, false)
	wantErr(t, err, "")
	ids, lead := teamOf(inv.Customer)
	if inv.Customer.Status != "invited" || lead != u2 || len(ids) != 2 || len(inv.Token) != 43 || inv.Position == 0 {
		t.Fatalf("invitation %+v", inv)
	}
	states := b.states(t, inv.Customer.ID)
	if len(states) != 3 {
		t.Fatalf("want ClientInvited + 2 UserAssigned, got %d events", len(states))
	}

	_, err = cmd.InviteClient(ctx, b.admin, domain.Profile{FirstName: "Ivy", Email: "ivy@client.example"}, nil, false)
	wantErr(t, err, domain.CodeEmailTaken)
	_, err = cmd.InviteClient(ctx, b.admin, domain.Profile{FirstName: "Jo", Email: "jo@client.example"}, []string{u1, u2, u3}, false)
	wantErr(t, err, domain.CodeMaxAssigneesReached)
	_, err = cmd.InviteClient(ctx, b.admin, domain.Profile{FirstName: "Jo", Email: "jo@client.example"}, []string{"0190c1f2-0000-7000-8000-000000000000"}, false)
	wantErr(t, err, "not_found")
	_, err = cmd.InviteClient(ctx, b.admin, domain.Profile{FirstName: "Jo"}, nil, false)
	wantErr(t, err, "validation")
	_, err = cmd.InviteClient(ctx, b.memberMeta(u1), domain.Profile{FirstName: "Jo", Email: "jo@client.example"}, nil, false)
	wantErr(t, err, "forbidden")

	_, err = cmd.AcceptInvitation(ctx, commands.Meta{}, "no-such-token")
	wantErr(t, err, "not_found")
	acc, err := cmd.AcceptInvitation(ctx, commands.Meta{}, inv.Token)
	wantErr(t, err, "")
	if acc.Status != "active" || acc.Version != 4 || len(acc.Assignees) != 2 {
		t.Fatalf("accepted %+v", acc)
	}
	_, err = cmd.AcceptInvitation(ctx, commands.Meta{}, inv.Token)
	wantErr(t, err, "not_found")

	// A replayed invitation answers without the token, which is not stored.
	k := keyed(b.admin, "inv", "kim")
	first, err := cmd.InviteClient(ctx, k, domain.Profile{FirstName: "Kim", Email: "kim@client.example"}, nil, false)
	wantErr(t, err, "")
	again, err := cmd.InviteClient(ctx, k, domain.Profile{FirstName: "Kim", Email: "kim@client.example"}, nil, false)
	wantErr(t, err, "")
	if first.Token == "" || first.Replayed || again.Token != "" || !again.Replayed || again.Customer.ID != first.Customer.ID {
		t.Fatalf("replay %+v first %+v", again, first)
	}
	var stored int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE response::text LIKE '%'||$1||'%'`, first.Token).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("token stored in idempotency response (%d, %v)", stored, err)
	}
}

func TestAcceptInvitationRace(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	inv, err := cmd.InviteClient(ctx, b.admin, domain.Profile{FirstName: "Ivy", Email: "ivy@client.example"}, nil, false)
	wantErr(t, err, "")
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = cmd.AcceptInvitation(ctx, commands.Meta{}, inv.Token) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			wantErr(t, err, "not_found")
		}
	}
	if ok != 1 {
		t.Fatalf("%d accepts won", ok)
	}
	if s := b.states(t, inv.Customer.ID); len(s) != 2 {
		t.Fatalf("%d events on the customer", len(s))
	}
}
