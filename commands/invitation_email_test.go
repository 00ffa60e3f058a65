package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/mail"
)

func TestInvitationEmailIsQueuedOnlyWithEmailOn(t *testing.T) {
	t.Parallel()
	cmd, b := setup(t)
	ctx := context.Background()
	u := b.user(t)
	count := func() (n int) {
		t.Helper()
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	_, err := cmd.InviteClient(ctx, b.admin, domain.Profile{FirstName: "Ivy", Email: "ivy@client.example"}, []string{u}, true)
	if !errors.Is(err, commands.ErrEmailNotConfigured) || count() != 0 {
		t.Fatalf("send_email without e-mail: %v, %d rows", err, count())
	}

	withEmail := commands.New(b.store, testdb.Keyring(t), nil, commands.WithEmail())
	inv, err := withEmail.InviteClient(ctx, b.admin, domain.Profile{FirstName: "Ivy", Email: "ivy@client.example"}, []string{u}, true)
	if err != nil || inv.Customer.Invitation == nil || inv.Customer.Invitation.Email != "queued" || count() != 1 {
		t.Fatalf("invitation with e-mail: %+v %v, %d rows", inv.Customer.Invitation, err, count())
	}
	var msgID string
	if err := b.pool.QueryRow(ctx, `SELECT id::text FROM outbox WHERE customer_id = $1`, inv.Customer.ID).Scan(&msgID); err != nil {
		t.Fatal(err)
	}

	// The relay's outcome becomes one event, however often it is told.
	o := mail.Outcome{TenantID: b.tenantID, CustomerID: inv.Customer.ID, MessageID: msgID, Kind: mail.KindInvitation, Status: "sent"}
	for range 2 {
		if err := withEmail.RecordEmailOutcome(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_id = $1 AND type = 'InvitationEmailed' AND data->>'message_id' = $2`,
		inv.Customer.ID, msgID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d InvitationEmailed events, want 1", n)
	}
	// The customer still folds (the event only moves its version).
	c, err := cmd.GetCustomer(ctx, b.tenantID, inv.Customer.ID)
	if err != nil || c.Version != inv.Customer.Version+1 || c.Status != "invited" || len(c.Assignees) != 1 {
		t.Fatalf("after InvitationEmailed: %+v %v", c, err)
	}
}
