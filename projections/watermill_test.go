package projections

import (
	"bytes"
	"context"
	"database/sql"
	"slices"
	"strconv"
	"testing"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/assignment-ledger/ledger/eventstore"
)

// A batch travels as one row of JSON and one message: its events must come
// out of the message exactly as the event store reads them, in subscriber
// order, with the claims of every projection, read after the earliest.
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
	var every []eventstore.Event
	for deadline := time.Now().Add(30 * time.Second); ; {
		var err error
		if every, err = b.store.ReadAll(ctx, eventstore.Cursor{}, 10_000); err != nil {
			t.Fatal(err)
		}
		if len(every) == w.events {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events readable after 30 s", len(every), w.events)
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, size := range []int{1, 5, 10_000} {
		want := every[:min(size, len(every))]
		schema := newEventsSchema(eventFieldsAll, size)
		schema.limit = size
		got, claims := readBatch(t, ctx, db, schema)
		if len(claims) != len(AllNames()) {
			t.Errorf("batch size %d: claims %+v, want one per projection", size, claims)
		}
		for name, c := range claims {
			if c != (claim{}) {
				t.Errorf("batch size %d: %s claimed at %+v, want the start", size, name, c)
			}
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
		if schema.full() != (len(want) == size) {
			t.Errorf("batch size %d: full=%v", size, schema.full())
		}
	}

	// With one projection ahead, the batch starts at the one behind, and
	// each claim says where its projection stands.
	ahead := every[9]
	if _, err := b.pool.Exec(ctx, `UPDATE projection_checkpoints SET last_transaction_id = $2::text::xid8, last_position = $3
		WHERE consumer_group = $1`, AuditLog, strconv.FormatUint(ahead.TransactionID, 10), ahead.Position); err != nil {
		t.Fatal(err)
	}
	schema := newEventsSchema(eventFieldsAll, 100)
	got, claims := readBatch(t, ctx, db, schema)
	if got[0].Position != every[0].Position {
		t.Errorf("batch starts at %d, want %d (the projections behind)", got[0].Position, every[0].Position)
	}
	if c := claims[AuditLog].after; c.Position != ahead.Position || c.TransactionID != ahead.TransactionID {
		t.Errorf("audit_log claimed at %+v, want %d", c, ahead.Position)
	}
}

// The batch limit grows while full batches apply quickly, up to the cap,
// and shrinks when one is slow.
func TestBatchLimitAdapts(t *testing.T) {
	s := newEventsSchema(eventFieldsAll, 5000)
	grow := func() {
		s.SelectQuery(topic, consumerGroup, checkpointOffsets{})
		s.read = s.asked
		s.applied(s.asked, time.Millisecond)
	}
	for range 10 {
		grow()
	}
	if s.limit != 5000 {
		t.Fatalf("after quick full batches the limit is %d, want the cap 5000", s.limit)
	}
	s.SelectQuery(topic, consumerGroup, checkpointOffsets{})
	s.applied(s.asked, 3*batchTarget)
	if s.limit != 2500 {
		t.Fatalf("after a slow batch the limit is %d, want 2500", s.limit)
	}
	s.SelectQuery(topic, consumerGroup, checkpointOffsets{})
	s.applied(3, time.Millisecond)
	if s.limit != 2500 {
		t.Fatalf("a batch that was not full changed the limit to %d", s.limit)
	}
}

// readBatch runs the schema's select query as the subscriber does (no
// runner runs), and returns what the batch's one message carries.
func readBatch(t *testing.T, ctx context.Context, db *sql.DB, schema *eventsSchema) ([]*envelope, map[string]claim) {
	t.Helper()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: schema.SubscribeIsolationLevel()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	q := schema.SelectQuery(topic, consumerGroup, checkpointOffsets{names: AllNames()})
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
	batch, claims, err := decodeBatch(msgs[0].Msg)
	if err != nil {
		t.Fatal(err)
	}
	var hi int64
	for _, e := range batch {
		hi = max(hi, e.Position)
	}
	if msgs[0].Offset != hi {
		t.Errorf("row offset %d, highest position %d", msgs[0].Offset, hi)
	}
	return batch, claims
}

// With nothing to read, the query returns no row: no message at all.
func TestEmptyBatchIsNoMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	db := stdlib.OpenDBFromPool(b.pool)
	t.Cleanup(func() { _ = db.Close() })
	schema := newEventsSchema(eventFieldsCursor, 10)
	q := schema.SelectQuery(topic, consumerGroup, checkpointOffsets{names: AllNames()})
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

// A payload's lines come in any order and are sorted into subscriber
// order; a line that is not an event line is an error, not a zero event.
func TestDecodeEventsSortsAndRefusesBadLines(t *testing.T) {
	t.Parallel()
	payload := "7\t20\tUserAssigned\tt1\ts1\t2\t1\t1700000000000001\t\t{\"a\": \"x\\ty\"}\n" +
		"5\t20\tCustomerRegistered\tt1\ts1\t1\t2\t1700000000000000\tc0ffee\t{}\n" +
		"9\t19\tUserAssigned\tt1\ts2\t1\t1\t1700000000000002\t\t{}"
	batch, err := decodeEvents([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, e := range batch {
		got = append(got, e.Position)
	}
	if !slices.Equal(got, []int64{9, 5, 7}) {
		t.Fatalf("order %v, want transaction 19 first, then positions 5 and 7", got)
	}
	last := batch[2]
	if last.StreamVersion != 2 || string(last.Data) != `{"a": "x\ty"}` || last.RecordedAt.UnixMicro() != 1700000000000001 || last.Key != nil {
		t.Errorf("decoded %+v", last)
	}
	// A sealed event carries its customer's wrapped key, in hex.
	if sealed := batch[1]; sealed.SchemaVersion != 2 || string(sealed.Key) != "\xc0\xff\xee" {
		t.Errorf("sealed event decoded %+v", sealed)
	}
	for _, bad := range []string{"5\t20", "x\t20\tUserAssigned", "5\t20\tA\tt\ts\t1\t1\tnot-a-time\t\t{}",
		"5\t20\tA\tt\ts\t1\t2\t1\tnot-hex\t{}", "5\t20\tA\tt\ts\t1\t1\t1\t{}"} {
		if _, err := decodeEvents([]byte(bad)); err == nil {
			t.Errorf("%q decoded without an error", bad)
		}
	}
}
