package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// AutoAssign applies the assignment rules to one customer now (admin
// only): the first matching rule gives it one user not already on its
// team, assigned as AssignUser would (UserAssigned with the rule_id). No
// matching rule changes nothing; a matching rule with no one eligible is
// no_eligible_assignee under require_assignee, and otherwise changes
// nothing but records the turn and tells the admins (rule_found_no_one).
func (c *Commands) AutoAssign(ctx context.Context, m Meta, customerID string) (CustomerResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return CustomerResult{}, err
	}
	m, err := m.prepare()
	if err != nil {
		return CustomerResult{}, err
	}
	cid, ok := parseID(customerID)
	if !ok {
		return CustomerResult{}, notFound("customer", customerID)
	}
	return transact(ctx, c, "AutoAssign", m, func(ctx context.Context, tx *cmdTx) (CustomerResult, error) {
		var result CustomerResult
		versions, err := lockCustomers(ctx, tx, m.TenantID, []string{cid}, forUpdate)
		if err != nil {
			return result, err
		}
		if _, ok := versions[cid]; !ok {
			return result, notFound("customer", cid)
		}
		l, err := loadCustomers(ctx, c.keys, tx, m.TenantID, []string{cid})
		if err != nil {
			return result, err
		}
		cu := l.customers[cid]
		at := now()
		rules := c.newRuleApplier(tx.Tx, m.TenantID, l.policy, true, at)
		rules.exclude = map[string]bool{}
		for _, id := range teamIDs(cu) {
			rules.exclude[id] = true
		}
		pick, err := rules.choose(ctx, cu)
		if err != nil {
			return result, err
		}
		if pick.Rule != "" && pick.User == "" && l.policy.RequireAssignee {
			return result, errNoEligible(pick)
		}
		var events []domain.Event
		if pick.User != "" {
			if events, err = cu.Assign(rules.users[pick.User], l.policy); err != nil {
				return result, err
			}
			tagRule(events, pick)
		}
		after := cloneCustomer(cu)
		for _, e := range events {
			after.Apply(e, at)
		}
		if err := c.checkCapacity(ctx, tx.Tx, m.TenantID, l.policy, []teamChange{{before: cu, after: after}}); err != nil {
			return result, err
		}
		if err := c.fillNames(ctx, tx, m.TenantID, teamIDs(after)); err != nil {
			return result, err
		}
		result = CustomerResult{CustomerView: c.customerView(after), Position: l.lastPosition[cid]}
		ruleStreams, err := rules.streams()
		if err != nil {
			return result, err
		}
		if len(events) == 0 && len(ruleStreams) == 0 && !tx.keyed() {
			return result, nil
		}
		var streams []eventstore.StreamWrite
		if len(events) > 0 {
			data, err := encode(events)
			if err != nil {
				return result, err
			}
			streams = append(streams, eventstore.StreamWrite{StreamID: cid, StreamType: streamCustomer, ExpectedVersion: versions[cid], Events: data})
		}
		res, err := tx.append(ctx, eventstore.AppendRequest{
			TenantID: m.TenantID,
			Streams:  append(streams, ruleStreams...),
			Metadata: m.metadata(),
			Now:      at,
		}, &result, &result.Position)
		if err != nil {
			return result, err
		}
		if res.Position != 0 {
			result.Position = res.Position
		}
		return result, nil
	})
}
