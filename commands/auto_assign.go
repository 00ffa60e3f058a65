package commands

import (
	"context"
	"errors"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// AutoAssign applies the assignment rules to one customer now (admin
// only): the first matching rule gives it one user not already on its
// team, assigned as AssignUser would (UserAssigned with the rule_id). No
// matching rule changes nothing; a matching rule with no one eligible is
// no_eligible_assignee under require_assignee, and otherwise changes
// nothing but, for a customer without a team, records the turn and tells
// the admins (rule_found_no_one).
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

// BulkAutoAssign applies the assignment rules to every listed customer
// (admin only), all or nothing, as AutoAssign does for one: the answer is
// the BulkEdit report (to_be_assigned the rules' picks; unchanged the
// customers no rule matches, or, without require_assignee, whose rule found
// no one; errors the rest). With dryRun nothing is written (the rotation's
// turns are those a real run would take now).
func (c *Commands) BulkAutoAssign(ctx context.Context, m Meta, customerIDs []string, dryRun, selected bool) (BulkResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return BulkResult{}, err
	}
	switch {
	case len(customerIDs) == 0:
		return BulkResult{}, &domain.ValidationError{Field: "customer_ids", Detail: "must not be empty"}
	case len(customerIDs) > MaxBulkCustomers:
		return BulkResult{}, &domain.ValidationError{Field: "customer_ids", Detail: "too many customers for one bulk edit"}
	}
	m, err := m.prepare()
	if err != nil {
		return BulkResult{}, err
	}
	if dryRun {
		m.IdempotencyKey = ""
	}
	ids := orderedIDs(customerIDs)
	return transact(ctx, c, "BulkAutoAssign", m, func(ctx context.Context, tx *cmdTx) (BulkResult, error) {
		result := BulkResult{ToBeAssigned: []domain.Pair{}, ToBeDeassigned: []domain.Pair{}, Unchanged: []domain.Pair{}, Errors: []domain.PairError{}}
		if selected {
			result.CustomerIDs = ids
		}
		mode := forUpdate
		if dryRun {
			mode = noLock
		}
		versions, err := lockCustomers(ctx, tx, m.TenantID, sortedUnique(validIDs(ids)), mode)
		if err != nil {
			return result, err
		}
		found := lockedOf(ids, versions)
		l, err := loadCustomersWithErased(ctx, c.keys, tx, m.TenantID, found)
		if err != nil {
			return result, err
		}
		at := now()
		rules := c.newRuleApplier(tx.Tx, m.TenantID, l.policy, !dryRun, at)
		events := map[string][]domain.Event{}
		for _, id := range ids {
			cu, ok := l.customers[id]
			switch {
			case !ok:
				result.Errors = append(result.Errors, domain.PairError{CustomerID: id, Code: CodeNotFound, Detail: "customer " + id + " does not exist"})
				continue
			case cu.Erased:
				result.Errors = append(result.Errors, domain.PairError{CustomerID: id, Code: domain.CodeErased, Detail: "customer " + id + " was erased"})
				continue
			}
			rules.exclude = map[string]bool{}
			for _, uid := range teamIDs(cu) {
				rules.exclude[uid] = true
			}
			pick, err := rules.choose(ctx, cu)
			if err != nil {
				return result, err
			}
			switch {
			case pick.User == "" && pick.Rule != "" && l.policy.RequireAssignee:
				result.Errors = append(result.Errors, domain.PairError{CustomerID: id, Code: domain.CodeNoEligibleAssignee, Detail: errNoEligible(pick).(*domain.RuleError).Detail})
				continue
			case pick.User == "":
				result.Unchanged = append(result.Unchanged, domain.Pair{CustomerID: id})
				continue
			}
			evs, err := cu.Assign(rules.users[pick.User], l.policy)
			if err != nil {
				var re *domain.RuleError
				if errors.As(err, &re) {
					result.Errors = append(result.Errors, domain.PairError{CustomerID: id, UserID: pick.User, Code: re.Code, Detail: re.Detail})
					continue
				}
				return result, err
			}
			tagRule(evs, pick)
			events[id] = evs
			result.ToBeAssigned = append(result.ToBeAssigned, domain.Pair{CustomerID: id, UserID: pick.User})
		}
		if dryRun {
			return result, nil
		}
		if len(result.Errors) > 0 {
			return result, &BulkRejectedError{Errors: result.Errors}
		}
		streams, err := customerStreams(events, versions)
		if err != nil {
			return result, err
		}
		ruleStreams, err := rules.streams()
		if err != nil {
			return result, err
		}
		streams = append(streams, ruleStreams...)
		if len(streams) == 0 && !tx.keyed() {
			return result, nil
		}
		tx.name(found...)
		res, err := tx.append(ctx, eventstore.AppendRequest{
			TenantID: m.TenantID,
			Streams:  streams,
			Metadata: m.metadata(),
			Now:      at,
		}, &result, &result.Position)
		if err != nil {
			return result, err
		}
		result.Position = res.Position
		return result, nil
	})
}
