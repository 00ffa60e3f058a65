package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/assignment-ledger/ledger/eventstore"
)

// expectAppend appends events to stream in one transaction that expects the
// stream at h and checks the given preconditions first.
func expectAppend(ctx context.Context, s *eventstore.Store, tenant, stream string, h eventstore.Head, checks map[string]bool, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	var cs []eventstore.Check
	for name, ok := range checks {
		// Parameters numbered from $1 in each check.
		cs = append(cs, eventstore.Check{Name: name, Query: `SELECT $1::bool AND $2::int = 7`, Args: []any{ok, 7}})
	}
	return s.AppendExpected(ctx, eventstore.AppendRequest{
		TenantID: tenant,
		Streams:  []eventstore.StreamWrite{{StreamID: stream, StreamType: "test", ExpectedVersion: h.Version, Events: events}},
		Metadata: eventstore.Metadata{Actor: eventstore.Actor{Name: "Ann"}},
	}, h, cs...)
}

func TestExpectAppendsFromAKnownHead(t *testing.T) {
	s, b := setup(t)
	ctx := context.Background()
	stream := newID()
	first, err := appendTo(t, s, b.tenant, stream, eventstore.NoStream, ev("A", 1))
	if err != nil {
		t.Fatal(err)
	}
	h := eventstore.Head{Version: first.Versions[stream], LastHash: first.Hashes[stream]}
	res, err := expectAppend(ctx, s, b.tenant, stream, h, map[string]bool{"fine": true}, ev("B", 2), ev("C", 3))
	if err != nil {
		t.Fatal(err)
	}
	if res.Versions[stream] != 3 || res.Position <= first.Position {
		t.Fatalf("result %+v after %+v", res, first)
	}
	// The head moved: a normal append continues the chain from it.
	if _, err := appendTo(t, s, b.tenant, stream, 3, ev("D", 4)); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 4 {
		t.Fatalf("verify: %+v", rep)
	}
}

func TestExpectRefusesAStaleHead(t *testing.T) {
	s, b := setup(t)
	ctx := context.Background()
	stream := newID()
	first, err := appendTo(t, s, b.tenant, stream, eventstore.NoStream, ev("A", 1))
	if err != nil {
		t.Fatal(err)
	}
	stale := eventstore.Head{Version: first.Versions[stream], LastHash: first.Hashes[stream]}
	if _, err := appendTo(t, s, b.tenant, stream, 1, ev("B", 2)); err != nil {
		t.Fatal(err)
	}
	_, err = expectAppend(ctx, s, b.tenant, stream, stale, nil, ev("C", 3))
	if !errors.Is(err, eventstore.ErrVersionMismatch) {
		t.Fatalf("stale head: got %v, want a version mismatch", err)
	}
	// Another tenant cannot append through a head it guessed right.
	cur := eventstore.Head{Version: 2}
	if _, err := expectAppend(ctx, s, newID(), stream, cur, nil, ev("X", 0)); !errors.Is(err, eventstore.ErrVersionMismatch) {
		t.Fatalf("foreign tenant: got %v, want a version mismatch", err)
	}
	if n := countEvents(t, b.pool); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
}

func TestFailedCheckWritesNothing(t *testing.T) {
	s, b := setup(t)
	ctx := context.Background()
	stream := newID()
	first, err := appendTo(t, s, b.tenant, stream, eventstore.NoStream, ev("A", 1))
	if err != nil {
		t.Fatal(err)
	}
	h := eventstore.Head{Version: 1, LastHash: first.Hashes[stream]}
	_, err = expectAppend(ctx, s, b.tenant, stream, h, map[string]bool{"users_active": false}, ev("B", 2))
	var cf *eventstore.CheckFailedError
	if !errors.As(err, &cf) || cf.Name != "users_active" || !errors.Is(err, eventstore.ErrCheckFailed) {
		t.Fatalf("got %v, want the failed check users_active", err)
	}
	if n := countEvents(t, b.pool); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
	// The head did not move either.
	if _, err := expectAppend(ctx, s, b.tenant, stream, h, nil, ev("B", 2)); err != nil {
		t.Fatal(err)
	}
}

func TestCheckRejectsANonIdentifierName(t *testing.T) {
	s, b := setup(t)
	stream := newID()
	first, err := appendTo(t, s, b.tenant, stream, eventstore.NoStream, ev("A", 1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.AppendExpected(context.Background(), eventstore.AppendRequest{
		TenantID: b.tenant,
		Streams:  []eventstore.StreamWrite{{StreamID: stream, StreamType: "test", ExpectedVersion: 1, Events: []eventstore.EventData{ev("B", 2)}}},
	}, eventstore.Head{Version: 1, LastHash: first.Hashes[stream]}, eventstore.Check{Name: "x'); DROP TABLE events; --", Query: "SELECT true"})
	if err == nil {
		t.Fatal("a check name with a quote in it was accepted")
	}
	if n := countEvents(t, b.pool); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

func TestAppendExpectedRefusesWhatNeedsATransaction(t *testing.T) {
	s, b := setup(t)
	stream := newID()
	_, err := s.AppendExpected(context.Background(), eventstore.AppendRequest{
		TenantID:    b.tenant,
		Streams:     []eventstore.StreamWrite{{StreamID: stream, StreamType: "test", ExpectedVersion: 0, Events: []eventstore.EventData{ev("A", 1)}}},
		Idempotency: &eventstore.Idempotency{Key: "k", RequestHash: []byte{1}},
	}, eventstore.Head{})
	if err == nil {
		t.Fatal("an idempotency key was accepted")
	}
}

// Many appenders expecting the same head: exactly one wins, the others see a
// version mismatch, and the chain stays whole.
func TestExpectRacesHaveOneWinner(t *testing.T) {
	s, b := setup(t)
	ctx := context.Background()
	stream := newID()
	first, err := appendTo(t, s, b.tenant, stream, eventstore.NoStream, ev("A", 1))
	if err != nil {
		t.Fatal(err)
	}
	h := eventstore.Head{Version: 1, LastHash: first.Hashes[stream]}
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = expectAppend(ctx, s, b.tenant, stream, h, map[string]bool{"fine": true}, ev("B", i))
		}()
	}
	close(start)
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, eventstore.ErrVersionMismatch):
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d winners, want 1", wins)
	}
	if n := countEvents(t, b.pool); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
	rep, err := s.Verify(ctx, nil)
	if err != nil || rep.Events != 2 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// Local subscribers hear of every commit at once, whichever way it was
// appended.
func TestOnAppendHearsEveryCommit(t *testing.T) {
	s, b := setup(t)
	var mu sync.Mutex
	var heard []int64
	remove := s.OnAppend(func(p int64) {
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, p)
	})
	stream := newID()
	first, err := appendTo(t, s, b.tenant, stream, eventstore.NoStream, ev("A", 1))
	if err != nil {
		t.Fatal(err)
	}
	second, err := expectAppend(context.Background(), s, b.tenant, stream, eventstore.Head{Version: 1, LastHash: first.Hashes[stream]}, nil, ev("B", 2))
	if err != nil {
		t.Fatal(err)
	}
	// A refused append is not announced.
	if _, err := appendTo(t, s, b.tenant, stream, 1, ev("C", 3)); err == nil {
		t.Fatal("a stale expected version was accepted")
	}
	// Once removed, fn hears nothing more.
	remove()
	if _, err := appendTo(t, s, b.tenant, stream, 2, ev("D", 4)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(heard) != 2 || heard[0] != first.Position || heard[1] != second.Position {
		t.Fatalf("heard %v, want [%d %d]", heard, first.Position, second.Position)
	}
}
