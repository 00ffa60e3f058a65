package domain

import (
	"fmt"
)

// DeactivateUser decides the deactivation of u. customers are all customers
// whose team currently contains u (others are ignored).
//
// With transferTo, each customer is handed to transferTo in u's role: a
// TeamMemberReplaced keeps the lead flag. When transferTo is already on a
// customer's team, u is unassigned instead, and if u was lead a
// TeamLeadChanged to transferTo comes first, so the team is never without
// its lead. No policy rule can break on this path: sizes only shrink or stay,
// and a team holding both users never drops to zero.
//
// Without transferTo, u is unassigned from every customer under the usual
// Unassign rules; if any customer refuses, the whole deactivation is refused
// with the first such RuleError (its Detail names the customer), and no
// event at all is returned.
func DeactivateUser(u User, transferTo *User, customers []Customer, pol Policy) (userEvents []Event, customerEvents map[string][]Event, err error) {
	plan, err := PlanDeactivation(u, transferTo, customers, pol)
	if err != nil {
		return nil, nil, err
	}
	if len(plan.Errors) > 0 {
		e := plan.Errors[0]
		return nil, nil, &RuleError{Code: e.Code, Detail: fmt.Sprintf("customer %s: %s", e.CustomerID, e.Detail)}
	}
	return plan.UserEvents, plan.CustomerEvents, nil
}

// DeactivationPlan is what a deactivation would do: the user's events, and
// by customer the events that hand it over or take the user off it.
// Errors lists every customer whose policy refuses (without transferTo);
// the deactivation happens only when it is empty.
type DeactivationPlan struct {
	UserEvents     []Event
	CustomerEvents map[string][]Event
	// Leaving lists the customers the user leaves, in the order given.
	Leaving []string
	Errors  []PairError
}

// PlanDeactivation plans DeactivateUser, reporting every refusing customer
// instead of the first (a dry run's preview). err is a refusal of the user
// itself (already deactivated, transfer to self or to a deactivated user).
func PlanDeactivation(u User, transferTo *User, customers []Customer, pol Policy) (DeactivationPlan, error) {
	userEvents, err := u.Deactivate(transferTo)
	if err != nil {
		return DeactivationPlan{}, err
	}
	plan := DeactivationPlan{UserEvents: userEvents, CustomerEvents: make(map[string][]Event)}
	for _, c := range uniqueBy(customers, func(c Customer) string { return c.ID }) {
		if _, ok := c.Member(u.ID); !ok {
			continue
		}
		var events []Event
		if transferTo == nil {
			events, err = c.Unassign(u.ID, pol)
			if err != nil {
				plan.Errors = append(plan.Errors, pairError(Pair{CustomerID: c.ID, UserID: u.ID}, err))
				continue
			}
		} else {
			events = handOver(c, u.ID, transferTo.ID)
		}
		plan.CustomerEvents[c.ID] = events
		plan.Leaving = append(plan.Leaving, c.ID)
	}
	return plan, nil
}

// handOver decides handing from's place on c's team to to, in the same
// role: a TeamMemberReplaced keeps the lead flag; when to is already on the
// team, from is unassigned instead, after a TeamLeadChanged to to if from
// led, so the team is never without its lead. No policy rule can break:
// sizes only shrink or stay, and a team holding both never drops to zero.
func handOver(c Customer, from, to string) []Event {
	m, _ := c.Member(from)
	if _, both := c.Member(to); !both {
		return []Event{TeamMemberReplaced{CustomerID: c.ID, UserID: from, WithUserID: to, Lead: m.Lead}}
	}
	var events []Event
	if m.Lead {
		events = append(events, TeamLeadChanged{CustomerID: c.ID, UserID: to, PreviousUserID: from})
	}
	return append(events, UserUnassigned{CustomerID: c.ID, UserID: from})
}

// TransferPlan is what a transfer of a user's customers would do, in the
// shape of a bulk edit's report.
type TransferPlan struct {
	ToBeAssigned   []Pair
	ToBeDeassigned []Pair
	Unchanged      []Pair
	Errors         []PairError
	Events         map[string][]Event
}

// PlanTransfer plans handing from's customers to to in the same role
// without deactivating anyone (a member who changes territory), as
// deactivation with transfer_to does. customers are the candidates; with
// listed (the caller named them) a customer from is not on fails with
// user_not_assigned, otherwise it is skipped. For each customer handed
// over, (customer, from) is to be deassigned and (customer, to) to be
// assigned, or unchanged when to is on the team already. err refuses the
// whole transfer: to is from (transfer_to_self) or deactivated.
func PlanTransfer(from, to User, customers []Customer, listed bool) (TransferPlan, error) {
	if from.ID == to.ID {
		return TransferPlan{}, ruleErr(CodeTransferToSelf, "a user cannot transfer customers to themselves")
	}
	if !to.Active() {
		return TransferPlan{}, ruleErr(CodeUserDeactivated, "user %s is deactivated", to.ID)
	}
	if err := to.assignable(); err != nil {
		return TransferPlan{}, err
	}
	plan := TransferPlan{Events: make(map[string][]Event)}
	for _, c := range uniqueBy(customers, func(c Customer) string { return c.ID }) {
		if _, ok := c.Member(from.ID); !ok {
			if listed {
				plan.Errors = append(plan.Errors, pairError(Pair{CustomerID: c.ID, UserID: from.ID},
					ruleErr(CodeUserNotAssigned, "user %s is not assigned to customer %s", from.ID, c.ID)))
			}
			continue
		}
		heir := Pair{CustomerID: c.ID, UserID: to.ID}
		if _, on := c.Member(to.ID); on {
			plan.Unchanged = append(plan.Unchanged, heir)
		} else {
			plan.ToBeAssigned = append(plan.ToBeAssigned, heir)
		}
		plan.ToBeDeassigned = append(plan.ToBeDeassigned, Pair{CustomerID: c.ID, UserID: from.ID})
		plan.Events[c.ID] = handOver(c, from.ID, to.ID)
	}
	return plan, nil
}
