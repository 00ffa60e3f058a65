package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/testdb"
)

type testBundle struct {
	pool   *pgxpool.Pool
	tenant string
}

func setup(t *testing.T) (*eventstore.Store, testBundle) {
	t.Helper()
	t.Parallel()
	pool := testdb.New(t)
	return eventstore.New(pool), testBundle{pool: pool, tenant: newID()}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func ev(typ string, n int) eventstore.EventData {
	return eventstore.EventData{Type: typ, SchemaVersion: 1, Data: fmt.Appendf(nil, `{"n": %d, "note": "é <&>"}`, n)}
}

func appendTo(t *testing.T, s *eventstore.Store, tenant, stream string, expected int64, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	t.Helper()
	return s.Append(context.Background(), eventstore.AppendRequest{
		TenantID: tenant,
		Streams:  []eventstore.StreamWrite{{StreamID: stream, StreamType: "test", ExpectedVersion: expected, Events: events}},
		Metadata: eventstore.Metadata{Actor: eventstore.Actor{UserID: newID(), Name: "Ann"}, CorrelationID: newID()},
	})
}

func countEvents(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAppendAndReadStream(t *testing.T) {
	s, b := setup(t)
	ctx := context.Background()
	stream := newID()

	res, err := appendTo(t, s, b.tenant, stream, eventstore.NoStream, ev("A", 1), ev("B", 2))
	if err != nil {
		t.Fatal(err)
	}
	if res.Versions[stream] != 2 || res.Position == 0 || res.TransactionID == 0 {
		t.Fatalf("unexpected result %+v", res)
	}
	if _, err := appendTo(t, s, b.tenant, stream, 2, ev("C", 3)); err != nil {
		t.Fatal(err)
	}
	events, err := s.ReadStream(ctx, b.tenant, stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("got %d events, want 3", len(events))
	}
	for i, e := range events {
		if e.Version != int64(i+1) {
			t.Errorf("event %d has version %d", i, e.Version)
		}
		var d struct{ N int }
		if err := json.Unmarshal(e.Data, &d); err != nil || d.N != i+1 {
			t.Errorf("event %d data %s", i, e.Data)
		}
		if e.Metadata.Actor.Name != "Ann" {
			t.Errorf("metadata lost: %+v", e.Metadata)
		}
	}
	if got, _ := s.ReadStream(ctx, newID(), stream); len(got) != 0 {
		t.Fatalf("another tenant read %d events of the stream", len(got))
	}
}

func TestExpectedVersionMismatchWritesNothing(t *testing.T) {
	s, b := setup(t)
	stream := newID()
	if _, err := appendTo(t, s, b.tenant, stream, eventstore.NoStream, ev("A", 1)); err != nil {
		t.Fatal(err)
	}
	cases := map[string]int64{"no stream on existing": eventstore.NoStream, "stale": 0, "ahead": 5}
	for name, expected := range cases {
		_, err := appendTo(t, s, b.tenant, stream, expected, ev("X", 9))
		var vm *eventstore.VersionMismatchError
		if !errors.As(err, &vm) || !errors.Is(err, eventstore.ErrVersionMismatch) || vm.Actual != 1 {
			t.Errorf("%s: err = %v, want version mismatch at 1", name, err)
		}
	}
	if _, err := appendTo(t, s, b.tenant, newID(), 3, ev("X", 1)); !errors.Is(err, eventstore.ErrVersionMismatch) {
		t.Errorf("exact version on a missing stream: err = %v", err)
	}
	if _, err := appendTo(t, s, b.tenant, stream, eventstore.Any, ev("B", 2)); err != nil {
		t.Errorf("any: %v", err)
	}
	if n := countEvents(t, b.pool); n != 2 {
		t.Fatalf("%d events stored, want 2", n)
	}
}

func TestMultiStreamAppendIsAtomic(t *testing.T) {
	s, b := setup(t)
	ctx := context.Background()
	a, c := newID(), newID()
	if _, err := appendTo(t, s, b.tenant, c, eventstore.NoStream, ev("A", 1)); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append(ctx, eventstore.AppendRequest{TenantID: b.tenant, Streams: []eventstore.StreamWrite{
		{StreamID: a, StreamType: "t", ExpectedVersion: eventstore.NoStream, Events: []eventstore.EventData{ev("A", 1)}},
		{StreamID: c, StreamType: "t", ExpectedVersion: 7, Events: []eventstore.EventData{ev("B", 2)}},
	}})
	if !errors.Is(err, eventstore.ErrVersionMismatch) {
		t.Fatalf("err = %v", err)
	}
	if n := countEvents(t, b.pool); n != 1 {
		t.Fatalf("%d events stored after a refused multi-stream append, want 1", n)
	}
	res, err := s.Append(ctx, eventstore.AppendRequest{TenantID: b.tenant, Streams: []eventstore.StreamWrite{
		{StreamID: a, StreamType: "t", ExpectedVersion: eventstore.NoStream, Events: []eventstore.EventData{ev("A", 1)}},
		{StreamID: c, StreamType: "t", ExpectedVersion: 1, Events: []eventstore.EventData{ev("B", 2)}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Versions[a] != 1 || res.Versions[c] != 2 {
		t.Fatalf("versions %v", res.Versions)
	}
}

func TestIdempotencyKey(t *testing.T) {
	s, b := setup(t)
	ctx := context.Background()
	stream := newID()
	req := func(hash string, expected int64) eventstore.AppendRequest {
		return eventstore.AppendRequest{
			TenantID: b.tenant,
			Streams:  []eventstore.StreamWrite{{StreamID: stream, StreamType: "t", ExpectedVersion: expected, Events: []eventstore.EventData{ev("A", 1)}}},
			Idempotency: &eventstore.Idempotency{Key: "k1", RequestHash: []byte(hash), Response: func(r eventstore.AppendResult) ([]byte, error) {
				return fmt.Appendf(nil, `{"position": %d}`, r.Position), nil
			}},
		}
	}
	first, err := s.Append(ctx, req("h1", eventstore.NoStream))
	if err != nil {
		t.Fatal(err)
	}
	// The retry would break the expected version were it executed: it must not be.
	again, err := s.Append(ctx, req("h1", eventstore.NoStream))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed || again.Position != first.Position || string(again.Response) != string(first.Response) {
		t.Fatalf("replay = %+v, first = %+v", again, first)
	}
	if _, err := s.Append(ctx, req("h2", eventstore.Any)); !errors.Is(err, eventstore.ErrIdempotencyKeyReused) {
		t.Fatalf("different request with same key: err = %v", err)
	}
	got, found, err := s.LookupIdempotency(ctx, b.tenant, "k1", []byte("h1"))
	if err != nil || !found || got.Position != first.Position {
		t.Fatalf("lookup = %+v %v %v", got, found, err)
	}
	if n := countEvents(t, b.pool); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

func TestConcurrentIdempotentRetriesAppendOnce(t *testing.T) {
	s, b := setup(t)
	stream := newID()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Append(context.Background(), eventstore.AppendRequest{
				TenantID:    b.tenant,
				Streams:     []eventstore.StreamWrite{{StreamID: stream, StreamType: "t", ExpectedVersion: eventstore.Any, Events: []eventstore.EventData{ev("A", 1)}}},
				Idempotency: &eventstore.Idempotency{Key: "same", RequestHash: []byte("h")},
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := countEvents(t, b.pool); n != 1 {
		t.Fatalf("%d events after 16 concurrent retries, want 1", n)
	}
}

// Fifty writers race on one stream with exact expected versions, retrying on
// conflict: the stream must end with versions 1..N and an intact chain.
func TestConcurrentAppendsKeepTheChain(t *testing.T) {
	s, b := setup(t)
	ctx := context.Background()
	stream := newID()
	const writers = 50
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; attempt < 500; attempt++ {
				v, err := s.StreamVersion(ctx, stream)
				if err != nil {
					t.Error(err)
					return
				}
				_, err = appendTo(t, s, b.tenant, stream, v, ev("A", i))
				if err == nil {
					return
				}
				if !errors.Is(err, eventstore.ErrVersionMismatch) && !errors.Is(err, eventstore.ErrConflict) {
					t.Error(err)
					return
				}
			}
			t.Error("writer gave up")
		}()
	}
	wg.Wait()
	events, err := s.ReadStream(ctx, b.tenant, stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != writers {
		t.Fatalf("%d events, want %d", len(events), writers)
	}
	seen := map[int]bool{}
	for i, e := range events {
		if e.Version != int64(i+1) {
			t.Fatalf("version gap or duplicate: event %d has version %d", i, e.Version)
		}
		var d struct{ N int }
		_ = json.Unmarshal(e.Data, &d)
		if seen[d.N] {
			t.Fatalf("writer %d appended twice", d.N)
		}
		seen[d.N] = true
	}
	rep, err := s.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != writers || rep.Streams != 1 {
		t.Fatalf("verify report %+v", rep)
	}
}

// An event whose transaction commits after later transactions have committed
// must still be read: ReadAll stays below the oldest running transaction.
func TestReadAllDoesNotSkipALateCommit(t *testing.T) {
	s, b := setup(t)
	ctx := context.Background()

	slow, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx) //nolint:errcheck
	slowStream := newID()
	if err := s.Transact(ctx, func(ctx context.Context, _ *eventstore.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// The slow transaction takes its id first, then a fast one commits.
	if _, err := slow.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	fast, err := appendTo(t, s, b.tenant, newID(), eventstore.NoStream, ev("Fast", 1))
	if err != nil {
		t.Fatal(err)
	}

	var cursor eventstore.Cursor
	read := func() []eventstore.Event {
		events, err := s.ReadAll(ctx, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) > 0 {
			last := events[len(events)-1]
			cursor = eventstore.Cursor{TransactionID: last.TransactionID, Position: last.Position}
		}
		return events
	}
	if got := read(); len(got) != 0 {
		t.Fatalf("read %d events while an older transaction is open; the fast event (position %d) must wait", len(got), fast.Position)
	}

	// The slow transaction appends through the store's SQL and commits late.
	if _, err := slow.Exec(ctx, `INSERT INTO events (tenant_id, stream_id, stream_version, type, data, metadata, recorded_at, prev_hash, hash)
		VALUES ($1, $2, 1, 'Slow', '{}', '{}', now(), '\x00', '\x00')`, b.tenant, slowStream); err != nil {
		t.Fatal(err)
	}
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Other tests' transactions on the same cluster also hold the snapshot
	// xmin back, so collect until both events arrive.
	var got []eventstore.Event
	for deadline := time.Now().Add(20 * time.Second); len(got) < 2 && time.Now().Before(deadline); {
		got = append(got, read()...)
		if len(got) < 2 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(got) != 2 || got[0].Type != "Slow" || got[1].Type != "Fast" {
		t.Fatalf("after the late commit read %v, want [Slow Fast]", types(got))
	}
	if again := read(); len(again) != 0 {
		t.Fatalf("re-read %d events past the cursor", len(again))
	}
}

func types(events []eventstore.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

func TestVerifyCatchesTampering(t *testing.T) {
	tampers := map[string]string{
		"data":        `UPDATE events SET data = '{"n": 99}' WHERE position = $1`,
		"data key":    `UPDATE events SET data = data || '{"extra": true}' WHERE position = $1`,
		"metadata":    `UPDATE events SET metadata = metadata || '{"correlation_id": "forged"}' WHERE position = $1`,
		"recorded_at": `UPDATE events SET recorded_at = recorded_at - interval '1 day' WHERE position = $1`,
		"type":        `UPDATE events SET type = 'Other' WHERE position = $1`,
		"deleted":     `DELETE FROM events WHERE position = $1`,
		"hash":        `UPDATE events SET hash = sha256(hash) WHERE position = $1`,
	}
	for name, sql := range tampers {
		t.Run(name, func(t *testing.T) {
			s, b := setup(t)
			ctx := context.Background()
			stream := newID()
			for i := range 3 {
				if _, err := appendTo(t, s, b.tenant, stream, int64(i), ev("A", i)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Verify(ctx, nil); err != nil {
				t.Fatalf("intact chain: %v", err)
			}
			events, _ := s.ReadStream(ctx, b.tenant, stream)
			target := events[1]
			// Through the application's connection the past cannot be rewritten.
			if _, err := b.pool.Exec(ctx, sql, target.Position); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("%s through the application: err = %v, want the append-only refusal", name, err)
			}
			if _, err := s.Verify(ctx, nil); err != nil {
				t.Fatalf("a refused rewrite broke the chain: %v", err)
			}
			// A superuser who bypasses triggers can; verify must then catch it.
			err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, sql, target.Position)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Verify(ctx, nil)
			var broken *eventstore.BrokenChainError
			if !errors.As(err, &broken) {
				t.Fatalf("verify after tampering with %s: err = %v", name, err)
			}
			// A deleted event is noticed at its successor.
			want := target.Position
			if name == "deleted" {
				want = events[2].Position
			}
			if broken.Position != want {
				t.Fatalf("broken at %d, want %d (%v)", broken.Position, want, broken)
			}
		})
	}
}

// TestVerifyChecksStreamHeads breaks a stream's head row, alone and for a
// stream whose events span verification pages (heads are read a page at a
// time), and for a stream whose last event was removed.
func TestVerifyChecksStreamHeads(t *testing.T) {
	s, b := setup(t)
	ctx := context.Background()
	// In stream order: short's 2 events, 4,998 one-event streams (the
	// first page ends with the last of them), then long's 6,000.
	short, long := "00000000-0000-4000-8000-000000000001", "ffffffff-ffff-4fff-bfff-ffffffffffff"
	if _, err := appendTo(t, s, b.tenant, short, 0, ev("A", 1), ev("A", 2)); err != nil {
		t.Fatal(err)
	}
	// More events than one verification page (5,000), in one stream, and
	// streams that end exactly where a page does.
	for i := range 4998 {
		if _, err := appendTo(t, s, b.tenant, newID(), 0, ev("C", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 6000; i += 1000 {
		batch := make([]eventstore.EventData, 1000)
		for k := range batch {
			batch[k] = ev("B", i+k)
		}
		if _, err := appendTo(t, s, b.tenant, long, int64(i), batch...); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := s.Verify(ctx, nil)
	if err != nil {
		t.Fatalf("intact store: %v", err)
	}
	if rep.Streams != 5000 || rep.Events != 11000 {
		t.Fatalf("verified %d streams, %d events; want 5000, 11000", rep.Streams, rep.Events)
	}
	tamper := func(sql string, args ...any) {
		t.Helper()
		err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, sql, args...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	expectBroken := func(stream string) {
		t.Helper()
		_, err := s.Verify(ctx, nil)
		var broken *eventstore.BrokenChainError
		if !errors.As(err, &broken) || broken.StreamID != stream {
			t.Fatalf("verify: err = %v, want a broken chain in stream %s", err, stream)
		}
	}
	tamper(`UPDATE streams SET last_hash = sha256(last_hash) WHERE stream_id = $1`, long)
	expectBroken(long)
	tamper(`UPDATE streams SET last_hash = (SELECT hash FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1) WHERE stream_id = $1`, long)
	if _, err := s.Verify(ctx, nil); err != nil {
		t.Fatalf("repaired head: %v", err)
	}
	tamper(`DELETE FROM events WHERE stream_id = $1 AND stream_version = 2`, short)
	expectBroken(short)
	tamper(`DELETE FROM streams WHERE stream_id = $1`, short)
	expectBroken(short)
}

func TestClaimsAreUniqueUnderRaces(t *testing.T) {
	s, b := setup(t)
	var wg sync.WaitGroup
	results := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := newID()
			_, err := s.Append(context.Background(), eventstore.AppendRequest{
				TenantID: b.tenant,
				Streams:  []eventstore.StreamWrite{{StreamID: owner, StreamType: "user", ExpectedVersion: eventstore.NoStream, Events: []eventstore.EventData{ev("UserCreated", 1)}}},
				Claims:   []eventstore.Claim{{Kind: "user_email", Value: "ann@example.com", OwnerID: owner}},
			})
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	ok := 0
	for err := range results {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, eventstore.ErrClaimTaken):
		default:
			t.Error(err)
		}
	}
	if ok != 1 || countEvents(t, b.pool) != 1 {
		t.Fatalf("%d claims succeeded and %d events stored, want 1 and 1", ok, countEvents(t, b.pool))
	}
}

func TestGuardRefusesAStaleRead(t *testing.T) {
	s, b := setup(t)
	ctx := context.Background()
	user, customer := newID(), newID()
	if _, err := appendTo(t, s, b.tenant, user, eventstore.NoStream, ev("UserCreated", 1)); err != nil {
		t.Fatal(err)
	}
	write := func(guard int64) error {
		_, err := s.Append(ctx, eventstore.AppendRequest{
			TenantID: b.tenant,
			Streams:  []eventstore.StreamWrite{{StreamID: customer, StreamType: "customer", ExpectedVersion: eventstore.Any, Events: []eventstore.EventData{ev("UserAssigned", 1)}}},
			Guards:   []eventstore.Guard{{StreamID: user, Version: guard}},
		})
		return err
	}
	if err := write(1); err != nil {
		t.Fatal(err)
	}
	if _, err := appendTo(t, s, b.tenant, user, 1, ev("UserDeactivated", 2)); err != nil {
		t.Fatal(err)
	}
	if err := write(1); !errors.Is(err, eventstore.ErrVersionMismatch) {
		t.Fatalf("stale guard: err = %v", err)
	}
}

func TestAppendNotifies(t *testing.T) {
	s, b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+eventstore.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	res, err := appendTo(t, s, b.tenant, newID(), eventstore.NoStream, ev("A", 1))
	if err != nil {
		t.Fatal(err)
	}
	n, err := conn.Conn().WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Payload != fmt.Sprint(res.Position) {
		t.Fatalf("payload %q, want %d", n.Payload, res.Position)
	}
}

// TestReadAllOrdersTransactionIDsAsNumbers: transaction ids with different
// numbers of digits sort apart as numbers and as text ("100" < "7"); the
// subscriber order is by number.
func TestReadAllOrdersTransactionIDsAsNumbers(t *testing.T) {
	s, b := setup(t)
	ctx := context.Background()
	var want []int64
	for _, txid := range []string{"100", "99", "7"} {
		var pos int64
		id := newID()
		err := b.pool.QueryRow(ctx, `INSERT INTO events (tenant_id, stream_id, stream_version, type, data, metadata,
			recorded_at, transaction_id, prev_hash, hash)
			VALUES ($1, $1, 1, 'A', '{}', '{}', now(), $2::text::xid8, '\x00', '\x00') RETURNING position`, id, txid).Scan(&pos)
		if err != nil {
			t.Fatal(err)
		}
		want = append([]int64{pos}, want...)
	}
	var got []int64
	for cur := (eventstore.Cursor{}); ; {
		page, err := s.ReadAll(ctx, cur, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		cur = eventstore.Cursor{TransactionID: page[0].TransactionID, Position: page[0].Position}
		got = append(got, page[0].Position)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("read positions %v, want %v (transactions 7, 99, 100)", got, want)
	}
}
