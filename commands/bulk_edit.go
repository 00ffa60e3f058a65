package commands

import (
	"context"
	"fmt"
	"slices"

	"github.com/assignment-ledger/ledger/domain"
)

// Limits of one bulk edit.
const (
	MaxBulkCustomers = 10_000
	MaxBulkUsers     = 100
)

// BulkRequest applies Action ("add" or "remove") to every pair of
// CustomerIDs × UserIDs, or ("set") makes every customer's team exactly
// UserIDs.
type BulkRequest struct {
	Action      string
	CustomerIDs []string
	UserIDs     []string
	DryRun      bool
	// Selected makes the answer list CustomerIDs: they were selected by a
	// filter, and the caller must learn which customers the edit covered.
	Selected bool
}

// BulkResult is what a bulk edit did, or with DryRun would do.
type BulkResult struct {
	ToBeAssigned   []domain.Pair      `json:"to_be_assigned"`
	ToBeDeassigned []domain.Pair      `json:"to_be_deassigned"`
	Unchanged      []domain.Pair      `json:"unchanged"`
	Errors         []domain.PairError `json:"errors"`
	Position       int64              `json:"position"`
	// CustomerIDs are the customers a selection by filter covered.
	CustomerIDs []string `json:"customer_ids,omitempty"`
}

// BulkEdit adds or removes every listed user on every listed customer, or
// sets every listed customer's team to exactly the listed users (SetTeam
// for each, the lead kept if listed, else the first listed under
// require_lead), all or nothing. Admins may do all of it; members may only
// add or remove themselves alone, when the policy lets them self-assign.
// Each add or remove pair is decided under the same rules as AssignUser /
// UnassignUser, against the customer as the earlier pairs left it; each
// set is judged on the resulting team. If any pair fails, nothing is written and the answer is a
// *BulkRejectedError listing every failing pair; with DryRun the plan is
// answered, errors included, and nothing is written.
//
// An unknown customer or user ID (or another tenant's) fails its pairs
// with code "not_found" rather than the whole request with ErrNotFound, and
// an erased customer its pairs with code "erased" rather than the whole
// request with ErrErased, so that one call reports every problem.
func (c *Commands) BulkEdit(ctx context.Context, m Meta, req BulkRequest) (BulkResult, error) {
	action := domain.BulkAction(req.Action)
	switch {
	case !action.Valid():
		return BulkResult{}, &domain.ValidationError{Field: "action", Detail: `must be "add", "remove" or "set"`}
	case len(req.CustomerIDs) == 0:
		return BulkResult{}, &domain.ValidationError{Field: "customer_ids", Detail: "must not be empty"}
	case len(req.UserIDs) == 0 && action != domain.BulkSet:
		return BulkResult{}, &domain.ValidationError{Field: "user_ids", Detail: "must not be empty"}
	case len(req.CustomerIDs) > MaxBulkCustomers:
		return BulkResult{}, &domain.ValidationError{Field: "customer_ids", Detail: fmt.Sprintf("at most %d customers per bulk edit", MaxBulkCustomers)}
	case len(req.UserIDs) > MaxBulkUsers:
		return BulkResult{}, &domain.ValidationError{Field: "user_ids", Detail: fmt.Sprintf("at most %d users per bulk edit", MaxBulkUsers)}
	}
	m, err := m.prepare()
	if err != nil {
		return BulkResult{}, err
	}
	if req.DryRun {
		m.IdempotencyKey = "" // a dry run writes nothing, so there is nothing to replay
	}
	customerIDs, userIDs := orderedIDs(req.CustomerIDs), orderedIDs(req.UserIDs)
	// Refuse a member acting on others before touching the database; the
	// policy (may members self-assign?) is checked once loaded.
	if err := domain.AuthorizeBulk(m.Actor, domain.Policy{MembersCanSelfAssign: true}, action, userIDs); err != nil {
		return BulkResult{}, err
	}
	return transact(ctx, c, "BulkEdit", m, func(ctx context.Context, tx *cmdTx) (BulkResult, error) {
		var result BulkResult
		userMode, customerMode := forShare, forUpdate
		if req.DryRun {
			userMode, customerMode = noLock, noLock
		}
		users, err := lockUsers(ctx, tx, m.TenantID, sortedUnique(validIDs(userIDs)), userMode)
		if err != nil {
			return result, err
		}
		versions, err := lockCustomers(ctx, tx, m.TenantID, sortedUnique(validIDs(customerIDs)), customerMode)
		if err != nil {
			return result, err
		}
		found := lockedOf(customerIDs, versions)
		// An erased customer fails its pairs (code erased) like any
		// other bad pair, rather than the whole call with 410.
		l, err := loadCustomersWithErased(ctx, c.keys, tx, m.TenantID, found)
		if err != nil {
			return result, err
		}
		if err := domain.AuthorizeBulk(m.Actor, l.policy, action, userIDs); err != nil {
			return result, err
		}
		// A customer the member may not see is an unknown one (its pairs
		// answer not_found), so a bulk edit reveals no hidden customer.
		found = slices.DeleteFunc(found, func(id string) bool {
			if l.policy.Sees(m.Actor, l.customers[id]) {
				return false
			}
			delete(versions, id)
			delete(l.customers, id)
			return true
		})
		customers := make([]domain.Customer, 0, len(found))
		for _, id := range found {
			if cu := l.customers[id]; !cu.Erased {
				customers = append(customers, cu)
			}
		}
		var planUsers []domain.User
		for _, id := range userIDs {
			if u, ok := users[id]; ok {
				planUsers = append(planUsers, u)
			}
		}
		plan := domain.PlanBulk(action, customers, planUsers, l.policy)

		result = BulkResult{
			ToBeAssigned:   nonNil(plan.ToBeAssigned),
			ToBeDeassigned: nonNil(plan.ToBeDeassigned),
			Unchanged:      nonNil(plan.Unchanged),
			Errors:         []domain.PairError{},
		}
		for _, cid := range customerIDs {
			_, knownCustomer := versions[cid]
			if cu, ok := l.customers[cid]; ok && cu.Erased {
				for _, uid := range userIDs {
					result.Errors = append(result.Errors, domain.PairError{CustomerID: cid, UserID: uid, Code: domain.CodeErased,
						Detail: "customer " + cid + " was erased"})
				}
				continue
			}
			for _, uid := range userIDs {
				if _, knownUser := users[uid]; knownCustomer && knownUser {
					continue
				}
				what := "user " + uid
				if !knownCustomer {
					what = "customer " + cid
				}
				result.Errors = append(result.Errors, domain.PairError{CustomerID: cid, UserID: uid, Code: CodeNotFound, Detail: what + " does not exist"})
			}
		}
		result.Errors = append(result.Errors, plan.Errors...)
		capErrs, err := c.capacityPairErrors(ctx, tx.Tx, m.TenantID, l.policy, plan.ToBeAssigned, plan.ToBeDeassigned, !req.DryRun)
		if err != nil {
			return result, err
		}
		result.Errors = append(result.Errors, capErrs...)
		if req.Selected {
			result.CustomerIDs = customerIDs
		}
		if req.DryRun {
			return result, nil
		}
		if len(result.Errors) > 0 {
			return result, &BulkRejectedError{Errors: result.Errors}
		}
		if len(plan.Events) == 0 && !tx.keyed() {
			return result, nil
		}
		return result, tx.appendCustomers(ctx, m, plan.Events, versions, &result, &result.Position)
	})
}

// orderedIDs drops duplicates, keeping the first occurrence's place, and
// canonicalizes valid UUIDs; invalid IDs are kept as given (they fail as
// not_found).
func orderedIDs(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if p, ok := parseID(id); ok {
			id = p
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func validIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, ok := parseID(id); ok {
			out = append(out, id)
		}
	}
	return out
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
