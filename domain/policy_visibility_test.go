package domain_test

import (
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/domain"
)

// A PolicyChanged stored before members_see existed reads as "all"; a
// ChangePolicy to "assigned" and back changes only that; anything else is
// refused naming the field.
func TestPolicyMembersSeeFold(t *testing.T) {
	var tn domain.Tenant
	tn.Apply(domain.TenantCreated{TenantID: "t1", Name: "T"}, time.Now())
	if tn.Policy.MembersSee != domain.VisibilityAll {
		t.Fatalf("new tenant: %q", tn.Policy.MembersSee)
	}
	tn.Apply(domain.PolicyChanged{Policy: domain.Policy{MembersCanSelfAssign: true}}, time.Now())
	if tn.Policy.MembersSee != domain.VisibilityAll {
		t.Fatalf("legacy PolicyChanged: %q", tn.Policy.MembersSee)
	}
	next := tn.Policy
	next.MembersSee = domain.VisibilityAssigned
	evs, err := domain.ChangePolicy(tn.Policy, next)
	if err != nil || len(evs) != 1 {
		t.Fatalf("to assigned: %v %v", evs, err)
	}
	same := tn.Policy
	same.MembersSee = ""
	if !same.Equal(tn.Policy) {
		t.Fatal("an empty members_see is not read as all")
	}
	bad := tn.Policy
	bad.MembersSee = "everyone"
	var ve *domain.ValidationError
	if _, err := domain.ChangePolicy(tn.Policy, bad); !asValidation(err, &ve) || ve.Field != "members_see" {
		t.Fatalf("bad value: %v", err)
	}
}

func asValidation(err error, target **domain.ValidationError) bool {
	v, ok := err.(*domain.ValidationError)
	if ok {
		*target = v
	}
	return ok
}

// TestPolicySees: under "assigned" a member sees only the customers whose
// team it is on (an erased one never); under "all" every customer; admins,
// auditors and the service itself always.
func TestPolicySees(t *testing.T) {
	served := domain.Customer{ID: "c1", Team: domain.Team{{UserID: "m1"}}}
	other := domain.Customer{ID: "c2", Team: domain.Team{{UserID: "m2"}}}
	erased := served
	erased.Erased = true
	member := domain.Actor{UserID: "m1", Role: domain.RoleMember}
	assigned := domain.Policy{MembersSee: domain.VisibilityAssigned}
	for _, tc := range []struct {
		name string
		p    domain.Policy
		a    domain.Actor
		c    domain.Customer
		want bool
	}{
		{"member, assigned, served", assigned, member, served, true},
		{"member, assigned, not served", assigned, member, other, false},
		{"member, assigned, erased", assigned, member, erased, false},
		{"member, all", domain.Policy{MembersSee: domain.VisibilityAll}, member, other, true},
		{"member, legacy policy", domain.Policy{}, member, other, true},
		{"admin, assigned", assigned, domain.Actor{UserID: "a", Role: domain.RoleAdmin}, other, true},
		{"auditor, assigned", assigned, domain.Actor{UserID: "x", Role: domain.RoleAuditor}, other, true},
		{"scheduler, assigned", assigned, domain.Actor{Name: "scheduler"}, other, true},
	} {
		if got := tc.p.Sees(tc.a, tc.c); got != tc.want {
			t.Errorf("%s: Sees %v, want %v", tc.name, got, tc.want)
		}
	}
}
