package mail_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/smtptest"
	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/mail"
)

// queueSealed queues an invitation whose payload is sealed for its
// customer (the commands seal with the customer's data key; here the
// ciphertext is a marker the tests' Open checks for).
func queueSealed(t *testing.T, pool *pgxpool.Pool) (id, customer string) {
	t.Helper()
	id, customer = newID(), newID()
	payload := []byte(`{"sealed_for":"` + customer + `","sealed":"opaque"}`)
	_, err := eventstore.New(pool).Append(context.Background(), eventstore.AppendRequest{
		TenantID: newID(),
		Streams: []eventstore.StreamWrite{{StreamID: customer, StreamType: "customer", ExpectedVersion: eventstore.NoStream,
			Events: []eventstore.EventData{{Type: "Test", SchemaVersion: 1, Data: []byte(`{}`)}}}},
		Outbox: []eventstore.OutboxMessage{{ID: id, CustomerID: customer, Kind: mail.KindInvitation, Payload: payload}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return id, customer
}

// A sealed payload is opened through Config.Open and sent as it was
// before sealing; a sent row keeps no payload.
func TestRelayOpensASealedPayload(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	srv := smtptest.Start(t)
	id, customer := queueSealed(t, pool)
	cfg := quick
	cfg.Open = func(_ context.Context, _, customerID string, payload []byte) ([]byte, error) {
		var sealed struct{ Sealed string }
		if err := json.Unmarshal(payload, &sealed); err != nil || customerID != customer || sealed.Sealed != "opaque" {
			t.Errorf("Open(%s, %s)", customerID, payload)
		}
		return json.Marshal(carla)
	}
	start(t, pool, srv.URL(), cfg)
	m := srv.Wait(t, 1, 15*time.Second)[0]
	if len(m.To) != 1 || m.To[0] != "carla@client.example" {
		t.Fatalf("sent to %v", m.To)
	}
	if _, text := body(t, m.Data); !strings.Contains(text, "https://ledger.example/invitations/tok-123") {
		t.Fatalf("body lacks the link:\n%s", text)
	}
	waitState(t, pool, id, "sent")
	var payload string
	if err := pool.QueryRow(context.Background(), `SELECT payload::text FROM outbox WHERE id = $1`, id).Scan(&payload); err != nil || payload != "{}" {
		t.Fatalf("a sent row keeps payload %q (%v)", payload, err)
	}
}

// Without Config.Open a sealed payload cannot be rendered: the e-mail fails
// at once rather than go out garbled.
func TestRelayWithoutOpenFailsASealedPayload(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	srv := smtptest.Start(t)
	id, _ := queueSealed(t, pool)
	start(t, pool, srv.URL(), quick)
	s := waitState(t, pool, id, "failed")
	if s.Attempts != 1 || s.Error == nil || !strings.Contains(*s.Error, "sealed") || len(srv.Messages()) != 0 {
		t.Fatalf("sealed payload without Open: %+v, %d sent", s, len(srv.Messages()))
	}
}
