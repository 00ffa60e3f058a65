package domain_test

import (
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

func auditor(id string) domain.User {
	u := active(id)
	u.Role = domain.RoleAuditor
	return u
}

// An auditor reads everything and is never on a team: every way onto a
// team refuses it with auditor_not_assignable and appends nothing.
func TestAuditorIsNeverAssigned(t *testing.T) {
	pol := domain.Policy{RequireLead: true}
	aud := auditor("x")

	evs, err := withTeam("m").Assign(aud, pol)
	wantErr(t, err, domain.CodeAuditorNotAssignable)
	if evs != nil {
		t.Fatalf("assign appended %v", evs)
	}
	_, err = withTeam("m", "m").SetTeam([]domain.User{active("m"), aud}, "", pol)
	wantErr(t, err, domain.CodeAuditorNotAssignable)
	_, err = withTeam("m", "m").SetTeam([]domain.User{active("m"), aud}, "x", pol)
	wantErr(t, err, domain.CodeAuditorNotAssignable)
	_, err = withTeam("m", "m").Replace("m", aud, pol)
	wantErr(t, err, domain.CodeAuditorNotAssignable)
	_, err = domain.RegisterCustomer("c2", "t", domain.Profile{FirstName: "Bo"}, []domain.User{aud}, pol)
	wantErr(t, err, domain.CodeAuditorNotAssignable)
	_, err = domain.PlanTransfer(active("m"), aud, []domain.Customer{withTeam("m", "m")}, false)
	wantErr(t, err, domain.CodeAuditorNotAssignable)
	_, _, err = domain.DeactivateUser(active("m"), &aud, []domain.Customer{withTeam("m", "m")}, pol)
	wantErr(t, err, domain.CodeAuditorNotAssignable)

	plan := domain.PlanBulk(domain.BulkSet, []domain.Customer{withTeam("m", "m")}, []domain.User{active("m"), aud}, pol)
	if len(plan.Errors) != 1 || plan.Errors[0].Code != domain.CodeAuditorNotAssignable || plan.Errors[0].UserID != "x" || len(plan.Events) != 0 {
		t.Fatalf("bulk set plan %+v", plan)
	}
	plan = domain.PlanBulk(domain.BulkAdd, []domain.Customer{withTeam("m", "m")}, []domain.User{aud}, pol)
	if len(plan.Errors) != 1 || plan.Errors[0].Code != domain.CodeAuditorNotAssignable || len(plan.Events) != 0 {
		t.Fatalf("bulk add plan %+v", plan)
	}
}

// A user on a team cannot become an auditor until its customers are
// handed over; an erased customer's last team does not count.
func TestRefuseAuditorOnTeams(t *testing.T) {
	m := active("m")
	wantErr(t, m.RefuseAuditorOnTeams([]domain.Customer{withTeam("m", "m")}), domain.CodeAuditorNotAssignable)
	wantErr(t, m.RefuseAuditorOnTeams([]domain.Customer{withTeam("o", "o")}), "")
	erased := withTeam("m", "m")
	for _, e := range erased.Erase() {
		erased.Apply(e, t0)
	}
	wantErr(t, m.RefuseAuditorOnTeams([]domain.Customer{erased}), "")
	evs, err := m.ChangeRole(domain.RoleAuditor, 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("member to auditor: %v %v", evs, err)
	}
	if _, err := domain.CreateUser("u", "t", "Ann", "ann@example.com", domain.RoleAuditor); err != nil {
		t.Fatalf("create auditor: %v", err)
	}
}

// An auditor reads what an admin reads and may change nothing.
func TestAuditorActor(t *testing.T) {
	a := domain.Actor{UserID: "x", Role: domain.RoleAuditor}
	if !a.ReadsAll() || a.IsAdmin() || !a.IsAuditor() {
		t.Fatalf("auditor actor %+v", a)
	}
	wantErr(t, domain.RequireReader(a), "")
	wantErr(t, domain.RequireReader(domain.Actor{UserID: "m", Role: domain.RoleMember}), "forbidden")
	wantErr(t, domain.RequireAdmin(a), "forbidden")
	wantErr(t, domain.AuthorizeAssignment(a, domain.Policy{MembersCanSelfAssign: true}, "x"), "forbidden")
	wantErr(t, domain.AuthorizeBulk(a, domain.Policy{MembersCanSelfAssign: true}, domain.BulkAdd, []string{"x"}), "forbidden")
	_, err := withTeam("m", "m").SetTeamBy(a, []domain.User{active("m"), auditor("x")}, "", domain.Policy{MembersCanSelfAssign: true})
	wantErr(t, err, "forbidden")
}
