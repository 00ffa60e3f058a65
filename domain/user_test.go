package domain_test

import (
	"strings"
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

func TestNormalizeEmail(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: " Ann@Example.COM ", want: "ann@example.com"},
		{in: "a.b+tag@sub.example.io", want: "a.b+tag@sub.example.io"},
		{in: "", bad: true},
		{in: "   ", bad: true},
		{in: "ann", bad: true},
		{in: "ann@", bad: true},
		{in: "@example.com", bad: true},
		{in: "Ann <ann@example.com>", bad: true},
		{in: "a@b@c", bad: true},
		{in: "ann@example.com, bo@example.com", bad: true},
		{in: strings.Repeat("a", 250) + "@x.io", bad: true},
	} {
		got, err := domain.NormalizeEmail(tc.in)
		if tc.bad {
			wantErr(t, err, "validation")
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCreateUser(t *testing.T) {
	for _, tc := range []struct {
		name              string
		id, tenant, uname string
		email             string
		role              domain.Role
		want              string
	}{
		{"ok", "u1", "t1", " Bo ", " Bo@X.io", domain.RoleAdmin, ""},
		{"member", "u1", "t1", "Bo", "bo@x.io", domain.RoleMember, ""},
		{"name at limit", "u1", "t1", strings.Repeat("é", 200), "bo@x.io", domain.RoleMember, ""},
		{"name too long", "u1", "t1", strings.Repeat("é", 201), "bo@x.io", domain.RoleMember, "validation"},
		{"blank name", "u1", "t1", "  ", "bo@x.io", domain.RoleMember, "validation"},
		{"bad email", "u1", "t1", "Bo", "bo", domain.RoleMember, "validation"},
		{"bad role", "u1", "t1", "Bo", "bo@x.io", "owner", "validation"},
		{"empty role", "u1", "t1", "Bo", "bo@x.io", "", "validation"},
		{"no id", "", "t1", "Bo", "bo@x.io", domain.RoleMember, "validation"},
		{"no tenant", "u1", "", "Bo", "bo@x.io", domain.RoleMember, "validation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := domain.CreateUser(tc.id, tc.tenant, tc.uname, tc.email, tc.role)
			wantErr(t, err, tc.want)
			if err != nil {
				return
			}
			e := evs[0].(domain.UserCreated)
			if e.UserID != tc.id || e.Name != strings.TrimSpace(tc.uname) || e.Email != "bo@x.io" || e.Role != tc.role {
				t.Fatalf("got %+v", e)
			}
		})
	}
}

func TestUserApply(t *testing.T) {
	evs, _ := domain.CreateUser("u1", "t1", "Bo", "bo@x.io", domain.RoleMember)
	u := domain.User{TenantID: "t1"}
	u.Apply(evs[0], t0)
	u.Apply(domain.ApiKeyIssued{UserID: "u1", KeyID: "k1"}, t0.Add(1))
	want := domain.User{ID: "u1", TenantID: "t1", Name: "Bo", Email: "bo@x.io", Role: domain.RoleMember,
		Status: domain.UserStatusActive, CreatedAt: t0, Version: 2}
	if u != want || !u.Active() {
		t.Fatalf("got %+v", u)
	}
	u.Apply(domain.UserDeactivated{UserID: "u1"}, t0.Add(2))
	if u.Status != domain.UserStatusDeactivated || u.Active() || u.Version != 3 {
		t.Fatalf("got %+v", u)
	}
	if (domain.User{}).Active() {
		t.Fatal("zero user is active")
	}
}

func TestUserDeactivate(t *testing.T) {
	u, v, gone := active("u1"), active("u2"), deactivated("u3")
	self := active("u1")
	for _, tc := range []struct {
		name     string
		u        domain.User
		transfer *domain.User
		want     string
		to       string
	}{
		{"plain", u, nil, "", ""},
		{"with transfer", u, &v, "", "u2"},
		{"already deactivated", deactivated("u1"), nil, domain.CodeAlreadyDeactivated, ""},
		{"transfer to deactivated", u, &gone, domain.CodeUserDeactivated, ""},
		{"transfer to self", u, &self, domain.CodeTransferToSelf, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := tc.u.Deactivate(tc.transfer)
			wantErr(t, err, tc.want)
			if err != nil {
				return
			}
			want := domain.UserDeactivated{UserID: "u1", Name: u.Name, Email: u.Email, Role: u.Role, TransferTo: tc.to}
			if len(evs) != 1 || evs[0] != want {
				t.Fatalf("got %+v", evs)
			}
		})
	}
}

func TestChangeRole(t *testing.T) {
	admin := active("a")
	admin.Role = domain.RoleAdmin
	evs, err := admin.ChangeRole(domain.RoleMember, 2)
	wantErr(t, err, "")
	if len(evs) != 1 || evs[0] != (domain.UserUpdated{UserID: "a", Role: domain.RoleMember}) {
		t.Fatalf("events %+v", evs)
	}
	admin.Apply(evs[0], t0)
	if admin.Role != domain.RoleMember || admin.Name != "User a" {
		t.Fatalf("after UserUpdated: %+v", admin)
	}
	admin.Role = domain.RoleAdmin
	_, err = admin.ChangeRole(domain.RoleMember, 1)
	wantErr(t, err, domain.CodeLastAdmin)
	evs, err = admin.ChangeRole(domain.RoleAdmin, 1) // unchanged: nothing to append
	if err != nil || evs != nil {
		t.Fatalf("same role: %v %v", evs, err)
	}
	_, err = admin.ChangeRole("owner", 2)
	wantErr(t, err, "validation")
	// A deactivated admin is no longer one of the tenant's admins.
	gone := deactivated("g")
	gone.Role = domain.RoleAdmin
	_, err = gone.ChangeRole(domain.RoleMember, 1)
	wantErr(t, err, "")
	evs, err = active("m").ChangeRole(domain.RoleAdmin, 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("promotion: %v %v", evs, err)
	}
}

// TestCheckpointEmailOptIn: only an admin may opt in; opting in and out
// are recorded on UserUpdated; an admin demoted loses the opt-in in the
// same event.
func TestCheckpointEmailOptIn(t *testing.T) {
	member := active("m")
	_, err := member.Update(nil, nil, boolPtr(true), 1)
	wantErr(t, err, "validation")
	if evs, err := member.Update(nil, nil, boolPtr(false), 1); err != nil || evs != nil {
		t.Fatalf("member opting out: %v %v", evs, err)
	}
	auditor := active("x")
	auditor.Role = domain.RoleAuditor
	_, err = auditor.Update(nil, nil, boolPtr(true), 1)
	wantErr(t, err, "validation")
	if !auditor.ReceivesCheckpointEmail() || member.ReceivesCheckpointEmail() {
		t.Fatal("an auditor always receives the checkpoint e-mail, a member never")
	}

	admin := active("a")
	admin.Role = domain.RoleAdmin
	evs, err := admin.Update(nil, nil, boolPtr(true), 2)
	wantErr(t, err, "")
	if len(evs) != 1 || evs[0].(domain.UserUpdated).CheckpointEmail == nil || !*evs[0].(domain.UserUpdated).CheckpointEmail {
		t.Fatalf("opt in: %+v", evs)
	}
	admin.Apply(evs[0], t0)
	if !admin.ReceivesCheckpointEmail() {
		t.Fatalf("after opting in: %+v", admin)
	}
	if evs, err := admin.Update(nil, nil, boolPtr(true), 2); err != nil || evs != nil {
		t.Fatalf("opting in again: %v %v", evs, err)
	}
	role := domain.RoleMember
	evs, err = admin.Update(nil, &role, nil, 2)
	wantErr(t, err, "")
	if len(evs) != 1 {
		t.Fatalf("demotion: %+v", evs)
	}
	e := evs[0].(domain.UserUpdated)
	if e.Role != domain.RoleMember || e.CheckpointEmail == nil || *e.CheckpointEmail {
		t.Fatalf("demotion keeps the opt-in: %+v", e)
	}
	admin.Apply(e, t0)
	if admin.CheckpointEmail || admin.ReceivesCheckpointEmail() {
		t.Fatalf("after demotion: %+v", admin)
	}
}
