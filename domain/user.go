package domain

import (
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Role is what a user may do in a tenant.
type Role string

const (
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
	// RoleAuditor reads everything an admin reads and changes nothing; it
	// is never on a customer's team (auditor_not_assignable), so whoever
	// checks the ledger is never part of what they check.
	RoleAuditor Role = "auditor"
)

// roleChoices is the ValidationError detail of an unknown role.
const roleChoices = `must be "admin", "member" or "auditor"`

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleMember || r == RoleAuditor
}

// assignable refuses putting u on a team for its role: an auditor is never
// assigned, made lead or handed customers.
func (u User) assignable() error {
	if u.Role == RoleAuditor {
		return ruleErr(CodeAuditorNotAssignable, "user %s is an auditor; auditors are never assigned to customers", u.ID)
	}
	return nil
}

// UserStatus tells whether a user can still be assigned and authenticate.
type UserStatus string

const (
	UserStatusActive      UserStatus = "active"
	UserStatusDeactivated UserStatus = "deactivated"
)

// Field length limits. They keep one row from bloating every read model
// that copies names and emails.
const (
	MaxNameLen  = 200
	MaxEmailLen = 254
)

// User is a team member, rebuilt from the user's stream. TenantID is not in
// the events (it is in the event store's envelope); the loader sets it.
type User struct {
	ID        string
	TenantID  string
	Name      string
	Email     string
	Role      Role
	Status    UserStatus
	CreatedAt time.Time
	// CheckpointEmail is an admin's opt-in to the daily checkpoint e-mail
	// (auditors always receive it; members never do).
	CheckpointEmail bool
	// AwayUntil is when an out-of-office user is back (nil: not away);
	// assignment rules skip the user until then.
	AwayUntil *time.Time
	// NotifyByEmail: every notification the user receives also goes out
	// as an e-mail.
	NotifyByEmail bool
	// Version is the number of events applied, i.e. the stream version.
	Version int64
}

// Active reports whether u can be assigned. The zero User is not active, so
// a user that was never loaded can never slip onto a team.
func (u User) Active() bool {
	return u.Status == UserStatusActive
}

// Apply evolves u by one event of its stream, recorded at at. Every event
// counts towards Version, even one that changes nothing else, so Version
// stays equal to the stream version used for optimistic concurrency.
func (u *User) Apply(e Event, at time.Time) {
	switch e := e.(type) {
	case UserCreated:
		u.ID = e.UserID
		u.Name = e.Name
		u.Email = e.Email
		u.Role = e.Role
		u.Status = UserStatusActive
		u.CreatedAt = at
	case UserDeactivated:
		u.Status = UserStatusDeactivated
	case UserUpdated:
		if e.Name != "" {
			u.Name = e.Name
		}
		if e.Role != "" {
			u.Role = e.Role
		}
		if e.CheckpointEmail != nil {
			u.CheckpointEmail = *e.CheckpointEmail
		}
		if e.AwayUntil != nil {
			t := e.AwayUntil.UTC()
			u.AwayUntil = &t
		}
		if e.AwayCleared {
			u.AwayUntil = nil
		}
		if e.NotifyByEmail != nil {
			u.NotifyByEmail = *e.NotifyByEmail
		}
	}
	u.Version++
}

// CreateUser decides the creation of a user. Email uniqueness is the
// caller's to check (CodeEmailTaken): only it sees the whole tenant.
func CreateUser(userID, tenantID, name, email string, role Role) ([]Event, error) {
	if userID == "" {
		return nil, invalid("user_id", "must not be empty")
	}
	if tenantID == "" {
		return nil, invalid("tenant_id", "must not be empty")
	}
	name, err := normalizeName("name", name, true)
	if err != nil {
		return nil, err
	}
	email, err = NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if !role.Valid() {
		return nil, invalid("role", roleChoices)
	}
	return []Event{UserCreated{UserID: userID, Name: name, Email: email, Role: role}}, nil
}

// NormalizeEmail trims and lowercases s and checks that it is a bare
// address ("a@b.example", not "A <a@b.example>"). Lowercasing the local part
// is not strictly RFC 5321, but it is what users expect of uniqueness.
func NormalizeEmail(s string) (string, error) {
	if err := checkLine("email", s); err != nil {
		return "", err
	}
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", invalid("email", "must not be empty")
	}
	if len(s) > MaxEmailLen {
		return "", invalid("email", "is too long")
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || addr.Name != "" {
		return "", invalid("email", "is not a valid email address")
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", invalid("email", "is not a valid email address")
	}
	return s, nil
}

func normalizeName(field, s string, required bool) (string, error) {
	if err := checkLine(field, s); err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	if required && s == "" {
		return "", invalid(field, "must not be empty")
	}
	if !utf8.ValidString(s) {
		return "", invalid(field, "must be valid UTF-8")
	}
	if utf8.RuneCountInString(s) > MaxNameLen {
		return "", invalid(field, "is too long")
	}
	return s, nil
}

// Deactivate decides the deactivation of u alone. DeactivateUser also
// decides what happens to u's customers and is what commands should call.
func (u User) Deactivate(transferTo *User) ([]Event, error) {
	if u.Status == UserStatusDeactivated {
		return nil, ruleErr(CodeAlreadyDeactivated, "user %s is already deactivated", u.ID)
	}
	ev := UserDeactivated{UserID: u.ID, Name: u.Name, Email: u.Email, Role: u.Role}
	if transferTo != nil {
		if transferTo.ID == u.ID {
			return nil, ruleErr(CodeTransferToSelf, "a user cannot transfer customers to themselves")
		}
		if !transferTo.Active() {
			return nil, ruleErr(CodeUserDeactivated, "transfer_to user %s is deactivated", transferTo.ID)
		}
		if err := transferTo.assignable(); err != nil {
			return nil, err
		}
		ev.TransferTo = transferTo.ID
	}
	return []Event{ev}, nil
}

// ReceivesCheckpointEmail reports whether u is e-mailed the tenant's daily
// checkpoint: an active auditor always, an active admin who opted in,
// nobody else (EmailCheckpoints' query says the same).
func (u User) ReceivesCheckpointEmail() bool {
	return u.Active() && (u.Role == RoleAuditor || (u.Role == RoleAdmin && u.CheckpointEmail))
}

// Update decides changing u's name, role and checkpoint e-mail opt-in (nil
// leaves one as it is) in one UserUpdated carrying only what changes;
// (nil, nil) when nothing does. activeAdmins is as for ChangeRole. Only an
// admin (after the change) may opt in: an auditor always receives the
// e-mail and a member never does. An admin who stops being one loses the
// opt-in in the same event, so promoting them again does not silently
// resume the e-mails.
func (u User) Update(name *string, role *Role, checkpointEmail *bool, activeAdmins int) ([]Event, error) {
	ev := UserUpdated{UserID: u.ID}
	if name != nil {
		n, err := normalizeName("name", *name, true)
		if err != nil {
			return nil, err
		}
		if n != u.Name {
			ev.Name = n
		}
	}
	if role != nil {
		changed, err := u.ChangeRole(*role, activeAdmins)
		if err != nil {
			return nil, err
		}
		if len(changed) > 0 {
			ev.Role = *role
		}
	}
	newRole := u.Role
	if ev.Role != "" {
		newRole = ev.Role
	}
	want := u.CheckpointEmail
	if checkpointEmail != nil {
		if *checkpointEmail && newRole != RoleAdmin {
			return nil, invalid("checkpoint_email", "only admins opt in to the checkpoint e-mail (auditors always receive it)")
		}
		want = *checkpointEmail
	}
	if newRole != RoleAdmin {
		want = false
	}
	if want != u.CheckpointEmail {
		ev.CheckpointEmail = &want
	}
	if ev.Name == "" && ev.Role == "" && ev.CheckpointEmail == nil {
		return nil, nil
	}
	return []Event{ev}, nil
}

// RefuseAuditorOnTeams refuses making u an auditor while it is on the team
// of any of customers (those that may have it; erased ones keep their last
// team in history and do not count): an auditor is never assigned, so its
// customers must be handed over first (transfer).
func (u User) RefuseAuditorOnTeams(customers []Customer) error {
	n := 0
	for _, c := range customers {
		if _, on := c.Member(u.ID); on && !c.Erased {
			n++
		}
	}
	if n > 0 {
		return ruleErr(CodeAuditorNotAssignable, "user %s is assigned to %d customers; transfer them before making the user an auditor", u.ID, n)
	}
	return nil
}

// ChangeRole decides giving u the role role; (nil, nil) when it has it.
// activeAdmins is the number of the tenant's active admins, u included if
// it is one: the last of them cannot be demoted (last_admin), or the tenant
// would have nobody left to administer it. The caller must hold that count
// stable until the commit (lock the admins' rows).
func (u User) ChangeRole(role Role, activeAdmins int) ([]Event, error) {
	if !role.Valid() {
		return nil, invalid("role", roleChoices)
	}
	if role == u.Role {
		return nil, nil
	}
	if u.Role == RoleAdmin && u.Active() && activeAdmins <= 1 {
		return nil, ruleErr(CodeLastAdmin, "user %s is the tenant's last active admin; make another user admin first", u.ID)
	}
	return []Event{UserUpdated{UserID: u.ID, Role: role}}, nil
}

// Away reports whether u is out of office at now: assignment rules skip
// the user until AwayUntil.
func (u User) Away(now time.Time) bool {
	return u.AwayUntil != nil && u.AwayUntil.After(now)
}

// UserChange is what a PATCH of a user asks to change; nil leaves a field
// as it is. Away set with AwayUntil nil clears the user's away time.
type UserChange struct {
	Name            *string
	Role            *Role
	CheckpointEmail *bool
	Away            bool
	AwayUntil       *time.Time
	NotifyByEmail   *bool
}

// AuthorizeUserChange decides whether a may make ch to user target: name,
// role and the checkpoint opt-in are an admin's to change; away_until the
// user's own or an admin's (an admin covers a colleague who forgot);
// notify_by_email only the user's own (it is their inbox).
func AuthorizeUserChange(a Actor, target string, ch UserChange) error {
	self := a.UserID != "" && a.UserID == target
	if a.IsAuditor() {
		return &ForbiddenError{Detail: "an auditor changes nothing"}
	}
	if (ch.Name != nil || ch.Role != nil || ch.CheckpointEmail != nil) && !a.IsAdmin() {
		return &ForbiddenError{Detail: "only an admin may change a user's name, role or checkpoint e-mail"}
	}
	if ch.Away && !self && !a.IsAdmin() {
		return &ForbiddenError{Detail: "only the user or an admin may set away_until"}
	}
	if ch.NotifyByEmail != nil && !self {
		return &ForbiddenError{Detail: "only the user may choose to receive notifications by e-mail"}
	}
	return nil
}

// Change decides ch on u as Update does, adding away_until and
// notify_by_email to the same UserUpdated; (nil, nil) when nothing changes.
// Authorization is AuthorizeUserChange's.
func (u User) Change(ch UserChange, activeAdmins int) ([]Event, error) {
	events, err := u.Update(ch.Name, ch.Role, ch.CheckpointEmail, activeAdmins)
	if err != nil {
		return nil, err
	}
	ev := UserUpdated{UserID: u.ID}
	if len(events) > 0 {
		ev = events[0].(UserUpdated)
	}
	if ch.Away {
		switch {
		case ch.AwayUntil == nil && u.AwayUntil != nil:
			ev.AwayCleared = true
		case ch.AwayUntil != nil && (u.AwayUntil == nil || !u.AwayUntil.Equal(*ch.AwayUntil)):
			t := ch.AwayUntil.UTC()
			ev.AwayUntil = &t
		}
	}
	if ch.NotifyByEmail != nil && *ch.NotifyByEmail != u.NotifyByEmail {
		v := *ch.NotifyByEmail
		ev.NotifyByEmail = &v
	}
	if ev.Name == "" && ev.Role == "" && ev.CheckpointEmail == nil && ev.AwayUntil == nil && !ev.AwayCleared && ev.NotifyByEmail == nil {
		return nil, nil
	}
	return []Event{ev}, nil
}
