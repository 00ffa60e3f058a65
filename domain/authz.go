package domain

// Actor is who issues a command: the owner of the API key.
type Actor struct {
	UserID string
	Name   string
	Role   Role
}

// IsAdmin reports whether a may do everything in its tenant.
func (a Actor) IsAdmin() bool {
	return a.Role == RoleAdmin
}

// IsAuditor reports whether a reads everything and changes nothing.
func (a Actor) IsAuditor() bool {
	return a.Role == RoleAuditor
}

// ReadsAll reports whether a may read everything an admin reads: admins
// and auditors.
func (a Actor) ReadsAll() bool {
	return a.Role == RoleAdmin || a.Role == RoleAuditor
}

// RequireReader refuses an actor that may not read what an admin reads.
func RequireReader(a Actor) error {
	if !a.ReadsAll() {
		return &ForbiddenError{Detail: "only an admin or an auditor may read this"}
	}
	return nil
}

// RequireAdmin refuses a non-admin actor.
func RequireAdmin(a Actor) error {
	if !a.IsAdmin() {
		return &ForbiddenError{Detail: "only an admin may do this"}
	}
	return nil
}

// AuthorizeAssignment decides whether a may assign or unassign
// targetUserID: admins always; members only themselves, and only when the
// policy lets members self-assign.
func AuthorizeAssignment(a Actor, pol Policy, targetUserID string) error {
	if a.IsAdmin() {
		return nil
	}
	if a.Role == RoleMember && a.UserID != "" && targetUserID == a.UserID {
		if pol.MembersCanSelfAssign {
			return nil
		}
		return &ForbiddenError{Detail: "the tenant policy does not let members assign themselves"}
	}
	if a.IsAuditor() {
		return &ForbiddenError{Detail: "an auditor changes nothing"}
	}
	return &ForbiddenError{Detail: "members may only assign or unassign themselves"}
}
