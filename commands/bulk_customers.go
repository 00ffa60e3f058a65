package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
)

// CustomerBulkRequest is POST /v1/customers/bulk: Action on every customer
// of CustomerIDs (GroupID for the group actions).
type CustomerBulkRequest struct {
	Action      domain.CustomerAction
	CustomerIDs []string
	GroupID     string
	DryRun      bool
	// Selected makes the answer list CustomerIDs (a selection by filter).
	Selected bool
	// IfMatch are the versions the one listed customer may be at
	// (ErrPreconditionFailed otherwise): DELETE /v1/customers/{id}'s If-Match.
	IfMatch []int64
}

// CustomerError is one customer a bulk action cannot be carried out on.
type CustomerError struct {
	CustomerID string `json:"customer_id"`
	Code       string `json:"code"`
}

// CustomerBulkResult is what a bulk customer action did, or with DryRun
// would do.
type CustomerBulkResult struct {
	Changed   []string        `json:"changed"`
	Unchanged []string        `json:"unchanged"`
	Errors    []CustomerError `json:"errors"`
	Position  int64           `json:"position"`
	// CustomerIDs are the customers a selection by filter covered.
	CustomerIDs []string `json:"customer_ids,omitempty"`
}

// CustomerBulkRejectedError refuses a whole bulk customer action because
// some customers cannot take it (HTTP 409); nothing was written.
type CustomerBulkRejectedError struct {
	Errors []CustomerError
}

func (e *CustomerBulkRejectedError) Error() string {
	return fmt.Sprintf("bulk action refused: %d customer(s) cannot take it", len(e.Errors))
}

// BulkCustomers blocks, unblocks, erases (delete), adds to or removes from a group every
// listed customer (admin only), all or nothing, in one append sharing one
// correlation_id. A customer already as the action would leave it is
// unchanged; an unknown one is an error with code not_found, and any error
// refuses the whole action (*CustomerBulkRejectedError). The group must
// exist (ErrNotFound otherwise); it is share-locked by a guard so that it
// cannot be deleted while customers are added to it. With DryRun the same
// report is answered and nothing is written.
func (c *Commands) BulkCustomers(ctx context.Context, m Meta, req CustomerBulkRequest) (CustomerBulkResult, error) {
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return CustomerBulkResult{}, err
	}
	switch {
	case !req.Action.Valid():
		return CustomerBulkResult{}, &domain.ValidationError{Field: "action",
			Detail: `must be "block", "unblock", "delete", "add_to_group" or "remove_from_group"`}
	case len(req.CustomerIDs) == 0:
		return CustomerBulkResult{}, &domain.ValidationError{Field: "customer_ids", Detail: "must not be empty"}
	case len(req.CustomerIDs) > MaxBulkCustomers:
		return CustomerBulkResult{}, &domain.ValidationError{Field: "customer_ids", Detail: fmt.Sprintf("at most %d customers per bulk action", MaxBulkCustomers)}
	case req.Action.NeedsGroup() && req.GroupID == "":
		return CustomerBulkResult{}, &domain.ValidationError{Field: "group_id", Detail: "is required for " + string(req.Action)}
	case !req.Action.NeedsGroup() && req.GroupID != "":
		return CustomerBulkResult{}, &domain.ValidationError{Field: "group_id", Detail: "is only for add_to_group and remove_from_group"}
	}
	m, err := m.prepare()
	if err != nil {
		return CustomerBulkResult{}, err
	}
	if req.DryRun {
		m.IdempotencyKey = ""
	}
	groupID := ""
	if req.Action.NeedsGroup() {
		var ok bool
		if groupID, ok = parseID(req.GroupID); !ok {
			return CustomerBulkResult{}, notFound("group", req.GroupID)
		}
	}
	customerIDs := orderedIDs(req.CustomerIDs)
	return transact(ctx, c, "BulkCustomers", m, func(ctx context.Context, tx *cmdTx) (CustomerBulkResult, error) {
		var result CustomerBulkResult
		groupMode, customerMode := forShare, forUpdate
		if req.DryRun {
			groupMode, customerMode = noLock, noLock
		}
		var guards []eventstore.Guard
		if groupID != "" {
			g, err := lockGroup(ctx, tx, m.TenantID, groupID, groupMode)
			if err != nil {
				return result, err
			}
			guards = []eventstore.Guard{{StreamID: groupID, Version: g.Version}}
		}
		versions, err := lockCustomers(ctx, tx, m.TenantID, sortedUnique(validIDs(customerIDs)), customerMode)
		if err != nil {
			return result, err
		}
		found := lockedOf(customerIDs, versions)
		l, err := loadCustomersWithErased(ctx, c.keys, tx, m.TenantID, found)
		if err != nil {
			return result, err
		}
		if len(customerIDs) == 1 {
			if cu, ok := l.customers[customerIDs[0]]; ok {
				if err := checkIfMatch(cu, req.IfMatch); err != nil {
					return result, err
				}
			}
		}
		result = CustomerBulkResult{Changed: []string{}, Unchanged: []string{}, Errors: []CustomerError{}}
		events := map[string][]domain.Event{}
		for _, id := range customerIDs {
			cu, ok := l.customers[id]
			if !ok {
				result.Errors = append(result.Errors, CustomerError{CustomerID: id, Code: CodeNotFound})
				continue
			}
			evs, err := domain.DecideCustomerAction(cu, req.Action, groupID)
			var rule *domain.RuleError
			switch {
			case errors.As(err, &rule):
				result.Errors = append(result.Errors, CustomerError{CustomerID: id, Code: rule.Code})
			case err != nil:
				return result, err
			case len(evs) == 0:
				result.Unchanged = append(result.Unchanged, id)
			default:
				result.Changed = append(result.Changed, id)
				events[id] = evs
			}
		}
		if req.Selected {
			result.CustomerIDs = customerIDs
		}
		if req.DryRun {
			return result, nil
		}
		if len(result.Errors) > 0 {
			return result, &CustomerBulkRejectedError{Errors: result.Errors}
		}
		if len(events) == 0 && !tx.keyed() {
			return result, nil
		}
		streams, err := customerStreams(events, versions)
		if err != nil {
			return result, err
		}
		if len(streams) == 0 {
			guards = nil // nothing is appended; the key alone is recorded
		}
		var forget []string
		var releases []eventstore.Claim
		if req.Action == domain.CustomerActionDelete && len(result.Changed) > 0 {
			// Erasure: the keys are destroyed, the claims released
			// (by value, read from the profile while it still opens)
			// and the invitations, outbox rows and idempotency
			// records naming the customers deleted, in the
			// transaction that appends CustomerErased.
			forget = slices.Sorted(slices.Values(result.Changed))
			for _, id := range forget {
				releases = append(releases, c.profileClaims(id, l.customers[id].Profile)...)
			}
			if err := keyring.Destroy(ctx, tx, m.TenantID, forget); err != nil {
				return result, err
			}
		}
		tx.name(found...)
		_, err = tx.append(ctx, eventstore.AppendRequest{
			TenantID: m.TenantID,
			Streams:  streams,
			Guards:   guards,
			Forget:   forget,
			Releases: releases,
			Metadata: m.metadata(),
			Now:      now(),
		}, &result, &result.Position)
		return result, err
	})
}
