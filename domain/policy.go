package domain

import "fmt"

// MaxAssigneesLimit bounds max_assignees so a typo cannot disable the limit
// while looking like one.
const MaxAssigneesLimit = 1000

// Policy is a tenant's choice of assignment rules. Rules apply to commands
// decided under the policy; changing the policy does not rewrite existing
// teams (a team above a lowered max_assignees simply cannot grow).
type Policy struct {
	MaxAssignees         *int `json:"max_assignees"`
	RequireAssignee      bool `json:"require_assignee"`
	RequireLead          bool `json:"require_lead"`
	MembersCanSelfAssign bool `json:"members_can_self_assign"`

	// MembersSee is which customers members see: every customer of the
	// tenant, or only those they are assigned to (admins and auditors see
	// all either way). A PolicyChanged stored before the field existed
	// has none: Tenant.Apply reads it as VisibilityAll. In a ChangePolicy
	// request, empty means "unchanged".
	MembersSee Visibility `json:"members_see,omitempty"`

	// MaxCustomersPerUser caps how many customers one user may serve
	// (contract v3; nil: no limit). PolicyChanged events before it have
	// none, which reads as no limit.
	MaxCustomersPerUser *int `json:"max_customers_per_user"`
}

// Visibility is a policy's members_see.
type Visibility string

const (
	// VisibilityAll lets members see every customer of the tenant.
	VisibilityAll Visibility = "all"
	// VisibilityAssigned lets members see only the customers they serve.
	VisibilityAssigned Visibility = "assigned"
)

// withVisibility is p with an empty MembersSee read as VisibilityAll.
func (p Policy) withVisibility() Policy {
	if p.MembersSee == "" {
		p.MembersSee = VisibilityAll
	}
	return p
}

// Sees reports whether a may see customer c under p: admins, auditors
// and the service itself (no role) see every customer; a member sees all
// unless MembersSee is "assigned", then only the customers whose team it
// is on (an erased customer has none to be on).
func (p Policy) Sees(a Actor, c Customer) bool {
	if a.Role != RoleMember || p.withVisibility().MembersSee == VisibilityAll {
		return true
	}
	if c.Erased {
		return false
	}
	_, ok := c.Member(a.UserID)
	return ok
}

// DefaultPolicy is the policy of a new tenant: no limit, no required
// assignee or lead, and members may assign themselves.
func DefaultPolicy() Policy {
	return Policy{MembersCanSelfAssign: true, MembersSee: VisibilityAll}
}

// Validate reports whether p can be stored.
func (p Policy) Validate() error {
	if p.MaxAssignees != nil && (*p.MaxAssignees < 1 || *p.MaxAssignees > MaxAssigneesLimit) {
		return invalid("max_assignees", fmt.Sprintf("must be null or between 1 and %d", MaxAssigneesLimit))
	}
	if p.MembersSee != "" && p.MembersSee != VisibilityAll && p.MembersSee != VisibilityAssigned {
		return invalid("members_see", `must be "all" or "assigned"`)
	}
	if p.MaxCustomersPerUser != nil && (*p.MaxCustomersPerUser < 1 || *p.MaxCustomersPerUser > MaxCustomersPerUserLimit) {
		return invalid("max_customers_per_user", fmt.Sprintf("must be null or between 1 and %d", MaxCustomersPerUserLimit))
	}
	return nil
}

// Equal compares policies by value; MaxAssignees is a pointer only to tell
// "no limit" from a limit.
func (p Policy) Equal(q Policy) bool {
	sameMax := (p.MaxAssignees == nil) == (q.MaxAssignees == nil) &&
		(p.MaxAssignees == nil || *p.MaxAssignees == *q.MaxAssignees)
	sameCap := (p.MaxCustomersPerUser == nil) == (q.MaxCustomersPerUser == nil) &&
		(p.MaxCustomersPerUser == nil || *p.MaxCustomersPerUser == *q.MaxCustomersPerUser)
	return sameMax && sameCap &&
		p.RequireAssignee == q.RequireAssignee &&
		p.RequireLead == q.RequireLead &&
		p.MembersCanSelfAssign == q.MembersCanSelfAssign &&
		p.withVisibility().MembersSee == q.withVisibility().MembersSee
}

// full reports whether a team of size n may not grow under p.
func (p Policy) full(n int) bool {
	return p.MaxAssignees != nil && n >= *p.MaxAssignees
}
