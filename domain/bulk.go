package domain

import (
	"errors"
	"slices"
)

// BulkAction is what a bulk edit does to every (customer, user) pair.
type BulkAction string

const (
	BulkAdd    BulkAction = "add"
	BulkRemove BulkAction = "remove"
	// BulkSet makes every selected customer's team exactly the listed
	// users (SetTeam for each): with one user and max_assignees 1, the
	// one-owner reassignment of Contactually and Spryker.
	BulkSet BulkAction = "set"
)

// CodeInvalidBulkAction marks every pair of a plan whose action is not one
// of add, remove and set. Callers should reject such a request as a 400 before
// planning; the code only keeps PlanBulk total.
const CodeInvalidBulkAction = "invalid_bulk_action"

// Valid reports whether a is a known action.
func (a BulkAction) Valid() bool {
	return a == BulkAdd || a == BulkRemove || a == BulkSet
}

// AuthorizeBulk decides whether a may run a bulk edit of action for
// userIDs: admins always; members only add or remove themselves alone,
// when the policy lets them self-assign (Endear's "add yourself"). set is
// admin-only: it changes every selected team as a whole.
func AuthorizeBulk(a Actor, pol Policy, action BulkAction, userIDs []string) error {
	if a.IsAdmin() {
		return nil
	}
	if action == BulkSet {
		return &ForbiddenError{Detail: "only an admin may set whole teams"}
	}
	for _, id := range userIDs {
		if id != a.UserID {
			return &ForbiddenError{Detail: "members may only add or remove themselves"}
		}
	}
	if len(userIDs) == 0 {
		return &ForbiddenError{Detail: "members may only add or remove themselves"}
	}
	return AuthorizeAssignment(a, pol, a.UserID)
}

// Pair is one (customer, user) pair of a bulk edit.
type Pair struct {
	CustomerID string `json:"customer_id"`
	// UserID is empty, and left out, only for a customer as a whole
	// (auto_assign's unchanged customers and their errors).
	UserID string `json:"user_id,omitempty"`
}

// PairError is why one pair of a bulk edit is refused; Code is a RuleError
// code.
type PairError struct {
	CustomerID string `json:"customer_id"`
	UserID     string `json:"user_id,omitempty"`
	Code       string `json:"code"`
	Detail     string `json:"detail"`
}

// BulkPlan is what a bulk edit would do. A bulk edit is all-or-nothing: the
// caller appends Events only when Errors is empty.
type BulkPlan struct {
	ToBeAssigned   []Pair
	ToBeDeassigned []Pair
	Unchanged      []Pair
	Errors         []PairError
	// Events holds, by customer ID, the events to append to that customer's
	// stream, in order. Customers with nothing to change are absent.
	Events map[string][]Event
}

// PlanBulk plans applying action to every pair of customers × users under
// pol. Each pair is decided against the customer as earlier pairs of the
// same bulk left it, so adding three users to a customer limited to two
// fails the third pair. A pair that is already as asked (added user already
// on the team, removed user not on it) is Unchanged, not an error. Every
// failing pair is reported.
//
// Duplicate customer or user IDs are planned once. For remove, a
// customer's current lead is planned after the other listed users: the
// request names a set, so under require_assignee the pair refused is the
// lead's (the others leave first), and under require_lead only the lead's
// pair fails, whatever the order the users were listed in.
func PlanBulk(action BulkAction, customers []Customer, users []User, pol Policy) BulkPlan {
	plan := BulkPlan{Events: make(map[string][]Event)}
	users = uniqueBy(users, func(u User) string { return u.ID })
	for _, c := range uniqueBy(customers, func(c Customer) string { return c.ID }) {
		if action == BulkSet {
			plan.set(c, users, pol)
			continue
		}
		order := users
		if action == BulkRemove {
			if lead, ok := c.Lead(); ok {
				order = slices.Clone(users)
				slices.SortStableFunc(order, func(a, b User) int {
					return boolCmp(a.ID == lead.UserID, b.ID == lead.UserID)
				})
			}
		}
		for _, u := range order {
			pair := Pair{CustomerID: c.ID, UserID: u.ID}
			var (
				events []Event
				err    error
			)
			switch action {
			case BulkAdd:
				if _, ok := c.Member(u.ID); ok {
					plan.Unchanged = append(plan.Unchanged, pair)
					continue
				}
				events, err = c.Assign(u, pol)
			case BulkRemove:
				if _, ok := c.Member(u.ID); !ok {
					plan.Unchanged = append(plan.Unchanged, pair)
					continue
				}
				events, err = c.Unassign(u.ID, pol)
			default:
				err = &RuleError{Code: CodeInvalidBulkAction, Detail: `action must be "add", "remove" or "set"`}
			}
			if err != nil {
				plan.Errors = append(plan.Errors, pairError(pair, err))
				continue
			}
			if action == BulkAdd {
				plan.ToBeAssigned = append(plan.ToBeAssigned, pair)
			} else {
				plan.ToBeDeassigned = append(plan.ToBeDeassigned, pair)
			}
			for _, e := range events {
				c.Apply(e, c.CreatedAt) // the time is not used for decisions
			}
			plan.Events[c.ID] = append(plan.Events[c.ID], events...)
		}
	}
	return plan
}

// set plans SetTeam of users on c (the lead kept if listed, else the first
// listed under require_lead). A refusal is one failing pair, blamed on the
// user at fault: the deactivated newcomer, the first newcomer over the
// limit, the lead or the last member that cannot go.
func (plan *BulkPlan) set(c Customer, users []User, pol Policy) {
	events, culprit, err := c.setTeam(users, "", pol)
	if err != nil {
		plan.Errors = append(plan.Errors, pairError(Pair{CustomerID: c.ID, UserID: culprit}, err))
		return
	}
	for _, u := range users {
		if _, on := c.Member(u.ID); on {
			plan.Unchanged = append(plan.Unchanged, Pair{CustomerID: c.ID, UserID: u.ID})
		}
	}
	for _, e := range events {
		switch e := e.(type) {
		case UserAssigned:
			plan.ToBeAssigned = append(plan.ToBeAssigned, Pair{CustomerID: c.ID, UserID: e.UserID})
		case UserUnassigned:
			plan.ToBeDeassigned = append(plan.ToBeDeassigned, Pair{CustomerID: c.ID, UserID: e.UserID})
		}
	}
	if len(events) > 0 {
		plan.Events[c.ID] = events
	}
}

func pairError(p Pair, err error) PairError {
	pe := PairError{CustomerID: p.CustomerID, UserID: p.UserID, Detail: err.Error()}
	var re *RuleError
	if errors.As(err, &re) {
		pe.Code, pe.Detail = re.Code, re.Detail
	}
	return pe
}

func uniqueBy[T any](xs []T, key func(T) string) []T {
	seen := make(map[string]bool, len(xs))
	out := make([]T, 0, len(xs))
	for _, x := range xs {
		if k := key(x); !seen[k] {
			seen[k] = true
			out = append(out, x)
		}
	}
	return out
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
