package commands

import (
	"context"

	"github.com/assignment-ledger/ledger/domain"
)

// TransferRequest hands From's customers to To.
type TransferRequest struct {
	From, To string
	// CustomerIDs limits the transfer to these customers; nil for all of
	// From's customers.
	CustomerIDs []string
	DryRun      bool
}

// TransferCustomers hands a user's customers (all, or those listed) to
// another user in the same role, without deactivating anyone (a member who
// changes territory): as deactivation with transfer_to does, a
// TeamMemberReplaced keeps the lead flag, and where the heir is already on
// the team the user is unassigned (the lead passed to the heir first).
// Admin only; all or nothing under one correlation ID, answered as a bulk
// edit's report. A listed customer the user is not on, or that does not
// exist, fails its pair (user_not_assigned, not_found) and nothing is
// written (*BulkRejectedError); with DryRun the report is answered, errors
// included.
//
// Transferring all customers locks the user's row FOR UPDATE, as a
// deactivation does: assignments of the user wait, so "all" is every
// customer the user is on at the commit. The heir is share-locked, like any
// user being assigned.
func (c *Commands) TransferCustomers(ctx context.Context, m Meta, req TransferRequest) (BulkResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return BulkResult{}, err
	}
	if len(req.CustomerIDs) > MaxBulkCustomers {
		return BulkResult{}, &domain.ValidationError{Field: "customer_ids", Detail: "at most 10000 customers per transfer"}
	}
	m, err := m.prepare()
	if err != nil {
		return BulkResult{}, err
	}
	if req.DryRun {
		m.IdempotencyKey = ""
	}
	ids, err := parseIDs("user", req.From, req.To)
	if err != nil {
		return BulkResult{}, err
	}
	from, to := ids[0], ids[1]
	var listed []string
	if req.CustomerIDs != nil {
		listed = orderedIDs(req.CustomerIDs)
	}
	return transact(ctx, c, "TransferCustomers", m, func(ctx context.Context, tx *cmdTx) (BulkResult, error) {
		var result BulkResult
		users := make(map[string]domain.User, 2)
		for _, id := range sortedUnique(ids) {
			mode := forShare
			switch {
			case req.DryRun:
				mode = noLock
			case id == from && listed == nil:
				mode = forUpdate
			}
			got, err := requireUsers(ctx, tx, m.TenantID, []string{id}, mode)
			if err != nil {
				return result, err
			}
			users[id] = got[id]
		}
		mode := forUpdate
		if req.DryRun {
			mode = noLock
		}
		customers, _, err := customersWith(ctx, c.keys, tx.Tx, m.TenantID, from, listed, mode)
		if err != nil {
			return result, err
		}
		// In the order the caller listed them.
		if listed != nil {
			byID := make(map[string]domain.Customer, len(customers))
			for _, cu := range customers {
				byID[cu.ID] = cu
			}
			customers = customers[:0]
			for _, id := range listed {
				if cu, ok := byID[id]; ok {
					customers = append(customers, cu)
				}
			}
		}
		plan, err := domain.PlanTransfer(users[from], users[to], customers, listed != nil)
		if err != nil {
			return result, err
		}
		result = BulkResult{
			ToBeAssigned:   nonNil(plan.ToBeAssigned),
			ToBeDeassigned: nonNil(plan.ToBeDeassigned),
			Unchanged:      nonNil(plan.Unchanged),
			Errors:         []domain.PairError{},
		}
		known := make(map[string]bool, len(customers))
		for _, cu := range customers {
			known[cu.ID] = true
		}
		for _, id := range listed {
			if !known[id] {
				result.Errors = append(result.Errors, domain.PairError{CustomerID: id, UserID: from, Code: CodeNotFound, Detail: "customer " + id + " does not exist"})
			}
		}
		result.Errors = append(result.Errors, plan.Errors...)
		pol, err := readPolicy(ctx, tx.Tx, m.TenantID)
		if err != nil {
			return result, err
		}
		capErrs, err := c.capacityPairErrors(ctx, tx.Tx, m.TenantID, pol, plan.ToBeAssigned, plan.ToBeDeassigned, !req.DryRun)
		if err != nil {
			return result, err
		}
		result.Errors = append(result.Errors, capErrs...)
		if req.DryRun {
			return result, nil
		}
		if len(result.Errors) > 0 {
			return result, &BulkRejectedError{Errors: result.Errors}
		}
		if len(plan.Events) == 0 && !tx.keyed() {
			return result, nil
		}
		versions := make(map[string]int64, len(customers))
		for _, cu := range customers {
			versions[cu.ID] = cu.Version
		}
		return result, tx.appendCustomers(ctx, m, plan.Events, versions, &result, &result.Position)
	})
}
