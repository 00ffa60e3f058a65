package domain

import (
	"errors"
	"testing"
	"time"
)

func TestUserChangeAwayAndNotify(t *testing.T) {
	u := User{ID: "u1", Name: "Mia", Role: RoleMember, Status: UserStatusActive}
	back := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	yes := true
	evs, err := u.Change(UserChange{Away: true, AwayUntil: &back, NotifyByEmail: &yes}, 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("%v %v", evs, err)
	}
	ev := evs[0].(UserUpdated)
	if ev.AwayUntil == nil || !ev.AwayUntil.Equal(back) || ev.NotifyByEmail == nil || !*ev.NotifyByEmail || ev.Name != "" {
		t.Fatalf("event %+v", ev)
	}
	u.Apply(ev, back)
	if !u.Away(back.Add(-time.Second)) || u.Away(back) || !u.NotifyByEmail {
		t.Fatalf("user %+v", u)
	}
	// The same again: nothing; null: cleared.
	if evs, err := u.Change(UserChange{Away: true, AwayUntil: &back, NotifyByEmail: &yes}, 1); err != nil || evs != nil {
		t.Fatalf("same again: %v %v", evs, err)
	}
	evs, _ = u.Change(UserChange{Away: true}, 1)
	if len(evs) != 1 || !evs[0].(UserUpdated).AwayCleared {
		t.Fatalf("clear: %v", evs)
	}
	u.Apply(evs[0], back)
	if u.AwayUntil != nil {
		t.Fatal("still away")
	}
}

func TestAuthorizeUserChange(t *testing.T) {
	admin := Actor{UserID: "a", Role: RoleAdmin}
	member := Actor{UserID: "m", Role: RoleMember}
	yes := true
	var forbidden *ForbiddenError
	for _, c := range []struct {
		a      Actor
		target string
		ch     UserChange
		ok     bool
	}{
		{admin, "m", UserChange{Away: true}, true},
		{admin, "m", UserChange{NotifyByEmail: &yes}, false},
		{admin, "a", UserChange{NotifyByEmail: &yes}, true},
		{member, "m", UserChange{Away: true, NotifyByEmail: &yes}, true},
		{member, "x", UserChange{Away: true}, false},
		{member, "m", UserChange{Name: new("M")}, false},
		{Actor{UserID: "x", Role: RoleAuditor}, "x", UserChange{Away: true}, false},
	} {
		err := AuthorizeUserChange(c.a, c.target, c.ch)
		if (err == nil) != c.ok || (err != nil && !errors.As(err, &forbidden)) {
			t.Errorf("%+v on %s %+v: %v", c.a, c.target, c.ch, err)
		}
	}
}
