package domain

import (
	"encoding/json"
	"testing"
	"time"
)

func TestRuleChooseAndReplay(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	later := now.Add(time.Hour)
	users := map[string]User{
		"a": {ID: "a", Role: RoleMember, Status: UserStatusActive},
		"b": {ID: "b", Role: RoleMember, Status: UserStatusActive, AwayUntil: &later},
		"c": {ID: "c", Role: RoleMember, Status: UserStatusActive},
	}
	body := RuleBody{Name: "r", Assign: RuleAssign{UserIDs: []string{"a", "b", "c"}, Strategy: StrategyRoundRobin}}
	var r Rule
	r.Apply(AssignmentRuleCreated{RuleID: "r", RuleBody: body})
	var events []Event
	var got []string
	for i := range 4 {
		ev := r.Choose(Customer{ID: string(rune('0' + i))}, users, Loads{}, Policy{}, now)
		r.Apply(ev)
		events = append(events, ev)
		got = append(got, ev.UserID)
	}
	if want := "a c a c"; join(got) != want {
		t.Fatalf("round robin skipping the away b: %q", join(got))
	}
	// Replaying the stream gives the same place.
	var again Rule
	again.Apply(AssignmentRuleCreated{RuleID: "r", RuleBody: body})
	for _, e := range events {
		raw, _ := json.Marshal(e)
		d, err := DecodeEvent(TypeAssignmentRuleApplied, SchemaVersion, raw)
		if err != nil {
			t.Fatal(err)
		}
		again.Apply(d)
	}
	if again.Turn != r.Turn || again.Version != r.Version {
		t.Fatalf("replay: %+v vs %+v", again, r)
	}
	// Nobody eligible: no user, the turn stays.
	one := 1
	ev := r.Choose(Customer{ID: "x"}, users, Loads{"a": 1, "c": 1}, Policy{MaxCustomersPerUser: &one}, now)
	if ev.UserID != "" || ev.NextTurn != r.Turn {
		t.Fatalf("at capacity: %+v", ev)
	}
	// Weighted 3:1 interleaves, least_loaded takes the fewest.
	w := Rule{RuleBody: RuleBody{Assign: RuleAssign{UserIDs: []string{"a", "c"}, Strategy: StrategyWeighted, Weights: map[string]int{"a": 3, "c": 1}}}}
	got = nil
	for range 4 {
		ev := w.Choose(Customer{}, users, Loads{}, Policy{}, now)
		w.Apply(ev)
		got = append(got, ev.UserID)
	}
	if join(got) != "a a c a" {
		t.Fatalf("weighted: %q", join(got))
	}
	ll := Rule{RuleBody: RuleBody{Assign: RuleAssign{UserIDs: []string{"a", "c"}, Strategy: StrategyLeastLoaded}}}
	if ev := ll.Choose(Customer{}, users, Loads{"a": 5, "c": 2}, Policy{}, now); ev.UserID != "c" {
		t.Fatalf("least loaded: %+v", ev)
	}
}

func TestRuleMatch(t *testing.T) {
	c := Customer{Profile: Profile{Email: "x@Acme.Example", Title: "Chief VIP", ExternalID: "EU-7"}, Groups: []string{"g"}}
	for _, m := range []RuleMatch{{}, {EmailDomain: Domains{"acme.example"}}, {Group: "g"}, {TitleContains: "vip"}, {ExternalIDPrefix: "EU-"}} {
		if !m.Matches(c) {
			t.Errorf("%+v does not match", m)
		}
	}
	for _, m := range []RuleMatch{{EmailDomain: Domains{"other.example"}}, {Group: "h"}, {TitleContains: "ceo"}, {ExternalIDPrefix: "US-"}} {
		if m.Matches(c) {
			t.Errorf("%+v matches", m)
		}
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}
