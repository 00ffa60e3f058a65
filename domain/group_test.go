package domain

import (
	"strings"
	"testing"
	"time"
)

func TestGroupNames(t *testing.T) {
	if _, err := CreateGroup("g", "   "); !isValidation(err, "name") {
		t.Fatalf("blank name: %v", err)
	}
	if _, err := CreateGroup("g", strings.Repeat("é", 101)); !isValidation(err, "name") {
		t.Fatalf("101 characters: %v", err)
	}
	evs, err := CreateGroup("g", "  VIP  ")
	if err != nil || len(evs) != 1 || evs[0].(GroupCreated).Name != "VIP" {
		t.Fatalf("create: %v %v", evs, err)
	}
	if GroupNameKey(" VIP ") != GroupNameKey("vip") {
		t.Fatal("names differing in case must share a key")
	}
	var g Group
	g.Apply(evs[0])
	if evs, err := g.Rename(" VIP"); err != nil || evs != nil {
		t.Fatalf("same name must change nothing: %v %v", evs, err)
	}
	evs, err = g.Rename("Gold")
	if err != nil || len(evs) != 1 {
		t.Fatalf("rename: %v %v", evs, err)
	}
	g.Apply(evs[0])
	d := g.Delete()
	if d[0].(GroupDeleted).Name != "Gold" {
		t.Fatalf("deletion must carry the last name: %+v", d)
	}
	g.Apply(d[0])
	if !g.Deleted || g.Version != 3 {
		t.Fatalf("group after deletion: %+v", g)
	}
}

func TestCustomerGroupMembership(t *testing.T) {
	c := Customer{}
	c.Apply(CustomerRegistered{CustomerID: "c", Profile: Profile{Email: "a@b.c"}}, time.Now())
	for _, g := range []string{"g1", "g2"} {
		for _, e := range c.AddToGroup(g) {
			c.Apply(e, time.Now())
		}
	}
	if evs := c.AddToGroup("g1"); evs != nil {
		t.Fatalf("adding a member again must change nothing: %v", evs)
	}
	copyBefore := c
	for _, e := range c.RemoveFromGroup("g1") {
		c.Apply(e, time.Now())
	}
	if c.InGroup("g1") || !c.InGroup("g2") || !copyBefore.InGroup("g1") {
		t.Fatalf("groups %v (copy %v): removal must not change a copy", c.Groups, copyBefore.Groups)
	}
	if evs := c.RemoveFromGroup("g1"); evs != nil {
		t.Fatalf("removing a non-member must change nothing: %v", evs)
	}
}

func TestDecideCustomerAction(t *testing.T) {
	c := Customer{}
	c.Apply(CustomerRegistered{CustomerID: "c"}, time.Now())
	evs, err := DecideCustomerAction(c, CustomerActionUnblock, "")
	if err != nil || evs != nil {
		t.Fatalf("unblocking an active customer is unchanged: %v %v", evs, err)
	}
	evs, err = DecideCustomerAction(c, CustomerActionBlock, "")
	if err != nil || len(evs) != 1 {
		t.Fatalf("block: %v %v", evs, err)
	}
	c.Apply(evs[0], time.Now())
	if evs, err := DecideCustomerAction(c, CustomerActionBlock, ""); err != nil || evs != nil {
		t.Fatalf("blocking a blocked customer is unchanged, not an error: %v %v", evs, err)
	}
	if evs, err := DecideCustomerAction(c, CustomerActionAddToGroup, "g"); err != nil || len(evs) != 1 {
		t.Fatalf("add to group: %v %v", evs, err)
	}
	if evs, err := DecideCustomerAction(c, CustomerActionRemoveFromGroup, "g"); err != nil || evs != nil {
		t.Fatalf("remove from a group it is not in: %v %v", evs, err)
	}
	if !CustomerActionDelete.Valid() || CustomerAction("erase").Valid() || !CustomerActionAddToGroup.NeedsGroup() {
		t.Fatal("action validity")
	}
}

func isValidation(err error, field string) bool {
	v, ok := err.(*ValidationError)
	return ok && v.Field == field
}
