package domain_test

import (
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

func view(events ...domain.Event) domain.View {
	var v domain.View
	for _, e := range events {
		v.Apply(e)
	}
	return v
}

func TestSavedViewRules(t *testing.T) {
	member := domain.Actor{UserID: "m1", Role: domain.RoleMember}
	other := domain.Actor{UserID: "m2", Role: domain.RoleMember}
	admin := domain.Actor{UserID: "a1", Role: domain.RoleAdmin}
	auditor := domain.Actor{UserID: "au", Role: domain.RoleAuditor}

	_, err := domain.CreateView(member, "v1", "Mine", domain.ViewFilter{}, true)
	wantErr(t, err, "forbidden")
	_, err = domain.CreateView(auditor, "v1", "Mine", domain.ViewFilter{}, false)
	wantErr(t, err, "forbidden")
	_, err = domain.CreateView(member, "v1", "  ", domain.ViewFilter{}, false)
	wantErr(t, err, "validation")
	_, err = domain.CreateView(member, "v1", "x", domain.ViewFilter{Q: "a\x1b"}, false)
	wantErr(t, err, "validation")

	evs, err := domain.CreateView(member, "v1", " Mine ", domain.ViewFilter{Status: "active"}, false)
	wantErr(t, err, "")
	mine := view(evs...)
	if mine.Name != "Mine" || mine.OwnerID != "m1" || !mine.VisibleTo(member) || mine.VisibleTo(other) || mine.VisibleTo(admin) {
		t.Fatalf("private view: %+v", mine)
	}
	_, err = mine.Change(other, nil, nil, nil)
	wantErr(t, err, "forbidden")
	yes := true
	_, err = mine.Change(member, nil, nil, &yes)
	wantErr(t, err, "forbidden")
	name := "Mine"
	if evs, err := mine.Change(member, &name, nil, nil); err != nil || evs != nil {
		t.Fatalf("the same view again: %v %v", evs, err)
	}

	evs, err = domain.CreateView(admin, "v2", "All", domain.ViewFilter{}, true)
	wantErr(t, err, "")
	shared := view(evs...)
	if !shared.VisibleTo(other) {
		t.Fatal("a shared view is everyone's")
	}
	_, err = shared.Delete(member)
	wantErr(t, err, "forbidden")
	evs, err = shared.Delete(domain.Actor{UserID: "a2", Role: domain.RoleAdmin})
	wantErr(t, err, "")
	if gone := view(append([]domain.Event{domain.ViewCreated{ViewID: "v2", OwnerID: "a1", Shared: true}}, evs...)...); gone.VisibleTo(admin) {
		t.Fatal("a deleted view is visible")
	}
}
