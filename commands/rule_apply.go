package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// ruleApplier applies a tenant's assignment rules to new customers inside
// one command's transaction: it reads the rules once, locks each rule's
// stream head the first time the rule matches (after any customer heads:
// rules are locked like customers, then the users they name are
// share-locked and their capacity locked), reads its rotation's place from
// the stream's last event, and moves it on in memory as it chooses; the
// rules' AssignmentRuleApplied events are appended with the customers'.
type ruleApplier struct {
	c      *Commands
	tx     *eventstore.Tx
	tenant string
	pol    domain.Policy
	// lock is false for a dry run, which reads a picture.
	lock bool
	at   time.Time

	rules    []domain.Rule
	read     bool
	ready    map[string]bool
	versions map[string]int64
	users    map[string]domain.User
	loads    domain.Loads
	counted  map[string]bool
	admins   []string
	pending  map[string][]domain.Event
	order    []string
	// exclude are users the next choice may not pick (already on the
	// customer's team, for auto-assign).
	exclude map[string]bool
}

func (c *Commands) newRuleApplier(tx *eventstore.Tx, tenant string, pol domain.Policy, lock bool, at time.Time) *ruleApplier {
	return &ruleApplier{c: c, tx: tx, tenant: tenant, pol: pol, lock: lock, at: at, ready: map[string]bool{},
		versions: map[string]int64{}, users: map[string]domain.User{}, loads: domain.Loads{}, counted: map[string]bool{},
		pending: map[string][]domain.Event{}}
}

// rulePick is what the rules decided for one customer: Rule is "" when no
// rule matched, User is "" when the matching rule found no one eligible.
type rulePick struct {
	Rule, User string
}

// choose applies the first matching rule to cu and records the turn it
// took (AutoAssign also applies the rules to a customer with a team, to
// add one more).
func (a *ruleApplier) choose(ctx context.Context, cu domain.Customer) (rulePick, error) {
	if !a.read {
		rules, err := readRules(ctx, a.tx, a.tenant)
		if err != nil {
			return rulePick{}, err
		}
		a.rules, a.read = rules, true
	}
	for {
		r := domain.FirstMatching(a.rules, cu)
		if r == nil {
			return rulePick{}, nil
		}
		if !a.ready[r.ID] {
			if err := a.prepare(ctx, r); err != nil {
				return rulePick{}, err
			}
			if r.Deleted || !r.Match.Matches(cu) {
				continue // deleted or changed meanwhile: the next one
			}
		}
		users := a.users
		if len(a.exclude) > 0 {
			users = make(map[string]domain.User, len(a.users))
			for id, u := range a.users {
				if !a.exclude[id] {
					users[id] = u
				}
			}
		}
		ev := r.Choose(cu, users, a.loads, a.pol, a.at)
		if ev.UserID == "" && len(cu.Team) > 0 {
			// A customer with a team is not left unassigned: no turn
			// to record and nobody to tell (rule_found_no_one is for a
			// customer the rule leaves without anyone). The caller
			// still sees that the rule found no one.
			return rulePick{Rule: r.ID}, nil
		}
		if ev.UserID == "" {
			admins, err := a.adminsOf(ctx)
			if err != nil {
				return rulePick{}, err
			}
			ev.Notify = admins
		} else {
			a.loads[ev.UserID]++
		}
		r.Apply(ev)
		if len(a.pending[r.ID]) == 0 {
			a.order = append(a.order, r.ID)
		}
		a.pending[r.ID] = append(a.pending[r.ID], ev)
		return rulePick{Rule: r.ID, User: ev.UserID}, nil
	}
}

// prepare locks r's stream head, reads its current definition and its
// rotation's place, and loads its users and their customer counts.
func (a *ruleApplier) prepare(ctx context.Context, r *domain.Rule) error {
	mode := eventstore.LockUpdate
	if !a.lock {
		mode = eventstore.NoLock
	}
	versions, err := a.tx.StreamVersions(ctx, a.tenant, streamRule, []string{r.ID}, mode)
	if err != nil {
		return fmt.Errorf("lock rule: %w", err)
	}
	v, ok := versions[r.ID]
	if !ok {
		r.Deleted = true
		return nil
	}
	a.ready[r.ID], a.versions[r.ID] = true, v
	// The definition as of the lock (a change commits under it).
	var raw []byte
	var deleted bool
	if err := a.tx.QueryRow(ctx, qRule, a.tenant, r.ID).Scan(&raw, &deleted); err != nil {
		return fmt.Errorf("read rule: %w", err)
	}
	if r.Deleted = deleted; deleted {
		return nil
	}
	if err := json.Unmarshal(raw, &r.RuleBody); err != nil {
		return fmt.Errorf("read rule: %w", err)
	}
	// Every event of the stream holds the rotation's place after it: the
	// last one is enough.
	streams, err := a.tx.ReadStreamsAfter(ctx, []string{r.ID}, []int64{v - 1})
	if err != nil {
		return fmt.Errorf("read rule: %w", err)
	}
	r.Turn = 0
	for _, ev := range streams[r.ID] {
		e, err := domain.DecodeEvent(ev.Type, ev.SchemaVersion, ev.Data)
		if err != nil {
			return fmt.Errorf("rule %s: %w", r.ID, err)
		}
		if applied, ok := e.(domain.AssignmentRuleApplied); ok {
			r.Turn = applied.NextTurn
		}
	}
	var missing []string
	for _, id := range r.Assign.UserIDs {
		if _, ok := a.users[id]; !ok {
			missing = append(missing, id)
		}
	}
	userMode := forShare
	if !a.lock {
		userMode = noLock
	}
	users, err := lockUsers(ctx, a.tx, a.tenant, sortedUnique(missing), userMode)
	if err != nil {
		return err
	}
	for id, u := range users {
		a.users[id] = u
	}
	if a.pol.Capped() || r.Assign.Strategy == domain.StrategyLeastLoaded {
		var uncounted []string
		for _, id := range r.Assign.UserIDs {
			if !a.counted[id] {
				uncounted = append(uncounted, id)
			}
		}
		loads, err := userLoads(ctx, a.c.keys, a.tx, a.tenant, sortedUnique(uncounted), a.lock && a.pol.Capped())
		if err != nil {
			return err
		}
		for _, id := range uncounted {
			a.loads[id], a.counted[id] = loads[id], true
		}
	}
	return nil
}

func (a *ruleApplier) adminsOf(ctx context.Context) ([]string, error) {
	if a.admins == nil {
		admins, err := activeAdmins(ctx, a.tx, a.tenant)
		if err != nil {
			return nil, err
		}
		a.admins = append([]string{}, admins...)
	}
	return a.admins, nil
}

// noteAssigned counts a customer given to userID by other means than a
// rule in this command (an import's team), for later choices.
func (a *ruleApplier) noteAssigned(userID string) {
	if a.counted[userID] {
		a.loads[userID]++
	}
}

// streams takes the rules' pending events as stream writes, at the
// versions the earlier writes left.
func (a *ruleApplier) streams() ([]eventstore.StreamWrite, error) {
	var out []eventstore.StreamWrite
	for _, id := range a.order {
		data, err := encode(a.pending[id])
		if err != nil {
			return nil, err
		}
		out = append(out, eventstore.StreamWrite{StreamID: id, StreamType: streamRule, ExpectedVersion: a.versions[id], Events: data})
		a.versions[id] += int64(len(a.pending[id]))
	}
	a.pending, a.order = map[string][]domain.Event{}, nil
	return out, nil
}

// tagRule marks the UserAssigned of userID in events as the rule's.
func tagRule(events []domain.Event, pick rulePick) {
	if pick.User == "" {
		return
	}
	for i, e := range events {
		if ua, ok := e.(domain.UserAssigned); ok && ua.UserID == pick.User {
			ua.RuleID = pick.Rule
			events[i] = ua
		}
	}
}

// errNoEligible refuses a new customer under require_assignee whose
// matching rule found no one.
func errNoEligible(pick rulePick) error {
	return &domain.RuleError{Code: domain.CodeNoEligibleAssignee,
		Detail: fmt.Sprintf("assignment rule %s found no eligible user (all deactivated, away or at capacity), and the policy requires an assignee", pick.Rule)}
}

// ruleMembers lets the rules choose a team for a new customer created
// without one: decide is the creation's decision (with the members and
// the policy), run first without a team to see the customer the rules
// match. It answers the members to create the customer with and the
// pick, or no_eligible_assignee under require_assignee.
func (a *ruleApplier) ruleMembers(ctx context.Context, decide func(members []domain.User, pol domain.Policy) ([]domain.Event, error)) ([]domain.User, rulePick, error) {
	lenient := a.pol
	lenient.RequireAssignee = false
	events, err := decide(nil, lenient)
	if err != nil {
		return nil, rulePick{}, err
	}
	cu := domain.Customer{TenantID: a.tenant}
	for _, e := range events {
		cu.Apply(e, a.at)
	}
	pick, err := a.choose(ctx, cu)
	if err != nil {
		return nil, rulePick{}, err
	}
	if pick.User != "" {
		return []domain.User{a.users[pick.User]}, pick, nil
	}
	if pick.Rule != "" && a.pol.RequireAssignee {
		return nil, pick, errNoEligible(pick)
	}
	return nil, pick, nil
}
