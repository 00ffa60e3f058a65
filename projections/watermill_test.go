package projections

import (
	"bytes"
	"context"
	"database/sql"
	"testing"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/assignment-ledger/ledger/eventstore"
)

// A batch travels as one row of JSON and one message: its events must come
// out exactly as the event store reads them, in subscriber order, and the
// message must lead back to them only while they are the batch last read.
func TestBatchMessageCarriesEventsAsStored(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	w := newWorld(t, b.store, 7)
	w.run(ctx, 60)
	db := stdlib.OpenDBFromPool(b.pool)
	t.Cleanup(func() { _ = db.Close() })
	// Both reads below go only below the cluster's oldest running
	// transaction, which another test's can hold back for a moment: compare
	// them once every event is readable.
	for deadline := time.Now().Add(30 * time.Second); ; {
		all, err := b.store.ReadAll(ctx, eventstore.Cursor{}, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) == w.events {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events readable after 30 s", len(all), w.events)
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, size := range []int{1, 5, 10_000} {
		want, err := b.store.ReadAll(ctx, eventstore.Cursor{}, size)
		if err != nil {
			t.Fatal(err)
		}
		schema := &eventsSchema{batchSize: size}
		got, msg := readBatch(t, ctx, db, schema)
		msgBatch, after := schema.batchOf(msg)
		if after != (claim{}) {
			t.Errorf("batch size %d: read after %+v, want the start", size, after)
		}
		if len(got) != len(want) {
			t.Fatalf("batch size %d: %d events, want %d", size, len(got), len(want))
		}
		for i, e := range want {
			g := got[i]
			if g.Position != e.Position || g.TransactionID != e.TransactionID || g.TenantID != e.TenantID ||
				g.StreamID != e.StreamID || g.StreamVersion != e.Version || g.Type != e.Type ||
				g.SchemaVersion != e.SchemaVersion || !g.RecordedAt.Equal(e.RecordedAt) ||
				g.RecordedAt.Location().String() != "UTC" || !bytes.Equal(g.Data, e.Data) {
				t.Fatalf("batch size %d, event %d:\n got %+v (data %s)\nwant %+v (data %s)", size, i, *g, g.Data, e, e.Data)
			}
		}
		if len(msgBatch) != len(got) || schema.full() != (len(want) == size) {
			t.Errorf("batch size %d: message leads to %d events, full=%v", size, len(msgBatch), schema.full())
		}
	}

	// A message of an earlier query no longer leads to a batch.
	schema := &eventsSchema{batchSize: 3}
	_, old := readBatch(t, ctx, db, schema)
	if _, cur := readBatch(t, ctx, db, schema); first(schema.batchOf(cur)) == nil {
		t.Fatal("the current message leads to no events")
	}
	if first(schema.batchOf(old)) != nil {
		t.Error("the message of a replaced batch still leads to events")
	}
}

// readBatch runs the schema's select query for my_clients (whose
// checkpoint is at the start: no runner runs) as the subscriber does, and
// returns the events decoded and the batch's one message.
func readBatch(t *testing.T, ctx context.Context, db *sql.DB, schema *eventsSchema) ([]*envelope, *message.Message) {
	t.Helper()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: schema.SubscribeIsolationLevel()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	q := schema.SelectQuery(topic, MyClients, checkpointOffsets{})
	rows, err := tx.QueryContext(ctx, q.Query, q.Args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var msgs []wsql.Row
	for rows.Next() {
		r, err := schema.UnmarshalMessage(rows)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d rows for one batch", len(msgs))
	}
	schema.mu.Lock()
	events := schema.batch
	schema.mu.Unlock()
	if last := events[len(events)-1]; msgs[0].Offset != last.Position {
		t.Errorf("row offset %d, last event %d", msgs[0].Offset, last.Position)
	}
	return events, msgs[0].Msg
}

// With nothing to read, the query returns no row: no message at all.
func TestEmptyBatchIsNoMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	db := stdlib.OpenDBFromPool(b.pool)
	t.Cleanup(func() { _ = db.Close() })
	schema := &eventsSchema{batchSize: 10}
	q := schema.SelectQuery(topic, MyClients, checkpointOffsets{})
	rows, err := db.QueryContext(context.Background(), q.Query, q.Args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil || n != 0 {
		t.Fatalf("empty store: %d rows (%v), want none", n, err)
	}
}

func first[A, B any](a A, _ B) A { return a }
