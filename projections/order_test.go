package projections

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/assignment-ledger/ledger/eventstore"
)

// insertAtTransaction writes an event as if transaction txid had appended
// it: transaction ids whose decimal digits differ in number ("99" and
// "100") sort apart as numbers and as text, which is what the rebuild's
// reads once got wrong.
func insertAtTransaction(t *testing.T, b testBundle, txid string) int64 {
	t.Helper()
	var pos int64
	id := uuid.NewString()
	err := b.pool.QueryRow(context.Background(), `INSERT INTO events (tenant_id, stream_id, stream_version, type, data, metadata,
		recorded_at, transaction_id, prev_hash, hash)
		VALUES ($1, $1, 1, 'TenantCreated', '{}', '{}', now(), $2::text::xid8, '\x00', '\x00') RETURNING position`, id, txid).Scan(&pos)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

func TestRebuildReadsOrderTransactionIDsAsNumbers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// Position order, text order and numeric order all differ: positions
	// p100 < p99 < p7, text "100" < "7" < "99", numbers 7 < 99 < 100.
	p100 := insertAtTransaction(t, b, "100")
	p99 := insertAtTransaction(t, b, "99")
	p7 := insertAtTransaction(t, b, "7")
	want := []eventstore.Cursor{{TransactionID: 7, Position: p7}, {TransactionID: 99, Position: p99}, {TransactionID: 100, Position: p100}}

	db := stdlib.OpenDBFromPool(b.pool)
	t.Cleanup(func() { _ = db.Close() })
	var got []eventstore.Cursor
	for cur := (eventstore.Cursor{}); ; {
		// One event a page, so the cursor pagination is exercised too.
		page, err := readAfter(ctx, db, cur, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		cur = eventstore.Cursor{TransactionID: page[0].TransactionID, Position: page[0].Position}
		got = append(got, cur)
	}
	if len(got) != len(want) {
		t.Fatalf("catch-up read %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("catch-up read %v, want %v", got, want)
		}
	}
	last, err := lastBelow(ctx, b.pool, "101")
	if err != nil {
		t.Fatal(err)
	}
	if last != want[2] {
		t.Fatalf("last below 101 = %v, want %v", last, want[2])
	}
	last, err = lastBelow(ctx, b.pool, "100")
	if err != nil {
		t.Fatal(err)
	}
	if last != want[1] {
		t.Fatalf("last below 100 = %v, want %v", last, want[1])
	}
}
