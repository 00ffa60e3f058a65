package domain

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// CustomerStatus is where a customer stands with the tenant. Assignment
// commands work in every status: a blocked customer keeps its team.
type CustomerStatus string

const (
	CustomerStatusActive  CustomerStatus = "active"
	CustomerStatusInvited CustomerStatus = "invited"
	CustomerStatusBlocked CustomerStatus = "blocked"
)

// Customer is the customer-team aggregate, rebuilt from the customer's
// stream. TenantID is set by the loader (see User).
type Customer struct {
	ID        string
	TenantID  string
	Profile   Profile
	Status    CustomerStatus
	Team      Team // in assignment order, oldest first
	CreatedAt time.Time
	// Version is the number of events applied, i.e. the stream version.
	Version int64
	// ChangedVersion is the version of the last event that changed the
	// customer: records of e-mails sent to it (InvitationEmailed,
	// CustomerMessaged) move Version, not this (see MatchesVersion).
	ChangedVersion int64
	// Groups are the IDs of the groups the customer is in, in the order it
	// joined them. A deleted group's ID stays until removed: membership is
	// the customer's, and read models hide deleted groups.
	Groups []string
	// Invited is true for a client created by invitation (ClientInvited),
	// whatever its status now.
	Invited bool
	// Erased is true once CustomerErased is applied: the profile is gone
	// (the key that opened it is destroyed) and no command changes the
	// customer any more.
	Erased bool
	// FollowUps are the customer's follow-ups by ID. Apply replaces the map
	// on every change, never changing it in place; a CustomerFold changes
	// only its own copy.
	FollowUps map[string]FollowUp

	// statusBeforeBlock is what Unblock returns to, so that unblocking an
	// invited client does not accept the invitation on their behalf.
	statusBeforeBlock CustomerStatus
}

// Apply evolves c by one event of its stream recorded at at; at becomes the
// AssignedAt of members the event adds. Team is replaced, never modified in
// place (Team.Apply), so copies of a Customer never see each other's changes.
func (c *Customer) Apply(e Event, at time.Time) { c.apply(e, at, FollowUpsApply) }

// apply is Apply with the follow-ups evolved by followUps: FollowUpsApply,
// or FollowUpsApplyInPlace for a CustomerFold's own map.
func (c *Customer) apply(e Event, at time.Time, followUps func(map[string]FollowUp, Event, time.Time) map[string]FollowUp) {
	switch e := e.(type) {
	case CustomerRegistered:
		c.ID, c.Profile, c.Status, c.CreatedAt = e.CustomerID, e.Profile, CustomerStatusActive, at
	case ClientInvited:
		c.ID, c.Profile, c.Status, c.CreatedAt = e.CustomerID, e.Profile, CustomerStatusInvited, at
		c.Invited = true
	case CustomerUpdated:
		c.Profile = e.Profile
	case InvitationAccepted:
		c.Status = CustomerStatusActive
	case CustomerBlocked:
		c.statusBeforeBlock, c.Status = c.Status, CustomerStatusBlocked
	case CustomerUnblocked:
		c.Status = c.statusBeforeBlock
		if c.Status == "" {
			c.Status = CustomerStatusActive
		}
		c.statusBeforeBlock = ""
	case CustomerErased:
		c.Erased, c.Profile = true, Profile{Erased: true}
	case CustomerAddedToGroup:
		if !slices.Contains(c.Groups, e.GroupID) {
			c.Groups = append(slices.Clip(c.Groups), e.GroupID)
		}
	case CustomerRemovedFromGroup:
		c.Groups = slices.DeleteFunc(slices.Clone(c.Groups), func(g string) bool { return g == e.GroupID })
	case UserAssigned, UserUnassigned, TeamLeadChanged, TeamMemberReplaced:
		if len(c.FollowUps) > 0 {
			c.FollowUps = keepDueTeams(c.FollowUps, c.Team, at)
		}
		c.Team = c.Team.Apply(e, at, 0)
	case FollowUpScheduled, FollowUpCompleted, FollowUpSnoozed, FollowUpCancelled, FollowUpDue:
		c.FollowUps = followUps(c.FollowUps, e, at)
	}
	c.Version++
	// E-mails sent and follow-ups are the customer's record, not changes
	// of the customer: an ETag stays good across them.
	switch e.(type) {
	case InvitationEmailed, CustomerMessaged:
	default:
		if !IsFollowUpEvent(e) {
			c.ChangedVersion = c.Version
		}
	}
}

// CustomerFold applies a run of events to a customer at the cost of the
// events. Apply copies the follow-ups map at every follow-up event, so
// that copies of a customer never see each other's changes; folding a
// stream that way is quadratic in its follow-ups (2,000 of them took
// three quarters of a second). A fold copies the map once, at its first
// follow-up event, and then changes its own copy.
type CustomerFold struct {
	c     Customer
	owned bool // c.FollowUps is the fold's own copy
}

// FoldCustomer starts a fold from c: the zero Customer (with its TenantID)
// for a stream's start, or a customer as of some version.
func FoldCustomer(c Customer) *CustomerFold { return &CustomerFold{c: c} }

// Apply applies e recorded at at, as Customer.Apply does.
func (f *CustomerFold) Apply(e Event, at time.Time) {
	if !IsFollowUpEvent(e) {
		f.c.Apply(e, at)
		return
	}
	if !f.owned {
		f.c.FollowUps, f.owned = maps.Clone(f.c.FollowUps), true
	}
	f.c.apply(e, at, FollowUpsApplyInPlace)
}

// Customer returns the customer folded so far. It hands the fold's map
// over: a later follow-up event copies it again first.
func (f *CustomerFold) Customer() Customer {
	f.owned = false
	return f.c
}

// MatchesVersion reports whether an If-Match version v still describes the
// customer: v is a version of its stream no older than its last change. An
// e-mail's delivery record (appended by the relay after the command that
// queued the e-mail answered) moves the stream version, and so the ETag,
// without changing the customer; a client that sends the ETag of that
// command's answer must not be refused for a change it did not make.
func (c Customer) MatchesVersion(v int64) bool {
	return v >= c.ChangedVersion && v <= c.Version
}

// Erase decides the customer's erasure: its open follow-ups cancelled, then
// CustomerErased, or nothing when it is erased already.
func (c Customer) Erase() []Event {
	if c.Erased {
		return nil
	}
	return append(c.cancelFollowUpsForErasure(), CustomerErased{CustomerID: c.ID})
}

// Member returns userID's place on the team.
func (c Customer) Member(userID string) (Member, bool) { return c.Team.Member(userID) }

// Lead returns the team lead, if the team has one.
func (c Customer) Lead() (Member, bool) { return c.Team.Lead() }

// RegisterCustomer decides the creation of an active customer with its
// first team (possibly empty), all in one batch: CustomerRegistered, then
// UserAssigned for each of team in order, as InviteClient does. Uniqueness
// of email and external_id is the caller's to check.
func RegisterCustomer(customerID, tenantID string, p Profile, team []User, pol Policy) ([]Event, error) {
	if customerID == "" {
		return nil, invalid("customer_id", "must not be empty")
	}
	if tenantID == "" {
		return nil, invalid("tenant_id", "must not be empty")
	}
	p, err := NormalizeProfile(p)
	if err != nil {
		return nil, err
	}
	return withFirstTeam(CustomerRegistered{CustomerID: customerID, Profile: p}, team, pol)
}

// RequireTeam refuses creating a customer with a team of size n when the
// policy requires an assignee: under require_assignee a customer never
// exists without a team, not even for the moment between its creation and
// its first assignment.
func RequireTeam(pol Policy, n int) error {
	if pol.RequireAssignee && n == 0 {
		return ruleErr(CodeTeamRequired, "the tenant policy requires every customer to have a team member (require_assignee)")
	}
	return nil
}

// withFirstTeam decides the first team of a customer created by created:
// the users in order, under the same rules as Assign (so the first is lead
// under require_lead). Listing a user twice is invalid input rather than
// already_assigned: the customer does not exist yet, the request
// contradicts itself.
func withFirstTeam(created Event, team []User, pol Policy) ([]Event, error) {
	if err := RequireTeam(pol, len(team)); err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(team))
	for _, u := range team {
		if seen[u.ID] {
			return nil, invalid("team", "user "+u.ID+" is listed twice")
		}
		seen[u.ID] = true
	}
	// Said of the team given, not of the customer: its ID is new, and an
	// import's dry run never writes it (found by hostile testing: a row's
	// error named a customer nobody could find).
	if pol.MaxAssignees != nil && len(team) > *pol.MaxAssignees {
		return nil, ruleErr(CodeMaxAssigneesReached, "a team of %d is more than the %d the policy allows (max_assignees)", len(team), *pol.MaxAssignees)
	}
	events := []Event{created}
	var c Customer
	c.Apply(created, time.Time{})
	for _, u := range team {
		evs, err := c.Assign(u, pol)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			c.Apply(e, time.Time{})
		}
		events = append(events, evs...)
	}
	return events, nil
}

// NormalizeProfile trims every field, normalizes the email and checks that
// the customer can be told apart: a first name, last name or email is
// required. Every field is one line: a control character is refused.
func NormalizeProfile(p Profile) (Profile, error) {
	var err error
	if p.FirstName, err = normalizeName("first_name", p.FirstName, false); err != nil {
		return Profile{}, err
	}
	if p.LastName, err = normalizeName("last_name", p.LastName, false); err != nil {
		return Profile{}, err
	}
	if p.Phone, err = normalizeName("phone", p.Phone, false); err != nil {
		return Profile{}, err
	}
	if p.ExternalID, err = normalizeName("external_id", p.ExternalID, false); err != nil {
		return Profile{}, err
	}
	if p.Title, err = normalizeName("title", p.Title, false); err != nil {
		return Profile{}, err
	}
	if err = checkLine("email", p.Email); err != nil {
		return Profile{}, err
	}
	if strings.TrimSpace(p.Email) == "" {
		p.Email = ""
	} else if p.Email, err = NormalizeEmail(p.Email); err != nil {
		return Profile{}, err
	}
	if p.FirstName == "" && p.LastName == "" && p.Email == "" {
		return Profile{}, invalid("first_name", "first_name, last_name or email is required")
	}
	return p, nil
}

// InviteClient decides the invitation of a client with its first team, all
// in one batch: ClientInvited, then UserAssigned for each of team in order
// (see withFirstTeam).
func InviteClient(customerID string, p Profile, team []User, pol Policy) ([]Event, error) {
	if customerID == "" {
		return nil, invalid("customer_id", "must not be empty")
	}
	p, err := NormalizeProfile(p)
	if err != nil {
		return nil, err
	}
	if p.Email == "" {
		return nil, invalid("email", "is required for an invitation")
	}
	return withFirstTeam(ClientInvited{CustomerID: customerID, Profile: p}, team, pol)
}

// AcceptInvitation decides the client's acceptance; only an invited (and not
// blocked) client can accept.
func (c Customer) AcceptInvitation() ([]Event, error) {
	if c.Status != CustomerStatusInvited {
		return nil, ruleErr(CodeNotInvited, "customer %s is %s, not invited", c.ID, c.Status)
	}
	return []Event{InvitationAccepted{CustomerID: c.ID}}, nil
}

// Block decides blocking the customer. The team is kept.
func (c Customer) Block() ([]Event, error) {
	if c.Status == CustomerStatusBlocked {
		return nil, ruleErr(CodeAlreadyBlocked, "customer %s is already blocked", c.ID)
	}
	return []Event{CustomerBlocked{CustomerID: c.ID}}, nil
}

// Unblock decides unblocking; the customer returns to its status before
// blocking.
func (c Customer) Unblock() ([]Event, error) {
	if c.Status != CustomerStatusBlocked {
		return nil, ruleErr(CodeNotBlocked, "customer %s is not blocked", c.ID)
	}
	return []Event{CustomerUnblocked{CustomerID: c.ID}}, nil
}

// UpdateProfile decides replacing the whole profile by p (callers merge
// partial updates first); (nil, nil) when nothing would change.
func (c Customer) UpdateProfile(p Profile) ([]Event, error) {
	p, err := NormalizeProfile(p)
	if err != nil {
		return nil, err
	}
	if c.Status == CustomerStatusInvited && p.Email == "" {
		return nil, invalid("email", "an invited client must keep an email")
	}
	if p == c.Profile {
		return nil, nil
	}
	return []Event{CustomerUpdated{CustomerID: c.ID, Profile: p}}, nil
}

// Assign decides adding u to the team. Under require_lead a team without a
// lead gets u as lead, so a non-empty team always has one; without it there
// is no automatic lead.
func (c Customer) Assign(u User, pol Policy) ([]Event, error) {
	if _, ok := c.Member(u.ID); ok {
		return nil, ruleErr(CodeAlreadyAssigned, "user %s is already assigned to customer %s", u.ID, c.ID)
	}
	if !u.Active() {
		return nil, ruleErr(CodeUserDeactivated, "user %s is deactivated", u.ID)
	}
	if err := u.assignable(); err != nil {
		return nil, err
	}
	if pol.full(len(c.Team)) {
		// The team may be over the maximum (the policy was lowered after it
		// grew): say what the maximum is, not the team's size.
		return nil, ruleErr(CodeMaxAssigneesReached, "customer %s already has %d on its team; the maximum is %d (max_assignees)", c.ID, len(c.Team), *pol.MaxAssignees)
	}
	_, hasLead := c.Lead()
	return []Event{UserAssigned{CustomerID: c.ID, UserID: u.ID, Lead: pol.RequireLead && !hasLead}}, nil
}

// Unassign decides removing userID from the team.
func (c Customer) Unassign(userID string, pol Policy) ([]Event, error) {
	m, ok := c.Member(userID)
	if !ok {
		return nil, ruleErr(CodeUserNotAssigned, "user %s is not assigned to customer %s", userID, c.ID)
	}
	if pol.RequireAssignee && len(c.Team) == 1 {
		return nil, ruleErr(CodeCustomerMustKeepAnAssignee, "user %s is the last assignee of customer %s; replace them instead", userID, c.ID)
	}
	// The lead stays until another member is made lead or replaces them,
	// also when alone (the client portal's rule): a lone lead is replaced,
	// never simply removed.
	if pol.RequireLead && m.Lead {
		return nil, ruleErr(CodeLeadCannotBeRemoved, "user %s leads the team of customer %s; make another member lead or replace them first", userID, c.ID)
	}
	return []Event{UserUnassigned{CustomerID: c.ID, UserID: userID}}, nil
}

// MakeLead decides making userID the team lead; (nil, nil) when it already
// is.
func (c Customer) MakeLead(userID string) ([]Event, error) {
	m, ok := c.Member(userID)
	if !ok {
		return nil, ruleErr(CodeUserNotAssigned, "user %s is not assigned to customer %s", userID, c.ID)
	}
	if m.Lead {
		return nil, nil
	}
	prev, _ := c.Lead()
	return []Event{TeamLeadChanged{CustomerID: c.ID, UserID: userID, PreviousUserID: prev.UserID}}, nil
}

// Replace decides handing userID's place, lead flag included, to with. The
// team size does not change, so max_assignees is not checked: replacing is
// how a full team, or the last member under require_assignee, changes
// hands. pol is taken so every assignment command is decided under the
// policy.
func (c Customer) Replace(userID string, with User, pol Policy) ([]Event, error) {
	m, ok := c.Member(userID)
	if !ok {
		return nil, ruleErr(CodeUserNotAssigned, "user %s is not assigned to customer %s", userID, c.ID)
	}
	if _, ok := c.Member(with.ID); ok {
		return nil, ruleErr(CodeAlreadyAssigned, "user %s is already assigned to customer %s", with.ID, c.ID)
	}
	if !with.Active() {
		return nil, ruleErr(CodeUserDeactivated, "user %s is deactivated", with.ID)
	}
	if err := with.assignable(); err != nil {
		return nil, err
	}
	return []Event{TeamMemberReplaced{CustomerID: c.ID, UserID: userID, WithUserID: with.ID, Lead: m.Lead}}, nil
}
