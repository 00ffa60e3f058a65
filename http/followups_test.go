package http_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/projections"
)

// Follow-ups through HTTP; their due time through the scheduler with a
// clock moved forward (no sleeping).

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// lastPosition is the newest event's position, for X-Min-Position.
func (b *testBundle) lastPosition(t *testing.T) string {
	t.Helper()
	var pos int64
	if err := b.pool.QueryRow(context.Background(), `SELECT coalesce(max(position), 0) FROM events`).Scan(&pos); err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(pos, 10)
}

// settle waits until every read model has applied every event so far.
func (b *testBundle) settle(t *testing.T) {
	t.Helper()
	pos, _ := strconv.ParseInt(b.lastPosition(t), 10, 64)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.runner.WaitFor(ctx, pos); err != nil {
		t.Fatal(err)
	}
}

// scheduler is a due-time scheduler whose clock reads at.
func (b *testBundle) scheduler(at time.Time) *commands.FollowUpScheduler {
	return b.cmd.NewFollowUpScheduler(projections.NewQueries(b.pool, nil), commands.WithClock(func() time.Time { return at }))
}

func (b *testBundle) fire(t *testing.T, at time.Time) int {
	t.Helper()
	b.settle(t)
	n, err := b.scheduler(at).RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	return n
}

// dueNotifications counts the user's follow_up_due notifications of the
// customer.
func dueNotifications(t *testing.T, c *client, customerID string) int {
	t.Helper()
	var ans struct {
		Items []struct {
			Type       string `json:"type"`
			CustomerID string `json:"customer_id"`
		} `json:"items"`
	}
	c.must(200, "GET", "/v1/users/me/notifications?limit=500", nil).decode(t, &ans)
	n := 0
	for _, it := range ans.Items {
		if it.Type == "follow_up_due" && it.CustomerID == customerID {
			n++
		}
	}
	return n
}

func (b *testBundle) customerWithTeam(t *testing.T, first string, team ...string) string {
	t.Helper()
	id := b.createCustomer(t, first)
	b.admin.must(200, "PUT", "/v1/customers/"+id+"/assignees", map[string]any{"user_ids": team})
	return id
}

// customerHistory is the customer's history as an admin reads it.
func (b *testBundle) customerHistory(t *testing.T, customerID string) []historyItem {
	t.Helper()
	var h struct {
		Items []historyItem `json:"items"`
	}
	b.admin.must(200, "GET", "/v1/customers/"+customerID+"/history", nil).decode(t, &h)
	return h.Items
}

type historyItem struct {
	Type  string            `json:"type"`
	Actor map[string]string `json:"actor"`
	Data  map[string]any    `json:"data"`
}

// wantReminded checks that the customer's last event is a FollowUpDue
// naming recipients, in order.
func (b *testBundle) wantReminded(t *testing.T, customerID string, recipients ...string) {
	t.Helper()
	h := b.customerHistory(t, customerID)
	if last := h[len(h)-1]; last.Type != "FollowUpDue" || fmt.Sprint(last.Data["recipients"]) != fmt.Sprint(recipients) {
		t.Fatalf("last event: %+v, want FollowUpDue reminding %v", last, recipients)
	}
}

func scheduleFU(t *testing.T, c *client, customerID string, due time.Time, to string) map[string]any {
	t.Helper()
	return c.must(201, "POST", "/v1/customers/"+customerID+"/follow-ups",
		map[string]any{"due_at": rfc(due), "note": "Call back\nabout the renewal", "to": to}).json(t)
}

func TestFollowUpsCRUDThroughHTTP(t *testing.T) {
	b := setup(t)
	alice := b.createUser(t, "Alice", "member")
	bob := b.createUser(t, "Bob", "member")
	cust := b.customerWithTeam(t, "Carla", alice.userID)
	due := time.Now().Add(time.Hour).Truncate(time.Second)

	f := scheduleFU(t, alice, cust, due, "team")
	if f["status"] != "open" || f["to"] != "team" || f["customer_id"] != cust || f["created_by"] != alice.userID ||
		f["note"] != "Call back\nabout the renewal" || f["due_at"] != rfc(due) {
		t.Fatalf("scheduled: %v", f)
	}
	id := f["id"].(string)
	// Not on the team: 403; an auditor: 403.
	if r := bob.do("POST", "/v1/customers/"+cust+"/follow-ups", map[string]any{"due_at": rfc(due)}); r.status != 403 {
		t.Fatalf("bob schedules: %d %s", r.status, r.body)
	}
	// Bad input: 400 naming the field; nothing written.
	before := b.countEvents(t)
	for body, field := range map[string]string{
		`{"note":"x"}`:          "due_at",
		`{"due_at":"tomorrow"}`: "due_at",
		`{"due_at":"2030-01-01T00:00:00Z","to":"me"}`:         "to",
		`{"due_at":"2030-01-01T00:00:00Z","note":"a\u0007b"}`: "note",
		`{"due_at":"2030-01-01T00:00:00Z","x":1}`:             "x",
	} {
		r := alice.do("POST", "/v1/customers/"+cust+"/follow-ups", body)
		if r.status != 400 || !strings.Contains(string(r.body), field) {
			t.Errorf("%s: %d %s, want 400 naming %s", body, r.status, r.body, field)
		}
	}
	if b.countEvents(t) != before {
		t.Fatal("a refused follow-up wrote events")
	}
	// Unknown customer 404, malformed 400.
	alice.must(404, "POST", "/v1/customers/"+newUUID(t)+"/follow-ups", map[string]any{"due_at": rfc(due)})
	alice.must(400, "POST", "/v1/customers/nope/follow-ups", map[string]any{"due_at": rfc(due)})

	// The customer's list, the user's list by due.
	var list struct {
		Items []map[string]any `json:"items"`
	}
	pos := hdr{"X-Min-Position": b.lastPosition(t)}
	alice.must(200, "GET", "/v1/customers/"+cust+"/follow-ups", nil, pos).decode(t, &list)
	if len(list.Items) != 1 || list.Items[0]["id"] != id {
		t.Fatalf("customer follow-ups: %v", list.Items)
	}
	for due, want := range map[string]int{"": 1, "overdue": 0, "upcoming": 0 + btoi(!sameUTCDay(time.Now(), time.Now().Add(time.Hour))), "today": btoi(sameUTCDay(time.Now(), time.Now().Add(time.Hour)))} {
		alice.must(200, "GET", "/v1/users/me/follow-ups?due="+due, nil, pos).decode(t, &list)
		if len(list.Items) != want {
			t.Errorf("alice's follow-ups due=%q: %d, want %d", due, len(list.Items), want)
		}
	}
	bob.must(200, "GET", "/v1/users/me/follow-ups", nil, pos).decode(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("bob, not on the team, has %v", list.Items)
	}
	bob.must(403, "GET", "/v1/users/"+alice.userID+"/follow-ups", nil)
	alice.must(400, "GET", "/v1/users/me/follow-ups?due=soon", nil)

	// Snooze: until required and in the future; complete; snoozing done is 409.
	alice.must(400, "POST", "/v1/follow-ups/"+id+"/snooze", map[string]any{})
	alice.must(400, "POST", "/v1/follow-ups/"+id+"/snooze", map[string]any{"until": rfc(time.Now().Add(-time.Hour))})
	s := alice.must(200, "POST", "/v1/follow-ups/"+id+"/snooze", map[string]any{"until": rfc(due.Add(time.Hour))}).json(t)
	if s["due_at"] != rfc(due.Add(time.Hour)) {
		t.Fatalf("snoozed: %v", s)
	}
	bob.must(403, "POST", "/v1/follow-ups/"+id+"/complete", nil)
	c := alice.must(200, "POST", "/v1/follow-ups/"+id+"/complete", nil).json(t)
	if c["status"] != "done" {
		t.Fatalf("completed: %v", c)
	}
	if r := alice.do("POST", "/v1/follow-ups/"+id+"/snooze", map[string]any{"until": rfc(due.Add(2 * time.Hour))}); r.status != 409 || r.code() != "follow_up_done" {
		t.Fatalf("snooze done: %d %s", r.status, r.body)
	}
	// The customer's ETag is not staled by follow-ups.
	cv := b.admin.must(200, "GET", "/v1/customers/"+cust, nil).json(t)
	b.admin.must(200, "POST", "/v1/customers/"+cust+"/block", nil, hdr{"If-Match": `"` + strconv.Itoa(int(cv["version"].(float64))-3) + `"`})

	// Cancel: 204, then unknown.
	alice.must(204, "DELETE", "/v1/follow-ups/"+id, nil)
	alice.must(404, "POST", "/v1/follow-ups/"+id+"/complete", nil)
	alice.must(404, "DELETE", "/v1/follow-ups/"+newUUID(t), nil)
	alice.must(400, "DELETE", "/v1/follow-ups/nope", nil)
	alice.must(200, "GET", "/v1/customers/"+cust+"/follow-ups", nil, hdr{"X-Min-Position": b.lastPosition(t)}).decode(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("cancelled follow-up listed: %v", list.Items)
	}
	// Idempotent schedule: the retry answers the first follow-up.
	key := hdr{"Idempotency-Key": "fu-1"}
	first := alice.must(201, "POST", "/v1/customers/"+cust+"/follow-ups", map[string]any{"due_at": rfc(due)}, key).json(t)
	again := alice.must(201, "POST", "/v1/customers/"+cust+"/follow-ups", map[string]any{"due_at": rfc(due)}, key).json(t)
	if first["id"] != again["id"] {
		t.Fatalf("replay: %v then %v", first, again)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sameUTCDay(a, b time.Time) bool {
	a, b = a.UTC(), b.UTC()
	return a.Year() == b.Year() && a.YearDay() == b.YearDay()
}

func newUUID(t *testing.T) string {
	t.Helper()
	return uuid.NewString()
}

// The team at the due time is reminded: a customer reassigned before it
// reminds its new team, never the old one.
func TestFollowUpDueRemindsTheTeamAfterReassignment(t *testing.T) {
	b := setup(t)
	alice := b.createUser(t, "Alice", "member")
	bob := b.createUser(t, "Bob", "member")
	cara := b.createUser(t, "Cara", "member")
	cust := b.customerWithTeam(t, "Dora", alice.userID)
	due := time.Now().Add(time.Hour)
	scheduleFU(t, alice, cust, due, "team")
	b.admin.must(200, "PUT", "/v1/customers/"+cust+"/assignees", map[string]any{"user_ids": []string{bob.userID, cara.userID}})

	if n := b.fire(t, due.Add(-time.Minute)); n != 0 {
		t.Fatalf("fired %d before the due time", n)
	}
	if n := b.fire(t, due.Add(time.Minute)); n != 1 {
		t.Fatalf("fired %d at the due time, want 1", n)
	}
	if n := b.fire(t, due.Add(time.Hour)); n != 0 {
		t.Fatalf("fired %d again", n)
	}
	for _, c := range []*client{bob, cara} {
		if n := dueNotifications(t, c, cust); n != 1 {
			t.Errorf("new team member told %d times, want 1", n)
		}
	}
	if n := dueNotifications(t, alice, cust); n != 0 {
		t.Errorf("the former member was told %d times", n)
	}
	// The history records whom it reminded.
	b.wantReminded(t, cust, bob.userID, cara.userID)
	// Open still (it reminded; it is not done), and no longer overdue-pending.
	var list struct {
		Items []map[string]any `json:"items"`
	}
	bob.must(200, "GET", "/v1/users/me/follow-ups?due=overdue", nil).decode(t, &list)
	if len(list.Items) != 0 { // the real clock has not reached the due time
		t.Fatalf("overdue by the real clock: %v", list.Items)
	}
}

func TestFollowUpDueToTheLeadOnly(t *testing.T) {
	b := setup(t)
	b.setPolicy(t, nil, false, true, true)
	alice := b.createUser(t, "Alice", "member")
	bob := b.createUser(t, "Bob", "member")
	cust := b.customerWithTeam(t, "Elsa", alice.userID, bob.userID)
	b.admin.must(200, "PUT", "/v1/customers/"+cust+"/lead", map[string]any{"user_id": bob.userID})
	due := time.Now().Add(time.Hour)
	scheduleFU(t, alice, cust, due, "lead")
	pos := hdr{"X-Min-Position": b.lastPosition(t)}
	if items := myFollowUps(t, alice, pos); len(items) != 0 {
		t.Fatalf("a follow-up to the lead is listed for a member: %v", items)
	}
	if items := myFollowUps(t, bob, pos); len(items) != 1 {
		t.Fatalf("the lead's follow-ups: %v", items)
	}
	if n := b.fire(t, due.Add(time.Minute)); n != 1 {
		t.Fatalf("fired %d", n)
	}
	if dueNotifications(t, bob, cust) != 1 || dueNotifications(t, alice, cust) != 0 {
		t.Fatal("only the lead must be told, once")
	}
}

// TestFollowUpToTheLeadOfALeadlessTeam: a follow-up to the lead of a team
// that has none is listed for, and reminds, the whole team rather than
// nobody (found by hostile testing: it fell due to no one).
func TestFollowUpToTheLeadOfALeadlessTeam(t *testing.T) {
	b := setup(t)
	alice := b.createUser(t, "Alice", "member")
	bob := b.createUser(t, "Bob", "member")
	cust := b.customerWithTeam(t, "Nola", alice.userID, bob.userID)
	due := time.Now().Add(time.Hour)
	scheduleFU(t, alice, cust, due, "lead")
	pos := hdr{"X-Min-Position": b.lastPosition(t)}
	for _, u := range []*client{alice, bob} {
		if items := myFollowUps(t, u, pos); len(items) != 1 {
			t.Fatalf("a lead-less team's member's follow-ups: %v", items)
		}
	}
	if n := b.fire(t, due.Add(time.Minute)); n != 1 {
		t.Fatalf("fired %d", n)
	}
	if dueNotifications(t, alice, cust) != 1 || dueNotifications(t, bob, cust) != 1 {
		t.Fatal("every member of a lead-less team must be told, once")
	}
}

// myFollowUps is the first page of the caller's open follow-ups.
func myFollowUps(t *testing.T, c *client, pos hdr) []map[string]any {
	t.Helper()
	var list struct {
		Items []map[string]any `json:"items"`
	}
	c.must(200, "GET", "/v1/users/me/follow-ups", nil, pos).decode(t, &list)
	return list.Items
}

func TestFollowUpSnoozedFallsDueAtItsNewTime(t *testing.T) {
	b := setup(t)
	alice := b.createUser(t, "Alice", "member")
	cust := b.customerWithTeam(t, "Fay", alice.userID)
	due := time.Now().Add(time.Hour)
	id := scheduleFU(t, alice, cust, due, "team")["id"].(string)
	alice.must(200, "POST", "/v1/follow-ups/"+id+"/snooze", map[string]any{"until": rfc(due.Add(2 * time.Hour))})
	if n := b.fire(t, due.Add(time.Hour)); n != 0 {
		t.Fatalf("a snoozed follow-up fell due at its old time (%d)", n)
	}
	if n := b.fire(t, due.Add(3*time.Hour)); n != 1 {
		t.Fatalf("fired %d at the new time", n)
	}
	// Snoozed again after it fell due: it falls due once more.
	alice.must(200, "POST", "/v1/follow-ups/"+id+"/snooze", map[string]any{"until": rfc(due.Add(5 * time.Hour))})
	if n := b.fire(t, due.Add(6*time.Hour)); n != 1 {
		t.Fatalf("fired %d after the second snooze", n)
	}
	if n := dueNotifications(t, alice, cust); n != 2 {
		t.Fatalf("told %d times, want 2 (once per due time)", n)
	}
}

func TestFollowUpCompletedBeforeDueRemindsNoOne(t *testing.T) {
	b := setup(t)
	alice := b.createUser(t, "Alice", "member")
	cust := b.customerWithTeam(t, "Gil", alice.userID)
	due := time.Now().Add(time.Hour)
	id := scheduleFU(t, alice, cust, due, "team")["id"].(string)
	id2 := scheduleFU(t, alice, cust, due, "team")["id"].(string)
	alice.must(200, "POST", "/v1/follow-ups/"+id+"/complete", nil)
	alice.must(204, "DELETE", "/v1/follow-ups/"+id2, nil)
	if n := b.fire(t, due.Add(time.Hour)); n != 0 {
		t.Fatalf("fired %d", n)
	}
	if n := dueNotifications(t, alice, cust); n != 0 {
		t.Fatalf("told %d times", n)
	}
}

func TestFollowUpsCancelledByErasure(t *testing.T) {
	b := setup(t)
	alice := b.createUser(t, "Alice", "member")
	cust := b.customerWithTeam(t, "Hal", alice.userID)
	due := time.Now().Add(time.Hour)
	fu := scheduleFU(t, alice, cust, due, "team")
	snoozed := scheduleFU(t, alice, cust, due, "team")["id"].(string)
	key := hdr{"Idempotency-Key": "snooze-before-erasure"}
	snooze := map[string]any{"until": rfc(due.Add(time.Hour))}
	b.admin.must(200, "POST", "/v1/follow-ups/"+snoozed+"/snooze", snooze, key)
	gone := scheduleFU(t, alice, cust, due, "team")["id"].(string)
	b.admin.must(204, "DELETE", "/v1/follow-ups/"+gone, nil)
	b.admin.must(204, "DELETE", "/v1/customers/"+cust, nil)
	// A follow-up of an erased customer is gone with it: 410 for every
	// command naming it, one cancelled before the erasure included, and the
	// keyed retry of an answer that named the customer is 409 (found by
	// hostile testing: 404 once the read model had dropped its rows).
	b.settle(t)
	for _, id := range []string{fu["id"].(string), snoozed, gone} {
		b.admin.must(410, "POST", "/v1/follow-ups/"+id+"/complete", nil)
		b.admin.must(410, "POST", "/v1/follow-ups/"+id+"/snooze", snooze)
		b.admin.must(410, "DELETE", "/v1/follow-ups/"+id, nil)
	}
	if r := b.admin.do("POST", "/v1/follow-ups/"+snoozed+"/snooze", snooze, key); r.status != 409 || r.code() != "replay_unavailable" {
		t.Fatalf("keyed retry after erasure: %d %s", r.status, r.body)
	}
	b.admin.must(404, "POST", "/v1/follow-ups/0193f7c2-0000-7000-8000-000000000009/complete", nil)
	if n := b.fire(t, due.Add(time.Hour)); n != 0 {
		t.Fatalf("an erased customer's follow-up fell due (%d)", n)
	}
	if n := dueNotifications(t, alice, cust); n != 0 {
		t.Fatalf("told %d times", n)
	}
	alice.must(410, "GET", "/v1/customers/"+cust+"/follow-ups", nil)
	alice.must(410, "POST", "/v1/customers/"+cust+"/follow-ups", map[string]any{"due_at": rfc(due)})
	var list struct {
		Items []map[string]any `json:"items"`
	}
	alice.must(200, "GET", "/v1/users/me/follow-ups", nil).decode(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("listed: %v", list.Items)
	}
	// The history keeps the cancellation, and the follow-up's ID, due time,
	// recipients and author; the note is shredded with the key.
	h := b.customerHistory(t, cust)
	var cancelled, sealedOpen bool
	for _, it := range h {
		if it.Type == "FollowUpCancelled" && it.Data["reason"] == "erased" {
			cancelled = true
		}
		if it.Type == "FollowUpScheduled" && it.Data["note"] == nil && it.Data["erased"] == true {
			sealedOpen = sealedOpen || it.Data["follow_up_id"] == fu["id"] && it.Data["to"] == "team" &&
				it.Data["created_by"] == alice.userID && it.Data["due_at"] == fu["due_at"]
		}
	}
	if !cancelled || !sealedOpen {
		t.Fatalf("history after erasure: %+v", h)
	}
	var n, notes int
	if err := b.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM events WHERE data::text LIKE '%renewal%'),
		(SELECT count(*) FROM follow_ups WHERE note <> '' OR pending OR status <> 'cancelled')`).Scan(&n, &notes); err != nil {
		t.Fatal(err)
	}
	if n != 0 || notes != 0 {
		t.Fatalf("the note is in clear in %d events; %d follow-up rows are not tombstones", n, notes)
	}
}

// Two processes (two Commands, each with its own cache and scheduler)
// racing over the same due follow-ups write each FollowUpDue once, and each
// recipient is told once.
func TestFollowUpDueExactlyOnceWithTwoRunners(t *testing.T) {
	b := setup(t)
	alice := b.createUser(t, "Alice", "member")
	bob := b.createUser(t, "Bob", "member")
	due := time.Now().Add(time.Hour)
	var customers []string
	for i := range 4 {
		cust := b.customerWithTeam(t, fmt.Sprintf("Ivy%d", i), alice.userID, bob.userID)
		customers = append(customers, cust)
		for range 3 {
			scheduleFU(t, alice, cust, due, "team")
		}
	}
	b.settle(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	other := commands.New(eventstore.New(b.pool), testdb.Keyring(t), log)
	runners := []*commands.FollowUpScheduler{
		b.scheduler(due.Add(time.Minute)),
		other.NewFollowUpScheduler(projections.NewQueries(b.pool, nil), commands.WithClock(func() time.Time { return due.Add(time.Minute) })),
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for i := range 6 {
		wg.Go(func() {
			n, err := runners[i%2].RunOnce(context.Background())
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != 12 {
		t.Fatalf("the runners wrote %d FollowUpDue, want 12", total)
	}
	b.settle(t)
	var events int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE type = 'FollowUpDue'`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 12 {
		t.Fatalf("%d FollowUpDue events, want 12", events)
	}
	for _, cust := range customers {
		for _, c := range []*client{alice, bob} {
			if n := dueNotifications(t, c, cust); n != 3 {
				t.Fatalf("told %d times of the customer's 3 follow-ups", n)
			}
		}
	}
}

// The service is down across the due time: the scheduler finds the
// follow-up on start and it is delivered once, late; a restart does not
// deliver it again.
func TestFollowUpDueDeliveredOnceLateAfterDowntime(t *testing.T) {
	b := setup(t)
	alice := b.createUser(t, "Alice", "member")
	cust := b.customerWithTeam(t, "Jo", alice.userID)
	due := time.Now().Add(time.Hour)
	scheduleFU(t, alice, cust, due, "team")
	b.settle(t)
	// Down from before the due time until hours after it; then the
	// scheduler starts (twice: a restart).
	later := due.Add(5 * time.Hour)
	for run := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = b.scheduler(later).Run(ctx)
		}()
		deadline := time.Now().Add(20 * time.Second)
		for dueNotifications(t, alice, cust) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		b.settle(t)
		cancel()
		<-done
		if n := dueNotifications(t, alice, cust); n != 1 {
			t.Fatalf("run %d: told %d times, want 1", run, n)
		}
	}
}

// A reminder recorded late goes to the team of the moment the follow-up
// was due, not to the one the customer was handed to meanwhile (found by
// hostile testing: after downtime, today's team was reminded, and the
// event named it).
func TestFollowUpDueLateRemindsTheTeamAtTheDueTime(t *testing.T) {
	b := setup(t)
	alice := b.createUser(t, "Alice", "member")
	bob := b.createUser(t, "Bob", "member")
	cust := b.customerWithTeam(t, "Jo", alice.userID)
	// Due a minute ago (the scheduler was down), then handed to Bob.
	due := time.Now().Add(-time.Minute)
	scheduleFU(t, alice, cust, due, "team")
	b.admin.must(200, "PUT", "/v1/customers/"+cust+"/assignees", map[string]any{"user_ids": []string{bob.userID}})
	if n := b.fire(t, time.Now()); n != 1 {
		t.Fatalf("fired %d, want 1", n)
	}
	if a, bb := dueNotifications(t, alice, cust), dueNotifications(t, bob, cust); a != 1 || bb != 0 {
		t.Fatalf("Alice told %d times, Bob %d; want 1 and 0", a, bb)
	}
	b.wantReminded(t, cust, alice.userID)
}

// The follow_ups and views read models and the follow-up notifications
// rebuilt from the events equal the live ones, row for row.
func TestFollowUpsAndViewsRebuildEqualsLive(t *testing.T) {
	b := setup(t)
	alice := b.createUser(t, "Alice", "member")
	bob := b.createUser(t, "Bob", "member")
	due := time.Now().Add(time.Hour)
	c1 := b.customerWithTeam(t, "Kim", alice.userID)
	c2 := b.customerWithTeam(t, "Lou", alice.userID, bob.userID)
	c3 := b.customerWithTeam(t, "Max", bob.userID)
	f1 := scheduleFU(t, alice, c1, due, "team")["id"].(string)
	scheduleFU(t, alice, c2, due, "lead")
	f3 := scheduleFU(t, bob, c2, due.Add(time.Hour), "team")["id"].(string)
	scheduleFU(t, bob, c3, due, "team")
	alice.must(200, "POST", "/v1/follow-ups/"+f1+"/complete", nil)
	bob.must(200, "POST", "/v1/follow-ups/"+f3+"/snooze", map[string]any{"until": rfc(due.Add(2 * time.Hour))})
	b.admin.must(204, "DELETE", "/v1/customers/"+c3, nil)
	b.fire(t, due.Add(time.Minute))
	alice.must(201, "POST", "/v1/views", map[string]any{"name": "Mine", "filter": map[string]any{"assigned_user": "me"}})
	v := b.admin.must(201, "POST", "/v1/views", map[string]any{"name": "All", "shared": true}).json(t)["id"].(string)
	b.admin.must(200, "PATCH", "/v1/views/"+v, map[string]any{"name": "Everyone"})
	b.settle(t)

	snap := func() map[string][]string {
		out := map[string][]string{}
		for _, tbl := range []string{"follow_ups", "notifications", "views"} {
			rows, err := b.pool.Query(context.Background(), `SELECT t::text FROM `+tbl+` t ORDER BY 1`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				out[tbl] = append(out[tbl], s)
			}
			rows.Close()
		}
		return out
	}
	live := snap()
	// Three live follow-ups and the erased customer's tombstone.
	if len(live["follow_ups"]) != 4 || len(live["views"]) != 3 {
		t.Fatalf("live: %v", live)
	}
	if err := b.runner.Rebuild(context.Background(), "all", nil); err != nil {
		t.Fatal(err)
	}
	rebuilt := snap()
	// The notifications alone too: read and decoded without the folds.
	if err := b.runner.Rebuild(context.Background(), projections.Notifications, nil); err != nil {
		t.Fatal(err)
	}
	alone := snap()
	for tbl, rows := range live {
		if fmt.Sprint(rows) != fmt.Sprint(rebuilt[tbl]) {
			t.Errorf("%s: live %v, rebuilt %v", tbl, rows, rebuilt[tbl])
		}
		if fmt.Sprint(rows) != fmt.Sprint(alone[tbl]) {
			t.Errorf("%s: live %v, after rebuilding the notifications alone %v", tbl, rows, alone[tbl])
		}
	}
}

// TestFollowUpListsArePaginated: both follow-up lists page with limit and
// cursor, as every list does (found by hostile testing: they ignored both,
// a user's silently stopping at 500); a bad limit or cursor is a 400.
func TestFollowUpListsArePaginated(t *testing.T) {
	b := setup(t)
	alice := b.createUser(t, "Alice", "member")
	cust := b.customerWithTeam(t, "Paged", alice.userID)
	due := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	var want []string
	var last string
	for i := range 5 {
		f := scheduleFU(t, b.admin, cust, due.Add(time.Duration(5-i)*time.Hour), "team")
		want = append([]string{f["id"].(string)}, want...)
		last = fmt.Sprint(int64(f["position"].(float64)))
	}
	for _, path := range []string{"/v1/customers/" + cust + "/follow-ups", "/v1/users/" + alice.userID + "/follow-ups"} {
		var got []string
		pages := 0
		for cursor := ""; ; {
			var pg struct {
				Items      []struct{ ID string }
				NextCursor string `json:"next_cursor"`
			}
			b.admin.must(200, "GET", path+"?limit=2&cursor="+cursor, nil, hdr{"X-Min-Position": last}).decode(t, &pg)
			pages++
			for _, it := range pg.Items {
				got = append(got, it.ID)
			}
			if pg.NextCursor == "" {
				break
			}
			cursor = pg.NextCursor
		}
		if !slices.Equal(got, want) || pages != 3 {
			t.Errorf("%s in pages of 2: %v over %d pages, want %v over 3", path, got, pages, want)
		}
		for _, bad := range []string{"?limit=-5", "?limit=501", "?cursor=nope"} {
			if r := b.admin.do("GET", path+bad, nil); r.status != 400 {
				t.Errorf("%s%s: %d %s", path, bad, r.status, r.body)
			}
		}
	}
}
