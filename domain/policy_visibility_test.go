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
