package domain

import (
	"errors"
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
	userEvents, err = u.Deactivate(transferTo)
	if err != nil {
		return nil, nil, err
	}
	customerEvents = make(map[string][]Event)
	for _, c := range uniqueBy(customers, func(c Customer) string { return c.ID }) {
		m, ok := c.Member(u.ID)
		if !ok {
			continue
		}
		var events []Event
		switch {
		case transferTo == nil:
			events, err = c.Unassign(u.ID, pol)
			if err != nil {
				var re *RuleError
				if errors.As(err, &re) {
					return nil, nil, &RuleError{Code: re.Code, Detail: fmt.Sprintf("customer %s: %s", c.ID, re.Detail)}
				}
				return nil, nil, err
			}
		default:
			if _, both := c.Member(transferTo.ID); !both {
				events = []Event{TeamMemberReplaced{CustomerID: c.ID, UserID: u.ID, WithUserID: transferTo.ID, Lead: m.Lead}}
				break
			}
			if m.Lead {
				events = append(events, TeamLeadChanged{CustomerID: c.ID, UserID: transferTo.ID, PreviousUserID: u.ID})
			}
			events = append(events, UserUnassigned{CustomerID: c.ID, UserID: u.ID})
		}
		customerEvents[c.ID] = events
	}
	return userEvents, customerEvents, nil
}
