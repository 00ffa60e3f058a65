package mail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/smtptest"
	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/mail"
)

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// recorder keeps the outcomes a relay records.
type recorder struct {
	mu       sync.Mutex
	outcomes []mail.Outcome
	fail     int // how many calls to refuse first
}

func (r *recorder) record(_ context.Context, o mail.Outcome) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errors.New("cannot record now")
	}
	r.outcomes = append(r.outcomes, o)
	return nil
}

func (r *recorder) get() []mail.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mail.Outcome(nil), r.outcomes...)
}

var quick = mail.Config{PollInterval: 20 * time.Millisecond, Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxAttempts: 3}

// queue appends one event carrying an invitation e-mail in its outbox, as
// InviteClient does, and returns the outbox row's id.
func queue(t *testing.T, pool *pgxpool.Pool, inv mail.Invitation) string {
	t.Helper()
	payload, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	id, customer := newID(), newID()
	_, err = eventstore.New(pool).Append(context.Background(), eventstore.AppendRequest{
		TenantID: newID(),
		Streams: []eventstore.StreamWrite{{StreamID: customer, StreamType: "customer", ExpectedVersion: eventstore.NoStream,
			Events: []eventstore.EventData{{Type: "Test", SchemaVersion: 1, Data: []byte(`{}`)}}}},
		Outbox: []eventstore.OutboxMessage{{ID: id, CustomerID: customer, Kind: mail.KindInvitation, Payload: payload}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// start runs a relay until the returned stop is called (or the test ends).
func start(t *testing.T, pool *pgxpool.Pool, url string, cfg mail.Config) (stop func()) {
	t.Helper()
	s, err := mail.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	s.Timeout = 10 * time.Second
	r, err := mail.NewRelay(pool, s, "Ledger <ledger@acme.example>", "https://ledger.example", slog.New(slog.DiscardHandler), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("relay: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("relay did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

type outboxState struct {
	Status   string
	Attempts int
	Error    *string
	SentAt   *time.Time
	HasToken bool
}

func state(t *testing.T, pool *pgxpool.Pool, id string) outboxState {
	t.Helper()
	var s outboxState
	err := pool.QueryRow(context.Background(), `SELECT status, attempts, last_error, sent_at, payload ? 'token' FROM outbox WHERE id = $1`, id).
		Scan(&s.Status, &s.Attempts, &s.Error, &s.SentAt, &s.HasToken)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func waitState(t *testing.T, pool *pgxpool.Pool, id, status string) outboxState {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := state(t, pool, id)
		if s.Status == status {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox %s: %+v, want status %s", id, s, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var carla = mail.Invitation{FirstName: "Carla", LastName: "Cliént", Email: "carla@client.example", Token: "tok-123",
	Team: []mail.TeamMember{{Name: "Bob Baker", Email: "bob@acme.example", Lead: true}, {Name: "Alice Adams", Email: "alice@acme.example"}}}

func body(t *testing.T, data []byte) (netmail.Header, string) {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	return m.Header, string(b)
}

func TestRelaySendsTheInvitation(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	srv := smtptest.Start(t)
	id := queue(t, pool, carla)
	start(t, pool, srv.URL(), quick)

	msgs := srv.Wait(t, 1, 15*time.Second)
	m := msgs[0]
	if m.From != "ledger@acme.example" || len(m.To) != 1 || m.To[0] != "carla@client.example" {
		t.Errorf("envelope: from %q to %v", m.From, m.To)
	}
	h, text := body(t, m.Data)
	if m.MessageID != "<"+id+"@acme.example>" {
		t.Errorf("Message-ID %q, want the outbox id's", m.MessageID)
	}
	to, err := netmail.ParseAddress(h.Get("To"))
	if err != nil || to.Address != "carla@client.example" || to.Name != "Carla Cliént" {
		t.Errorf("To: %q (%v)", h.Get("To"), err)
	}
	for _, want := range []string{"Hello Carla,", "https://ledger.example/invitations/tok-123", "Bob Baker <bob@acme.example> (team lead)", "Alice Adams <alice@acme.example>"} {
		if !strings.Contains(text, want) {
			t.Errorf("body lacks %q:\n%s", want, text)
		}
	}
	s := waitState(t, pool, id, "sent")
	if s.Attempts != 1 || s.SentAt == nil || s.HasToken {
		t.Errorf("after sending: %+v (want one attempt, sent_at, the token erased)", s)
	}
}

func TestRelayRetriesAServerThatRefusedFirst(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	srv := smtptest.Start(t)
	var refused atomic.Int32
	srv.SetHook(func(st smtptest.Stage, _ *smtptest.Message) error {
		if st == smtptest.StageData && refused.CompareAndSwap(0, 1) {
			return smtptest.Temporary
		}
		return nil
	})
	id := queue(t, pool, carla)
	rec := &recorder{}
	cfg := quick
	cfg.Record = rec.record
	start(t, pool, srv.URL(), cfg)
	s := waitState(t, pool, id, "sent")
	if s.Attempts != 2 || s.Error != nil {
		t.Errorf("after a refusal and a success: %+v", s)
	}
	if o := rec.get(); len(o) != 1 || o[0].MessageID != id || o[0].Status != "sent" || o[0].Kind != mail.KindInvitation || o[0].CustomerID == "" {
		t.Errorf("recorded %+v, want one sent", o)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(srv.Messages()); n != 1 || refused.Load() != 1 {
		t.Errorf("%d message(s) accepted after %d refusal(s), want 1 after 1", n, refused.Load())
	}
}

func TestRelayGivesUpOnADownServerAfterItsAttempts(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "smtp://" + ln.Addr().String()
	ln.Close()
	id := queue(t, pool, carla)
	cfg := quick
	cfg.Backoff, cfg.MaxBackoff = 300*time.Millisecond, 300*time.Millisecond
	rec := &recorder{}
	cfg.Record = rec.record
	start(t, pool, down, cfg)

	// Queued between attempts, with the reason.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := state(t, pool, id)
		if s.Attempts >= 1 && s.Status == "queued" {
			if s.Error == nil || !strings.Contains(*s.Error, "dial") {
				t.Errorf("between attempts: %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no attempt recorded: %+v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	s := waitState(t, pool, id, "failed")
	if s.Attempts != 3 || s.SentAt != nil || s.HasToken {
		t.Errorf("after the last attempt: %+v", s)
	}
	if o := rec.get(); len(o) != 1 || o[0].Status != "failed" {
		t.Errorf("recorded %+v, want one failed", o)
	}
}

func TestRelayFailsAPermanentRefusalAtOnce(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	srv := smtptest.Start(t)
	srv.SetHook(func(st smtptest.Stage, _ *smtptest.Message) error {
		if st == smtptest.StageRcpt {
			return smtptest.Permanent
		}
		return nil
	})
	id := queue(t, pool, carla)
	start(t, pool, srv.URL(), quick)
	s := waitState(t, pool, id, "failed")
	if s.Attempts != 1 || s.Error == nil || !strings.Contains(*s.Error, "550") {
		t.Errorf("after a 550: %+v", s)
	}
}

// A relay stopped mid-delivery and another started afterwards send the
// invitation once: before the end of DATA the server has nothing, and the
// row stays queued for the next relay.
func TestRelayStoppedMidDeliverySendsOnce(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	srv := smtptest.Start(t)
	held := make(chan struct{})
	release := make(chan struct{})
	var first atomic.Bool
	first.Store(true)
	srv.SetHook(func(st smtptest.Stage, _ *smtptest.Message) error {
		if st == smtptest.StageRcpt && first.CompareAndSwap(true, false) {
			close(held)
			<-release
			return smtptest.Temporary
		}
		return nil
	})
	id := queue(t, pool, carla)
	stopA := start(t, pool, srv.URL(), quick)
	<-held
	stopA()
	if s := state(t, pool, id); s.Status != "queued" || s.Attempts != 0 {
		t.Errorf("after the stop: %+v", s)
	}
	close(release)
	start(t, pool, srv.URL(), quick)
	waitState(t, pool, id, "sent")
	time.Sleep(200 * time.Millisecond)
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages delivered, want 1", n)
	}
}

// The at-least-once boundary: a relay that dies after the server took the
// message but before it recorded so sends it again, with the same
// Message-ID and bytes, so the mailbox still holds one e-mail.
func TestRelayRepeatAfterDeathIsTheSameEmail(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	srv := smtptest.Start(t)
	held := make(chan struct{})
	release := make(chan struct{})
	var first atomic.Bool
	first.Store(true)
	srv.SetHook(func(st smtptest.Stage, _ *smtptest.Message) error {
		if st == smtptest.StageData && first.CompareAndSwap(true, false) {
			close(held)
			<-release // the relay dies meanwhile; the server keeps the message
		}
		return nil
	})
	id := queue(t, pool, carla)
	stopA := start(t, pool, srv.URL(), quick)
	<-held
	stopA()
	close(release)
	srv.Wait(t, 1, 5*time.Second)
	start(t, pool, srv.URL(), quick)
	s := waitState(t, pool, id, "sent")
	msgs := srv.Wait(t, 2, 5*time.Second)
	ids := map[string]bool{}
	for _, m := range msgs {
		ids[m.MessageID] = true
	}
	if len(msgs) != 2 || len(ids) != 1 || !bytes.Equal(msgs[0].Data, msgs[1].Data) {
		t.Errorf("%d deliveries with %d Message-ID(s), identical %v; want the same e-mail twice", len(msgs), len(ids), bytes.Equal(msgs[0].Data, msgs[1].Data))
	}
	if s.Attempts != 1 {
		t.Errorf("attempts %d: the abandoned one is not counted", s.Attempts)
	}
}

// An outcome that cannot be recorded leaves the row queued, like a failure
// to mark the row: the e-mail goes again (the same one) and the outcome is
// recorded then.
func TestRelayRetriesWhenTheOutcomeCannotBeRecorded(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	srv := smtptest.Start(t)
	id := queue(t, pool, carla)
	rec := &recorder{fail: 1}
	cfg := quick
	cfg.Record = rec.record
	start(t, pool, srv.URL(), cfg)
	s := waitState(t, pool, id, "sent")
	msgs := srv.Messages()
	if o := rec.get(); len(o) != 1 || s.Attempts != 1 || len(msgs) != 2 || msgs[0].MessageID != msgs[1].MessageID {
		t.Errorf("recorded %+v, row %+v, %d deliveries", o, s, len(msgs))
	}
}
