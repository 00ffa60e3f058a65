package domain

import (
	"testing"
	"time"
)

func TestCheckCapacityAndMove(t *testing.T) {
	two := 2
	p := Policy{MaxCustomersPerUser: &two}
	empty := Customer{ID: "c"}
	with := func(ids ...string) Customer {
		c := Customer{ID: "c"}
		for _, id := range ids {
			c.Apply(UserAssigned{CustomerID: "c", UserID: id}, time.Time{})
		}
		return c
	}
	loads := Loads{"u": 1}
	if err := p.CheckCapacity(loads, empty, with("u")); err != nil {
		t.Fatal(err)
	}
	loads.Move(empty, with("u"))
	if err := p.CheckCapacity(loads, empty, with("u")); !IsRule(err, CodeUserAtCapacity) {
		t.Fatalf("at the cap: %v", err)
	}
	// Keeping a customer gives nothing; losing one frees a place.
	if err := p.CheckCapacity(loads, with("u"), with("u", "v")); err != nil {
		t.Fatal(err)
	}
	loads.Move(with("u"), with("v"))
	if loads["u"] != 1 || loads["v"] != 1 {
		t.Fatalf("loads %v", loads)
	}
	if err := (Policy{}).CheckCapacity(Loads{"u": 1e6}, empty, with("u")); err != nil {
		t.Fatalf("no cap: %v", err)
	}
}

func TestCapacityErrorsNameTheLastPairs(t *testing.T) {
	one := 1
	p := Policy{MaxCustomersPerUser: &one}
	gained := []Pair{{"c1", "u"}, {"c2", "u"}, {"c3", "v"}, {"c4", "u"}}
	errs := p.CapacityErrors(Loads{"u": 0, "v": 0}, gained, nil)
	if len(errs) != 2 || errs[0].CustomerID != "c2" || errs[1].CustomerID != "c4" || errs[0].Code != CodeUserAtCapacity {
		t.Fatalf("%+v", errs)
	}
	// A loss in the same plan makes room.
	if errs := p.CapacityErrors(Loads{"u": 1}, []Pair{{"c2", "u"}}, []Pair{{"c1", "u"}}); len(errs) != 0 {
		t.Fatalf("%+v", errs)
	}
}
