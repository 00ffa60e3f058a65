package eventstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/assignment-ledger/ledger/eventstore"
)

// Outbox messages commit with the append that carries them, and only then.
func TestAppendWritesItsOutboxInItsTransaction(t *testing.T) {
	s, b := setup(t)
	ctx := context.Background()
	count := func() int {
		t.Helper()
		var n int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	stream := newID()
	msg := func() eventstore.OutboxMessage {
		return eventstore.OutboxMessage{ID: newID(), CustomerID: stream, Kind: "invitation", Payload: []byte(`{"email":"c@x.example"}`)}
	}
	req := eventstore.AppendRequest{
		TenantID: b.tenant,
		Streams:  []eventstore.StreamWrite{{StreamID: stream, StreamType: "customer", ExpectedVersion: eventstore.NoStream, Events: []eventstore.EventData{ev("A", 1)}}},
		Outbox:   []eventstore.OutboxMessage{msg(), msg()},
	}
	if _, err := s.Append(ctx, req); err != nil {
		t.Fatal(err)
	}
	var status, tenant string
	if err := b.pool.QueryRow(ctx, `SELECT status, tenant_id::text FROM outbox WHERE id = $1`, req.Outbox[0].ID).Scan(&status, &tenant); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 || status != "queued" || tenant != b.tenant {
		t.Fatalf("%d rows, first %s of tenant %s", n, status, tenant)
	}
	// A refused append (the stream exists now) leaves no message behind.
	req.Outbox = []eventstore.OutboxMessage{msg()}
	if _, err := s.Append(ctx, req); !errors.Is(err, eventstore.ErrVersionMismatch) {
		t.Fatalf("append at a stale version: %v", err)
	}
	// So does a transaction rolled back after its append.
	req.Streams[0].ExpectedVersion = 1
	rollback := errors.New("rollback")
	err := s.Transact(ctx, func(ctx context.Context, tx *eventstore.Tx) error {
		if _, err := tx.Append(ctx, req); err != nil {
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatalf("transaction: %v", err)
	}
	if n := count(); n != 2 {
		t.Fatalf("%d rows after refused and rolled-back appends, want 2", n)
	}
}
