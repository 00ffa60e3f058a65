package projections

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/domain"
)

// foldStream is a synthetic, already decoded event stream of customers
// whose teams change the way the bench's workload changes them: each
// customer is registered, then gets assignments, lead changes,
// replacements, unassignments and profile updates.
func foldStream(customers, perCustomer int) []decoded {
	r := rand.New(rand.NewPCG(1, 2))
	users := make([]string, 300)
	for i := range users {
		users[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []decoded
	pos := int64(0)
	for c := range customers {
		id := fmt.Sprintf("10000000-0000-4000-8000-%012d", c)
		var team []string
		for v := range perCustomer {
			var e domain.Event
			switch k := r.IntN(10); {
			case v == 0:
				e = domain.CustomerRegistered{CustomerID: id, Profile: domain.Profile{FirstName: "A", Email: "a@example.com"}}
			case k < 4 || len(team) == 0:
				u := users[r.IntN(len(users))]
				e = domain.UserAssigned{CustomerID: id, UserID: u, Lead: len(team) == 0}
				team = append(team, u)
			case k < 5:
				e = domain.TeamLeadChanged{CustomerID: id, UserID: team[r.IntN(len(team))]}
			case k < 6:
				i := r.IntN(len(team))
				w := users[r.IntN(len(users))]
				e = domain.TeamMemberReplaced{CustomerID: id, UserID: team[i], WithUserID: w}
				team[i] = w
			case k < 8:
				i := r.IntN(len(team))
				e = domain.UserUnassigned{CustomerID: id, UserID: team[i]}
				team = append(team[:i], team[i+1:]...)
			default:
				e = domain.CustomerUpdated{CustomerID: id, Profile: domain.Profile{FirstName: "B", Email: "b@example.com"}}
			}
			pos++
			out = append(out, decoded{env: &envelope{Position: pos, StreamID: id, StreamVersion: int64(v + 1),
				Type: e.EventType(), RecordedAt: at.Add(time.Duration(pos) * time.Millisecond)}, event: e})
		}
	}
	return out
}

// BenchmarkFold measures the rebuild's fold of customer streams (the
// decoded events into every customer's state, team and stretches), without
// decoding or rows: go test ./projections -run '^$' -bench Fold -benchmem
func BenchmarkFold(b *testing.B) {
	stream := foldStream(1000, 20)
	b.ReportAllocs()
	for b.Loop() {
		customers := map[string]*foldCustomer{}
		for _, d := range stream {
			fc := customers[d.env.StreamID]
			if fc == nil {
				fc = &foldCustomer{state: customerState{ID: d.env.StreamID}, stretches: newStretchFold()}
				customers[d.env.StreamID] = fc
			}
			fc.advance(d)
			fc.stretches.takeClosed()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(stream)), "ns/event")
}

// BenchmarkNotificationRows measures making the notifications' rows of
// decoded team events and encoding them for COPY, as a rebuild does:
// go test ./projections -run '^$' -bench NotificationRows -benchmem
func BenchmarkNotificationRows(b *testing.B) {
	var team []decoded
	for _, d := range foldStream(1000, 20) {
		if domain.IsTeamEvent(d.event) {
			d.env.TenantID = "20000000-0000-4000-8000-000000000001"
			team = append(team, d)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		out := &rowList{}
		for _, d := range team {
			notificationRows(out, d.env, d.event)
		}
		if _, err := copyData(out.rows["notifications"]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(team)), "ns/event")
}

// followUpStream is a customer's stream: registered, assigned, then n
// follow-ups scheduled and done, decoded.
func followUpStream(id, tenant, user string, n int) []decoded {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []decoded
	add := func(e domain.Event) {
		v := int64(len(out) + 1)
		out = append(out, decoded{env: &envelope{Position: v, TenantID: tenant, StreamID: id, StreamVersion: v, Type: e.EventType(),
			RecordedAt: at.Add(time.Duration(v) * time.Second)}, event: e})
	}
	add(domain.CustomerRegistered{CustomerID: id, Profile: domain.Profile{FirstName: "A", Email: "a@example.com"}})
	add(domain.UserAssigned{CustomerID: id, UserID: user, Lead: true})
	for i := range n {
		f := fmt.Sprintf("30000000-0000-4000-8000-%012d", i)
		add(domain.FollowUpScheduled{FollowUpID: f, CustomerID: id, DueAt: at, Note: "call back", To: domain.FollowUpToTeam, CreatedBy: user})
		add(domain.FollowUpCompleted{FollowUpID: f, CustomerID: id})
	}
	return out
}

// BenchmarkFoldManyFollowUps measures folding a customer's stream of 2,000
// follow-ups from its start, as a rebuild or a cache miss does:
// go test ./projections -run '^$' -bench FoldManyFollowUps -benchmem
func BenchmarkFoldManyFollowUps(b *testing.B) {
	const id, tenant = "10000000-0000-4000-8000-000000000001", "20000000-0000-4000-8000-000000000001"
	stream := followUpStream(id, tenant, "00000000-0000-4000-8000-000000000001", 2000)
	b.ReportAllocs()
	for b.Loop() {
		fc := &foldCustomer{state: customerState{ID: id, TenantID: tenant}, stretches: newStretchFold()}
		for _, d := range stream {
			fc.advance(d)
		}
	}
}

// BenchmarkLiveFoldManyFollowUps measures a live batch's rows and diff
// (writeFolds, without the database) for one team event of a cached
// customer that has 2,000 done follow-ups:
// go test ./projections -run '^$' -bench LiveFoldManyFollowUps -benchmem
func BenchmarkLiveFoldManyFollowUps(b *testing.B) {
	const id, tenant = "10000000-0000-4000-8000-000000000001", "20000000-0000-4000-8000-000000000001"
	users := []string{"00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"}
	stream := followUpStream(id, tenant, users[0], 2000)
	fc := &foldCustomer{state: customerState{ID: id, TenantID: tenant}, stretches: newStretchFold()}
	for _, d := range stream {
		fc.advance(d)
	}
	e := newEngine(all(), nil, nil)
	cache := &foldCache{customers: map[string]*foldEntry{}}
	if err := e.writeFolds(&stmt{}, []foldedCustomer{{fold: fc, before: foldRows{}}}, cache); err != nil {
		b.Fatal(err)
	}
	last := stream[len(stream)-1].env
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		v := last.StreamVersion + int64(i)
		fc.advance(decoded{env: &envelope{Position: v, TenantID: tenant, StreamID: id, StreamVersion: v, Type: domain.TypeTeamMemberReplaced,
			RecordedAt: last.RecordedAt.Add(time.Duration(i) * time.Second)},
			event: domain.TeamMemberReplaced{CustomerID: id, UserID: users[(i+1)%2], WithUserID: users[i%2], Lead: true}})
		if err := e.writeFolds(&stmt{}, []foldedCustomer{{fold: fc, before: cache.customers[id].rows}}, cache); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLiveFoldLargeTeam measures a live batch's rows and diff
// (writeFolds, without the database) for one lead change of a cached
// customer with a team of twelve, the size the bench's customers reach:
// go test ./projections -run '^$' -bench LiveFoldLargeTeam -benchmem
func BenchmarkLiveFoldLargeTeam(b *testing.B) {
	const id, tenant = "10000000-0000-4000-8000-000000000001", "20000000-0000-4000-8000-000000000001"
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fc := &foldCustomer{state: customerState{ID: id, TenantID: tenant}, stretches: newStretchFold()}
	v := int64(0)
	advance := func(e domain.Event) {
		v++
		fc.advance(decoded{env: &envelope{Position: v, TenantID: tenant, StreamID: id, StreamVersion: v, Type: e.EventType(),
			RecordedAt: at.Add(time.Duration(v) * time.Second)}, event: e})
	}
	advance(domain.CustomerRegistered{CustomerID: id, Profile: domain.Profile{FirstName: "A", Email: "a@example.com"}})
	var users []string
	for i := range 12 {
		users = append(users, fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
		advance(domain.UserAssigned{CustomerID: id, UserID: users[i], Lead: i == 0})
	}
	e := newEngine(all(), nil, nil)
	cache := &foldCache{customers: map[string]*foldEntry{}}
	if err := e.writeFolds(&stmt{}, []foldedCustomer{{fold: fc, before: foldRows{}}}, cache); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		advance(domain.TeamLeadChanged{CustomerID: id, UserID: users[i%len(users)], PreviousUserID: users[(i-1)%len(users)]})
		if err := e.writeFolds(&stmt{}, []foldedCustomer{{fold: fc, before: cache.customers[id].rows}}, cache); err != nil {
			b.Fatal(err)
		}
	}
}
