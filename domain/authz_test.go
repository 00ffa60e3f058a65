package domain_test

import (
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

func TestAuthorizeAssignment(t *testing.T) {
	admin := domain.Actor{UserID: "a", Role: domain.RoleAdmin}
	member := domain.Actor{UserID: "m", Role: domain.RoleMember}
	open := domain.DefaultPolicy()
	closed := domain.Policy{MembersCanSelfAssign: false}
	for _, tc := range []struct {
		name   string
		actor  domain.Actor
		pol    domain.Policy
		target string
		want   string
	}{
		{"admin assigns anyone", admin, closed, "x", ""},
		{"member assigns self", member, open, "m", ""},
		{"member assigns other", member, open, "x", "forbidden"},
		{"member self when policy forbids", member, closed, "m", "forbidden"},
		{"unknown role", domain.Actor{UserID: "m", Role: "owner"}, open, "m", "forbidden"},
		{"anonymous member", domain.Actor{Role: domain.RoleMember}, open, "", "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, domain.AuthorizeAssignment(tc.actor, tc.pol, tc.target), tc.want)
		})
	}
	wantErr(t, domain.RequireAdmin(admin), "")
	wantErr(t, domain.RequireAdmin(member), "forbidden")
}
