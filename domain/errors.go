package domain

import (
	"errors"
	"fmt"
)

// Stable, machine-readable codes of RuleError. They are part of the public
// API (the "code" of a problem response), so they never change meaning.
const (
	CodeMaxAssigneesReached        = "max_assignees_reached"
	CodeUserDeactivated            = "user_deactivated"
	CodeAlreadyAssigned            = "already_assigned"
	CodeUserNotAssigned            = "user_not_assigned"
	CodeLeadCannotBeRemoved        = "lead_cannot_be_removed"
	CodeCustomerMustKeepAnAssignee = "customer_must_keep_an_assignee"
	// CodeEmailTaken is decided by the caller, which alone can see every
	// email of a tenant; it is defined here so all codes live in one list.
	CodeEmailTaken         = "email_taken"
	CodeAlreadyBlocked     = "customer_already_blocked"
	CodeNotBlocked         = "customer_not_blocked"
	CodeNotInvited         = "customer_not_invited"
	CodeAlreadyDeactivated = "user_already_deactivated"
	CodeTransferToSelf     = "transfer_to_self"
	// CodeLastAdmin refuses to deactivate a tenant's last active admin:
	// nothing could then manage the tenant, and no path restores an admin.
	CodeLastAdmin = "last_admin"
	// CodeTeamRequired refuses creating a customer without a team under
	// require_assignee. Unlike the other codes it is a 422, not a 409: the
	// request is valid but cannot be carried out as a whole (see
	// RuleError.Unprocessable).
	CodeTeamRequired = "team_required"
	// CodeNoRecipients refuses a message none of whose selected IDs is a
	// customer of the tenant: there is nobody to send it to, nor to list as
	// skipped for a reason (blocked, erased, no e-mail). A 422 like
	// CodeTeamRequired.
	CodeNoRecipients = "no_recipients"
	// CodeErased is a customer that was erased: HTTP 410 for the customer
	// itself, a failing customer's code in a bulk action.
	CodeErased = "erased"
	// CodeAuditorNotAssignable refuses putting an auditor on a team (assign,
	// set, replace, transfer, lead) and making a user with customers an
	// auditor: whoever audits the ledger is never part of what it records
	// about teams.
	CodeAuditorNotAssignable = "auditor_not_assignable"
)

// RuleError is a command refused by a business rule (HTTP 409).
type RuleError struct {
	Code   string
	Detail string
}

// Unprocessable reports whether the rule refuses the request as a whole
// (HTTP 422) rather than a change to existing state (HTTP 409).
func (e *RuleError) Unprocessable() bool {
	return e.Code == CodeTeamRequired || e.Code == CodeNoRecipients || e.Code == CodeNoEligibleAssignee
}

func (e *RuleError) Error() string {
	if e.Detail == "" {
		return e.Code
	}
	return e.Code + ": " + e.Detail
}

// ValidationError is input that can never be accepted, whatever the state
// (HTTP 400).
type ValidationError struct {
	Field  string
	Detail string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return "invalid input: " + e.Detail
	}
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Detail)
}

// ForbiddenError is a command the actor's role does not allow (HTTP 403).
type ForbiddenError struct {
	Detail string
}

func (e *ForbiddenError) Error() string {
	return "forbidden: " + e.Detail
}

// IsRule reports whether err is, or wraps, a RuleError with the given code.
func IsRule(err error, code string) bool {
	var re *RuleError
	return errors.As(err, &re) && re.Code == code
}

func ruleErr(code, format string, args ...any) error {
	return &RuleError{Code: code, Detail: fmt.Sprintf(format, args...)}
}

func invalid(field, detail string) error {
	return &ValidationError{Field: field, Detail: detail}
}
