package domain_test

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/domain"
)

var (
	fuAdmin  = domain.Actor{UserID: "admin", Role: domain.RoleAdmin}
	fuAlice  = domain.Actor{UserID: "alice", Role: domain.RoleMember}
	fuBob    = domain.Actor{UserID: "bob", Role: domain.RoleMember}
	fuAuditr = domain.Actor{UserID: "aud", Role: domain.RoleAuditor}
)

// applied applies events to c (one minute after t0).
func applied(c domain.Customer, events ...domain.Event) domain.Customer {
	for _, e := range events {
		c.Apply(e, t0.Add(time.Minute))
	}
	return c
}

func mustEvents(t *testing.T) func([]domain.Event, error) []domain.Event {
	return func(evs []domain.Event, err error) []domain.Event {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
}

func TestScheduleFollowUpAuthorizesAndValidates(t *testing.T) {
	c := withTeam("", "alice")
	due := t0.Add(time.Hour)
	for _, a := range []domain.Actor{fuAdmin, fuAlice} {
		if _, err := c.ScheduleFollowUp(a, "f1", due, "call", ""); err != nil {
			t.Fatalf("%s: %v", a.UserID, err)
		}
	}
	for _, a := range []domain.Actor{fuBob, fuAuditr} {
		_, err := c.ScheduleFollowUp(a, "f1", due, "call", "team")
		wantErr(t, err, "forbidden")
	}
	for field, try := range map[string]func() error{
		"due_at": func() error { _, err := c.ScheduleFollowUp(fuAlice, "f1", time.Time{}, "", ""); return err },
		"to":     func() error { _, err := c.ScheduleFollowUp(fuAlice, "f1", due, "", "everyone"); return err },
		"note":   func() error { _, err := c.ScheduleFollowUp(fuAlice, "f1", due, "a\x1bb", ""); return err },
	} {
		var ve *domain.ValidationError
		if err := try(); !errors.As(err, &ve) || ve.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	evs := mustEvents(t)(c.ScheduleFollowUp(fuAlice, "f1", due, "line one\n\tline two", ""))
	s := evs[0].(domain.FollowUpScheduled)
	if s.To != domain.FollowUpToTeam || s.Note != "line one\n\tline two" || s.CreatedBy != "alice" || !s.DueAt.Equal(due) {
		t.Fatalf("%+v", s)
	}
}

func TestFollowUpFallsDueToTheTeamAtTheDueTime(t *testing.T) {
	c := withTeam("", "alice")
	due := t0.Add(time.Hour)
	c = applied(c, mustEvents(t)(c.ScheduleFollowUp(fuAlice, "f1", due, "", "team"))...)
	// Reassigned before the due time: the new team is reminded.
	c = applied(c, domain.UserAssigned{CustomerID: "c1", UserID: "bob"}, domain.UserUnassigned{CustomerID: "c1", UserID: "alice"})
	if evs := c.FollowUpFallsDue("f1", due.Add(-time.Second)); evs != nil {
		t.Fatalf("before due: %v", evs)
	}
	evs := c.FollowUpFallsDue("f1", due)
	if len(evs) != 1 || !slices.Equal(evs[0].(domain.FollowUpDue).Recipients, []string{"bob"}) {
		t.Fatalf("due: %v", evs)
	}
	before := c
	c = applied(c, evs...)
	if evs := c.FollowUpFallsDue("f1", due.Add(time.Hour)); evs != nil {
		t.Fatalf("fell due twice: %v", evs)
	}
	// Copies never see each other's follow-ups change.
	if before.FollowUps["f1"].Fired || !c.FollowUps["f1"].Fired {
		t.Fatal("a copy of the customer saw another's change")
	}
	// Follow-up events do not stale an ETag.
	if !c.MatchesVersion(before.Version) || c.Version != before.Version+1 {
		t.Fatal("a follow-up event changed the customer's If-Match version")
	}
}

// The team reminded is the one of the moment the follow-up was due, even
// when the reminder is recorded late and the team changed meanwhile (found
// by hostile testing: a backlog after downtime reminded today's team).
func TestFollowUpRecordedLateRemindsTheTeamAtTheDueTime(t *testing.T) {
	c := withTeam("carol", "carol")
	due := t0.Add(time.Hour)
	at := func(d time.Duration, c domain.Customer, evs ...domain.Event) domain.Customer {
		for _, e := range evs {
			c.Apply(e, due.Add(d))
		}
		return c
	}
	c = at(-time.Hour, c, mustEvents(t)(c.ScheduleFollowUp(fuAdmin, "team", due, "", "team"))...)
	c = at(-time.Hour, c, mustEvents(t)(c.ScheduleFollowUp(fuAdmin, "lead", due, "", "lead"))...)
	c = at(-time.Hour, c, mustEvents(t)(c.ScheduleFollowUp(fuAdmin, "later", due.Add(time.Hour), "", "team"))...)
	dueTeam := c
	// After the due time, before the reminder: carol handed over to dave.
	c = at(5*time.Second, c, domain.UserAssigned{CustomerID: c.ID, UserID: "dave"},
		domain.TeamLeadChanged{CustomerID: c.ID, UserID: "dave"}, domain.UserUnassigned{CustomerID: c.ID, UserID: "carol"})
	if dueTeam.FollowUps["team"].DueTeamKept {
		t.Fatal("a copy of the customer saw another's kept team")
	}
	for id, want := range map[string][]string{"team": {"carol"}, "lead": {"carol"}} {
		evs := c.FollowUpFallsDue(id, due.Add(time.Minute))
		if len(evs) != 1 || !slices.Equal(evs[0].(domain.FollowUpDue).Recipients, want) {
			t.Fatalf("%s: %v, want %v", id, evs, want)
		}
	}
	// One not due when the team changed goes to the team of its own time.
	if evs := c.FollowUpFallsDue("later", due.Add(time.Hour)); !slices.Equal(evs[0].(domain.FollowUpDue).Recipients, []string{"dave"}) {
		t.Fatalf("later: %v", evs)
	}
	// Snoozed, a follow-up forgets the team it kept: its new due time has
	// its own.
	c = at(10*time.Second, c, domain.FollowUpSnoozed{FollowUpID: "team", CustomerID: c.ID, Until: due.Add(2 * time.Hour)})
	if evs := c.FollowUpFallsDue("team", due.Add(2*time.Hour)); !slices.Equal(evs[0].(domain.FollowUpDue).Recipients, []string{"dave"}) {
		t.Fatalf("snoozed: %v", evs)
	}
}

func TestFollowUpToTheLead(t *testing.T) {
	c := withTeam("bob", "alice", "bob")
	due := t0.Add(time.Hour)
	c = applied(c, mustEvents(t)(c.ScheduleFollowUp(fuAlice, "f1", due, "", "lead"))...)
	evs := c.FollowUpFallsDue("f1", due)
	if got := evs[0].(domain.FollowUpDue).Recipients; !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("recipients %v", got)
	}
	// No lead: the whole team rather than nobody.
	c2 := withTeam("", "alice", "bob")
	c2 = applied(c2, mustEvents(t)(c2.ScheduleFollowUp(fuAlice, "f1", due, "", "lead"))...)
	if got := c2.FollowUpFallsDue("f1", due)[0].(domain.FollowUpDue).Recipients; !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("recipients without a lead %v", got)
	}
	// No team: due with no recipients (recorded, nobody to tell).
	c3 := applied(c2, domain.UserUnassigned{CustomerID: c2.ID, UserID: "alice"}, domain.UserUnassigned{CustomerID: c2.ID, UserID: "bob"})
	if got := c3.FollowUpFallsDue("f1", due)[0].(domain.FollowUpDue).Recipients; len(got) != 0 {
		t.Fatalf("recipients without a team %v", got)
	}
}

func TestFollowUpSnoozeCompleteCancel(t *testing.T) {
	c := withTeam("", "alice")
	due := t0.Add(time.Hour)
	c = applied(c, mustEvents(t)(c.ScheduleFollowUp(fuAlice, "f1", due, "", ""))...)
	c = applied(c, c.FollowUpFallsDue("f1", due)...)
	_, err := c.SnoozeFollowUp(fuAlice, "f1", t0, t0)
	wantErr(t, err, "validation")
	c = applied(c, mustEvents(t)(c.SnoozeFollowUp(fuAlice, "f1", due.Add(time.Hour), due))...)
	if c.FollowUpFallsDue("f1", due.Add(30*time.Minute)) != nil || c.FollowUpFallsDue("f1", due.Add(time.Hour)) == nil {
		t.Fatal("a snoozed follow-up falls due at its new time, once more")
	}
	_, err = c.CompleteFollowUp(fuBob, "f1")
	wantErr(t, err, "forbidden")
	c = applied(c, mustEvents(t)(c.CompleteFollowUp(fuAlice, "f1"))...)
	if evs := mustEvents(t)(c.CompleteFollowUp(fuAlice, "f1")); evs != nil {
		t.Fatalf("completing twice: %v", evs)
	}
	_, err = c.SnoozeFollowUp(fuAlice, "f1", due.Add(2*time.Hour), due)
	wantErr(t, err, domain.CodeFollowUpDone)
	if c.FollowUpFallsDue("f1", due.Add(5*time.Hour)) != nil {
		t.Fatal("a done follow-up fell due")
	}
	c = applied(c, mustEvents(t)(c.CancelFollowUp(fuAlice, "f1"))...)
	if _, err := c.CompleteFollowUp(fuAlice, "f1"); !errors.Is(err, domain.ErrFollowUpNotFound) {
		t.Fatalf("a cancelled follow-up: %v", err)
	}
	if _, err := c.CancelFollowUp(fuAlice, "nope"); !errors.Is(err, domain.ErrFollowUpNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestErasureCancelsFollowUps(t *testing.T) {
	c := withTeam("", "alice")
	due := t0.Add(time.Hour)
	c = applied(c, mustEvents(t)(c.ScheduleFollowUp(fuAlice, "f2", due, "", ""))...)
	c = applied(c, mustEvents(t)(c.ScheduleFollowUp(fuAlice, "f1", due, "", ""))...)
	// A done follow-up stays done: only open ones are cancelled.
	c = applied(c, mustEvents(t)(c.ScheduleFollowUp(fuAlice, "f0", due, "", ""))...)
	c = applied(c, mustEvents(t)(c.CompleteFollowUp(fuAlice, "f0"))...)
	evs := c.Erase()
	if len(evs) != 3 || evs[0].(domain.FollowUpCancelled).FollowUpID != "f1" || evs[1].(domain.FollowUpCancelled).Reason != "erased" {
		t.Fatalf("erase: %v", evs)
	}
	if _, ok := evs[2].(domain.CustomerErased); !ok {
		t.Fatalf("erase ends with %T", evs[2])
	}
	c = applied(c, evs...)
	if c.FollowUpFallsDue("f1", due) != nil {
		t.Fatal("an erased customer's follow-up fell due")
	}
	// An erased customer's sealed FollowUpScheduled opens with no ID.
	c = applied(c, domain.FollowUpScheduled{CustomerID: "c1"})
	if len(c.FollowUps) != 3 || c.FollowUps["f0"].Status != domain.FollowUpStatusDone {
		t.Fatalf("follow-ups %v", c.FollowUps)
	}
}

// FollowUpsApply never changes the map it is given (copies of a customer
// share it); FollowUpsApplyInPlace, for a fold's own map, ends where it
// does after every event, the ones that change nothing included.
func TestFollowUpsApplyInPlaceMatchesCopying(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	due := at.Add(24 * time.Hour)
	evs := []domain.Event{
		domain.FollowUpScheduled{FollowUpID: "f1", CustomerID: "c1", DueAt: due, Note: "n", To: domain.FollowUpToTeam, CreatedBy: "alice"},
		domain.FollowUpScheduled{FollowUpID: "f2", CustomerID: "c1", DueAt: due, To: domain.FollowUpToLead, CreatedBy: "bob"},
		domain.FollowUpCompleted{FollowUpID: "f1", CustomerID: "c1"},
		domain.FollowUpSnoozed{FollowUpID: "f2", CustomerID: "c1", Until: due.Add(time.Hour)},
		domain.FollowUpDue{FollowUpID: "f2", CustomerID: "c1", DueAt: due.Add(time.Hour)},
		domain.FollowUpCancelled{FollowUpID: "f1", CustomerID: "c1"},
		domain.FollowUpScheduled{CustomerID: "c1"}, // opened as erased
		domain.FollowUpCompleted{FollowUpID: "missing", CustomerID: "c1"},
		domain.CustomerUpdated{CustomerID: "c1"},
		domain.FollowUpScheduled{FollowUpID: "f3", CustomerID: "c1", DueAt: due, CreatedBy: "alice"},
	}
	var copying, inPlace map[string]domain.FollowUp
	for i, e := range evs {
		given := maps.Clone(copying)
		next := domain.FollowUpsApply(copying, e, at)
		if !reflect.DeepEqual(copying, given) {
			t.Fatalf("event %d (%T) changed the map FollowUpsApply was given", i, e)
		}
		copying = next
		inPlace = domain.FollowUpsApplyInPlace(inPlace, e, at)
		if !reflect.DeepEqual(copying, inPlace) {
			t.Fatalf("after event %d (%T):\n copying  %v\n in place %v", i, e, copying, inPlace)
		}
	}
	if f := copying["f2"]; len(copying) != 3 || copying["f1"].Status != domain.FollowUpStatusCancelled || !f.Fired || !f.DueAt.Equal(due.Add(time.Hour)) {
		t.Fatalf("follow-ups: %v", copying)
	}
}

// followUpHistory is a customer's stream: registered, assigned, then n
// follow-ups scheduled, most of them done, some snoozed or cancelled, with
// team changes between them.
func followUpHistory(n int) []domain.Event {
	out := []domain.Event{
		domain.CustomerRegistered{CustomerID: "c1", Profile: domain.Profile{FirstName: "A", Email: "a@example.com"}},
		domain.UserAssigned{CustomerID: "c1", UserID: "alice", Lead: true},
	}
	due := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("f%05d", i)
		out = append(out, domain.FollowUpScheduled{FollowUpID: id, CustomerID: "c1", DueAt: due, To: domain.FollowUpToTeam, CreatedBy: "alice"})
		switch i % 5 {
		case 0, 1, 2:
			out = append(out, domain.FollowUpCompleted{FollowUpID: id, CustomerID: "c1"})
		case 3:
			out = append(out, domain.FollowUpSnoozed{FollowUpID: id, CustomerID: "c1", Until: due.Add(time.Hour)},
				domain.UserAssigned{CustomerID: "c1", UserID: fmt.Sprintf("u%05d", i), Lead: false})
		case 4:
			out = append(out, domain.FollowUpCancelled{FollowUpID: id, CustomerID: "c1"})
		}
	}
	return out
}

// A CustomerFold makes what Customer.Apply makes, event by event; neither
// the customer it started from nor one it returned sees its later changes.
func TestCustomerFoldMatchesApply(t *testing.T) {
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	history := followUpHistory(40)
	half := len(history) / 2
	var start domain.Customer
	for _, e := range history[:half] {
		start.Apply(e, at)
	}
	startFollowUps := maps.Clone(start.FollowUps)

	applied := start
	f := domain.FoldCustomer(start)
	var handed domain.Customer
	var handedFollowUps map[string]domain.FollowUp
	// The second half is recorded past the snoozed follow-ups' due time:
	// its team changes keep their teams (keepDueTeams) in both.
	later := at.Add(3 * time.Hour)
	for i, e := range history[half:] {
		applied.Apply(e, later)
		f.Apply(e, later)
		if got := f.Customer(); !reflect.DeepEqual(got, applied) {
			t.Fatalf("after event %d (%T) the fold has\n %+v\nwant\n %+v", half+i, e, got, applied)
		}
		if i == 3 {
			handed, handedFollowUps = f.Customer(), maps.Clone(f.Customer().FollowUps)
		}
	}
	if !reflect.DeepEqual(start.FollowUps, startFollowUps) {
		t.Error("the fold changed the follow-ups of the customer it started from")
	}
	if !reflect.DeepEqual(handed.FollowUps, handedFollowUps) {
		t.Error("the fold changed the follow-ups of a customer it had returned")
	}
}

// BenchmarkFoldCustomerManyFollowUps measures folding a customer's stream
// of 2,000 follow-ups from its start, as a command reading an uncached
// customer does: go test ./domain -run '^$' -bench FoldCustomerManyFollowUps -benchmem
func BenchmarkFoldCustomerManyFollowUps(b *testing.B) {
	history := followUpHistory(2000)
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		f := domain.FoldCustomer(domain.Customer{TenantID: "t1"})
		for _, e := range history {
			f.Apply(e, at)
		}
		if f.Customer().Version != int64(len(history)) {
			b.Fatal("not every event was applied")
		}
	}
}
