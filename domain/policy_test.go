package domain_test

import (
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

func TestDefaultPolicy(t *testing.T) {
	want := domain.Policy{MaxAssignees: nil, RequireAssignee: false, RequireLead: false, MembersCanSelfAssign: true}
	if got := domain.DefaultPolicy(); !got.Equal(want) || got.MaxAssignees != nil {
		t.Fatalf("DefaultPolicy() = %+v", got)
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  *int
		want string
	}{
		{"no limit", nil, ""},
		{"one owner", ptr(1), ""},
		{"upper bound", ptr(1000), ""},
		{"zero", ptr(0), "validation"},
		{"negative", ptr(-1), "validation"},
		{"too large", ptr(1001), "validation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, domain.Policy{MaxAssignees: tc.max}.Validate(), tc.want)
		})
	}
}

func TestPolicyEqual(t *testing.T) {
	a := domain.Policy{MaxAssignees: ptr(3)}
	if !a.Equal(domain.Policy{MaxAssignees: ptr(3)}) {
		t.Error("equal limits behind different pointers differ")
	}
	if a.Equal(domain.Policy{MaxAssignees: ptr(2)}) || a.Equal(domain.Policy{}) || (domain.Policy{}).Equal(a) {
		t.Error("different limits are equal")
	}
	if a.Equal(domain.Policy{MaxAssignees: ptr(3), RequireLead: true}) {
		t.Error("different flags are equal")
	}
}

func TestChangePolicy(t *testing.T) {
	cur := domain.DefaultPolicy()
	evs, err := domain.ChangePolicy(cur, domain.DefaultPolicy())
	if err != nil || evs != nil {
		t.Fatalf("unchanged policy: %v %v", evs, err)
	}
	_, err = domain.ChangePolicy(cur, domain.Policy{MaxAssignees: ptr(0)})
	wantErr(t, err, "validation")

	next := domain.Policy{MaxAssignees: ptr(2), RequireLead: true}
	evs, err = domain.ChangePolicy(cur, next)
	wantErr(t, err, "")
	*next.MaxAssignees = 5 // the event must not share the caller's pointer
	var tn domain.Tenant
	tn.Apply(domain.TenantCreated{TenantID: "t1", Name: "Acme"}, t0)
	if !tn.Policy.Equal(domain.DefaultPolicy()) {
		t.Fatalf("new tenant policy = %+v", tn.Policy)
	}
	tn.Apply(evs[0], t0)
	if !tn.Policy.Equal(domain.Policy{MaxAssignees: ptr(2), RequireLead: true}) || tn.Version != 2 {
		t.Fatalf("tenant after change = %+v", tn)
	}
}

func TestCreateTenant(t *testing.T) {
	evs, err := domain.CreateTenant("t1", "  Acme ")
	wantErr(t, err, "")
	if evs[0] != (domain.TenantCreated{TenantID: "t1", Name: "Acme"}) {
		t.Fatalf("got %+v", evs)
	}
	_, err = domain.CreateTenant("t1", " ")
	wantErr(t, err, "validation")
	_, err = domain.CreateTenant("", "Acme")
	wantErr(t, err, "validation")
}
