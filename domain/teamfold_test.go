package domain_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/domain"
)

// Team.Apply is the one fold of team events: it stamps the member an event
// puts on the team with the event's time and position, never changes the
// team it is given, and passes any other event through.
func TestTeamApply(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var team domain.Team
	steps := []struct {
		e    domain.Event
		want domain.Team
	}{
		{domain.UserAssigned{CustomerID: "c1", UserID: "a", Lead: true},
			domain.Team{{UserID: "a", Lead: true, AssignedAt: at(1), Seq: 11}}},
		{domain.UserAssigned{CustomerID: "c1", UserID: "b"},
			domain.Team{{UserID: "a", Lead: true, AssignedAt: at(1), Seq: 11}, {UserID: "b", AssignedAt: at(2), Seq: 12}}},
		{domain.CustomerUpdated{CustomerID: "c1"},
			domain.Team{{UserID: "a", Lead: true, AssignedAt: at(1), Seq: 11}, {UserID: "b", AssignedAt: at(2), Seq: 12}}},
		{domain.TeamLeadChanged{CustomerID: "c1", UserID: "b", PreviousUserID: "a"},
			domain.Team{{UserID: "a", AssignedAt: at(1), Seq: 11}, {UserID: "b", Lead: true, AssignedAt: at(2), Seq: 12}}},
		// Replacing hands the place over, lead flag included, and moves it
		// to the end; a replacement that is already on the team leaves its
		// old place.
		{domain.TeamMemberReplaced{CustomerID: "c1", UserID: "b", WithUserID: "a", Lead: true},
			domain.Team{{UserID: "a", Lead: true, AssignedAt: at(5), Seq: 15}}},
		{domain.UserAssigned{CustomerID: "c1", UserID: "c", Lead: true},
			domain.Team{{UserID: "a", AssignedAt: at(5), Seq: 15}, {UserID: "c", Lead: true, AssignedAt: at(6), Seq: 16}}},
		{domain.UserUnassigned{CustomerID: "c1", UserID: "a"},
			domain.Team{{UserID: "c", Lead: true, AssignedAt: at(6), Seq: 16}}},
	}
	for i, s := range steps {
		before := slices.Clone(team)
		next := team.Apply(s.e, at(i+1), int64(i+11))
		if !reflect.DeepEqual(next, s.want) {
			t.Fatalf("step %d (%T): team %+v, want %+v", i, s.e, next, s.want)
		}
		if !reflect.DeepEqual(team, before) {
			t.Fatalf("step %d (%T) changed the team it was given: %+v, was %+v", i, s.e, team, before)
		}
		if domain.IsTeamEvent(s.e) == (len(next) > 0 && len(team) > 0 && &next[0] == &team[0]) {
			t.Fatalf("step %d (%T): IsTeamEvent %v but the team was shared", i, s.e, domain.IsTeamEvent(s.e))
		}
		team = next
	}
	events := make([]domain.Event, len(steps))
	for i, s := range steps {
		events[i] = s.e
	}
	got := domain.TeamOf(events)
	if len(got) != 1 || got[0].UserID != "c" || !got[0].Lead {
		t.Fatalf("TeamOf = %+v", got)
	}
	if m, ok := got.Member("c"); !ok || !m.Lead {
		t.Fatalf("Member(c) = %+v, %v", m, ok)
	}
	if _, ok := got.Member("a"); ok {
		t.Fatal("Member(a) found after unassignment")
	}
}
