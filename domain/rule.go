package domain

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Assignment rules (contract v3): a tenant's rules give a new customer
// without a team one user, chosen by the first rule (by Order) that
// matches it. A rule is a stream: AssignmentRuleCreated, Changed and
// Deleted carry its definition, and AssignmentRuleApplied records each
// turn it gave (or found no one for), so its rotation is a fold of its
// own events: a replay gives the same turns, and two processes, which
// append to the stream at the version they read, never give one twice.

// Rule strategies.
const (
	StrategyRoundRobin  = "round_robin"
	StrategyWeighted    = "weighted"
	StrategyLeastLoaded = "least_loaded"
)

// Rule limits.
const (
	MaxRuleUsers  = 100
	MaxRuleWeight = 100
)

// CodeNoEligibleAssignee refuses creating a customer under require_assignee
// when the matching rule finds no one to assign (a 422, like team_required).
const CodeNoEligibleAssignee = "no_eligible_assignee"

// Domains is the match's email_domain: one domain or a list.
type Domains []string

// UnmarshalJSON takes a string or a list of strings.
func (d *Domains) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*d = Domains{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return invalid("match.email_domain", "must be a domain or a list of domains")
	}
	*d = many
	return nil
}

// RuleMatch is what a customer must have for the rule to apply; every set
// field must hold, and an empty match matches every customer.
type RuleMatch struct {
	EmailDomain      Domains `json:"email_domain,omitempty"`
	Group            string  `json:"group,omitempty"`
	TitleContains    string  `json:"title_contains,omitempty"`
	ExternalIDPrefix string  `json:"external_id_prefix,omitempty"`
}

// RuleAssign is whom a rule assigns and how it picks one.
type RuleAssign struct {
	UserIDs  []string       `json:"user_ids"`
	Strategy string         `json:"strategy"`
	Weights  map[string]int `json:"weights,omitempty"`
}

// RuleBody is a rule's definition as its events carry it.
type RuleBody struct {
	Name   string     `json:"name"`
	Match  RuleMatch  `json:"match"`
	Assign RuleAssign `json:"assign"`
	Order  int        `json:"order"`
}

// Rule is an assignment rule, folded from its stream.
type Rule struct {
	ID string
	RuleBody
	Deleted bool
	// Turn is the rotation's next place (round_robin and weighted): it
	// moves past each user the rule gives a customer, and starts over when
	// the rule is changed.
	Turn int
	// Version is the number of events applied, i.e. the stream version.
	Version int64
}

// Apply evolves r by one event of its stream.
func (r *Rule) Apply(e Event) {
	switch e := e.(type) {
	case AssignmentRuleCreated:
		r.ID, r.RuleBody = e.RuleID, e.RuleBody
	case AssignmentRuleChanged:
		r.RuleBody, r.Turn = e.RuleBody, 0
	case AssignmentRuleDeleted:
		r.Deleted = true
	case AssignmentRuleApplied:
		if e.UserID != "" {
			r.Turn = e.NextTurn
		}
	}
	r.Version++
}

// NormalizeRule checks a rule's definition and returns it cleaned:
// domains lower-cased without "@", user IDs without duplicates, weights
// only for listed users (weighted needs one, 1–100, for each).
func NormalizeRule(b RuleBody) (RuleBody, error) {
	name, err := normalizeName("name", b.Name, true)
	if err != nil {
		return b, err
	}
	b.Name = name
	var domains Domains
	for _, d := range b.Match.EmailDomain {
		if err := checkLine("match.email_domain", d); err != nil {
			return b, err
		}
		d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
		if d == "" || strings.ContainsAny(d, "@ ") {
			return b, invalid("match.email_domain", "must be e-mail domains like \"acme.example\"")
		}
		if !slices.Contains(domains, d) {
			domains = append(domains, d)
		}
	}
	b.Match.EmailDomain = domains
	for field, v := range map[string]string{"match.group": b.Match.Group, "match.title_contains": b.Match.TitleContains,
		"match.external_id_prefix": b.Match.ExternalIDPrefix} {
		if err := checkLine(field, v); err != nil {
			return b, err
		}
	}
	b.Match.TitleContains = strings.TrimSpace(b.Match.TitleContains)
	if len(b.Assign.UserIDs) == 0 {
		return b, invalid("assign.user_ids", "must name at least one user")
	}
	if len(b.Assign.UserIDs) > MaxRuleUsers {
		return b, invalid("assign.user_ids", fmt.Sprintf("at most %d users", MaxRuleUsers))
	}
	var ids []string
	for _, id := range b.Assign.UserIDs {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	b.Assign.UserIDs = ids
	switch b.Assign.Strategy {
	case StrategyRoundRobin, StrategyLeastLoaded:
		if len(b.Assign.Weights) > 0 {
			return b, invalid("assign.weights", "only the weighted strategy takes weights")
		}
		b.Assign.Weights = nil
	case StrategyWeighted:
		for id := range b.Assign.Weights {
			if !slices.Contains(ids, id) {
				return b, invalid("assign.weights", "weighs user "+id+", who is not in user_ids")
			}
		}
		for _, id := range ids {
			if w := b.Assign.Weights[id]; w < 1 || w > MaxRuleWeight {
				return b, invalid("assign.weights", fmt.Sprintf("needs a weight from 1 to %d for every user (user %s)", MaxRuleWeight, id))
			}
		}
	default:
		return b, invalid("assign.strategy", `must be "round_robin", "weighted" or "least_loaded"`)
	}
	if b.Order < 0 || b.Order > 1_000_000 {
		return b, invalid("order", "must be from 0 to 1000000")
	}
	return b, nil
}

// Matches reports whether the rule applies to c.
func (m RuleMatch) Matches(c Customer) bool {
	if len(m.EmailDomain) > 0 {
		at := strings.LastIndexByte(c.Profile.Email, '@')
		if at < 0 || !slices.Contains(m.EmailDomain, strings.ToLower(c.Profile.Email[at+1:])) {
			return false
		}
	}
	if m.Group != "" && !slices.Contains(c.Groups, m.Group) {
		return false
	}
	if m.TitleContains != "" && !strings.Contains(strings.ToLower(c.Profile.Title), strings.ToLower(m.TitleContains)) {
		return false
	}
	if m.ExternalIDPrefix != "" && !strings.HasPrefix(c.Profile.ExternalID, m.ExternalIDPrefix) {
		return false
	}
	return true
}

// rotation is the cycle a round_robin or weighted rule walks: the users
// in order, or each repeated by its weight, interleaved (smooth weighted
// round robin, so weights 2:1 give a, b, a rather than a, a, b).
func (b RuleBody) rotation() []string {
	if b.Assign.Strategy != StrategyWeighted {
		return b.Assign.UserIDs
	}
	total := 0
	for _, id := range b.Assign.UserIDs {
		total += b.Assign.Weights[id]
	}
	current := make([]int, len(b.Assign.UserIDs))
	out := make([]string, 0, total)
	for range total {
		best := 0
		for i, id := range b.Assign.UserIDs {
			current[i] += b.Assign.Weights[id]
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		out = append(out, b.Assign.UserIDs[best])
	}
	return out
}

// Eligible reports whether u may be given a customer by a rule at now:
// active, not an auditor, not away, and not at the policy's capacity.
func Eligible(u User, now time.Time, pol Policy, loads Loads) bool {
	return u.Active() && u.Role != RoleAuditor && !u.Away(now) && !pol.AtCapacity(loads[u.ID])
}

// Choose decides whom r gives customer c at now: the first eligible user
// from its turn on (round_robin, weighted), or the eligible user with the
// fewest customers, the first listed among equals (least_loaded). users
// holds the rule's users (an unknown one is not eligible), loads their
// customers. It answers the AssignmentRuleApplied to record, with no
// UserID when nobody is eligible.
func (r Rule) Choose(c Customer, users map[string]User, loads Loads, pol Policy, now time.Time) AssignmentRuleApplied {
	ev := AssignmentRuleApplied{RuleID: r.ID, CustomerID: c.ID, NextTurn: r.Turn}
	eligible := func(id string) bool {
		u, ok := users[id]
		return ok && Eligible(u, now, pol, loads)
	}
	if r.Assign.Strategy == StrategyLeastLoaded {
		best := ""
		for _, id := range r.Assign.UserIDs {
			if eligible(id) && (best == "" || loads[id] < loads[best]) {
				best = id
			}
		}
		ev.UserID = best
		return ev
	}
	cycle := r.rotation()
	for k := range cycle {
		i := (r.Turn + k) % len(cycle)
		if eligible(cycle[i]) {
			ev.UserID, ev.NextTurn = cycle[i], (i+1)%len(cycle)
			return ev
		}
	}
	return ev
}

// FirstMatching is the first of rules (sorted by Order, then ID) that is
// not deleted and matches c; nil when none does.
func FirstMatching(rules []Rule, c Customer) *Rule {
	for i := range rules {
		if !rules[i].Deleted && rules[i].Match.Matches(c) {
			return &rules[i]
		}
	}
	return nil
}

// SortRules orders rules as they are tried: by Order, then by ID (the
// older rule first, IDs being time-ordered).
func SortRules(rules []Rule) {
	slices.SortFunc(rules, func(a, b Rule) int {
		if a.Order != b.Order {
			return a.Order - b.Order
		}
		return strings.Compare(a.ID, b.ID)
	})
}
