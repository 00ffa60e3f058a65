package domain

import "fmt"

// MaxCustomersPerUserLimit bounds max_customers_per_user.
const MaxCustomersPerUserLimit = 1_000_000

// CodeUserAtCapacity refuses giving a user one more customer than the
// policy's max_customers_per_user.
const CodeUserAtCapacity = "user_at_capacity"

// Loads is how many customers each user serves, as the caller counted
// them under its per-user capacity locks; the commands of one transaction
// move it on with Move as they decide.
type Loads map[string]int

// Capped reports whether p caps customers per user.
func (p Policy) Capped() bool { return p.MaxCustomersPerUser != nil }

// AtCapacity reports whether a user serving n customers may not take one
// more under p.
func (p Policy) AtCapacity(n int) bool {
	return p.MaxCustomersPerUser != nil && n >= *p.MaxCustomersPerUser
}

// Gained lists the users on after's team that were not on before's.
func Gained(before, after Customer) []string {
	var out []string
	for _, m := range after.Team {
		if _, on := before.Member(m.UserID); !on {
			out = append(out, m.UserID)
		}
	}
	return out
}

// Lost lists the users on before's team that are not on after's.
func Lost(before, after Customer) []string {
	return Gained(after, before)
}

// CheckCapacity refuses the change of a customer's team from before to
// after when it gives a user a customer beyond p's max_customers_per_user,
// counting loads (which must hold every gained user). An erased customer
// changes nobody's load.
func (p Policy) CheckCapacity(loads Loads, before, after Customer) error {
	if !p.Capped() {
		return nil
	}
	for _, id := range Gained(before, after) {
		if p.AtCapacity(loads[id]) {
			return ruleErr(CodeUserAtCapacity, "user %s already serves %d customers, the most the policy allows (max_customers_per_user)", id, loads[id])
		}
	}
	return nil
}

// Move records in loads the change of one customer's team from before to
// after.
func (l Loads) Move(before, after Customer) {
	for _, id := range Gained(before, after) {
		l[id]++
	}
	for _, id := range Lost(before, after) {
		l[id]--
	}
}

// CapacityErrors lists, for a plan that gives users the customers of
// gained and takes those of lost, the gained pairs over p's cap: for each
// user, the last pairs past the cap once the losses are counted. loads
// holds each user's customers before the plan.
func (p Policy) CapacityErrors(loads Loads, gained, lost []Pair) []PairError {
	if !p.Capped() || len(gained) == 0 {
		return nil
	}
	final := Loads{}
	for id, n := range loads {
		final[id] = n
	}
	for _, pr := range gained {
		final[pr.UserID]++
	}
	for _, pr := range lost {
		final[pr.UserID]--
	}
	over := map[string]int{}
	for id, n := range final {
		if n > *p.MaxCustomersPerUser {
			over[id] = n - *p.MaxCustomersPerUser
		}
	}
	var out []PairError
	for i := len(gained) - 1; i >= 0; i-- {
		pr := gained[i]
		if over[pr.UserID] > 0 {
			over[pr.UserID]--
			out = append(out, PairError{CustomerID: pr.CustomerID, UserID: pr.UserID, Code: CodeUserAtCapacity,
				Detail: fmt.Sprintf("user %s would serve more than %d customers (max_customers_per_user)", pr.UserID, *p.MaxCustomersPerUser)})
		}
	}
	// In the plan's order.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
