package http

import (
	"context"
	nethttp "net/http"
	"strings"

	"github.com/assignment-ledger/ledger/projections"
)

// bulkFilterDoc is a bulk call's selection by filter: the customer list's
// filters, as JSON.
type bulkFilterDoc struct {
	Q            string `json:"q"`
	Status       string `json:"status"`
	AssignedUser string `json:"assigned_user"`
	Group        string `json:"group"`
}

// bulkSelection returns the customers a bulk call names: customer_ids as
// given, or every customer matching filter at the time of the call (then
// selected is true and the answer lists them). The filter is answered by
// the customer list's read model, after waiting until it has processed
// every event committed before the call, so a caller's own earlier
// commands are seen. Over maxBulkCustomers matches is a *tooManyError.
//
// view (v3), when not "", is a saved view's ID standing for filter: the
// view's filter selects.
func (s *Server) bulkSelection(r *nethttp.Request, ids []string, doc *bulkFilterDoc, view string) (out []string, selected bool, err error) {
	switch {
	case view != "" && (doc != nil || ids != nil):
		return nil, false, badRequest("invalid_input", "view", "send one of customer_ids, filter or view")
	case doc != nil && ids != nil:
		return nil, false, badRequest("invalid_input", "filter", "send customer_ids or filter, not both")
	case doc == nil && view == "":
		if len(ids) == 0 {
			return nil, false, badRequest("invalid_input", "customer_ids", "customer_ids must not be empty (or send a filter)")
		}
		if len(ids) > maxBulkCustomers {
			return nil, false, &tooManyError{count: len(ids)}
		}
		for _, id := range ids {
			cid, err := resolveID(r.Context(), id, "customer_ids")
			if err != nil || id == "me" {
				return nil, false, badRequest("invalid_id", "customer_ids", "customer id %q is not a UUID", id)
			}
			out = append(out, cid)
		}
		return out, false, nil
	}
	var f projections.CustomerFilter
	if view != "" {
		f, err = s.viewFilter(r, view, "view")
	} else {
		f, err = filterOf(r, doc.Q, doc.Status, doc.AssignedUser, doc.Group, "filter.")
	}
	if err != nil {
		return nil, false, err
	}
	tenant := principal(r.Context()).TenantID
	if err := s.waitForHead(r.Context(), tenant, f); err != nil {
		return nil, false, err
	}
	n, err := s.q.CountCustomers(r.Context(), tenant, f)
	if err != nil {
		return nil, false, err
	}
	if n > maxBulkCustomers {
		return nil, false, &tooManyError{count: n}
	}
	out = make([]string, 0, n)
	err = s.q.EachCustomer(r.Context(), tenant, f, func(c projections.CustomerItem) error {
		out = append(out, c.ID)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if len(out) > maxBulkCustomers { // grew between the count and the read
		return nil, false, &tooManyError{count: len(out)}
	}
	if len(out) == 0 {
		field := "filter"
		if view != "" {
			field = "view"
		}
		return nil, false, badRequest("invalid_input", field, "the %s matches no customer", field)
	}
	return out, true, nil
}

// waitForHead waits (at most maxPositionWait) until the read models a
// filter reads have processed every event of the tenant committed so far.
func (s *Server) waitForHead(ctx context.Context, tenant string, f projections.CustomerFilter) error {
	pos, err := s.cmd.LastPosition(ctx, tenant)
	if err != nil || pos == 0 {
		return err
	}
	names := []string{pCustomers}
	for g := &f; g != nil; g = g.Also {
		if g.AssignedUser != "" || len(g.AssignedUsers) > 0 {
			names = append(names, pMyClients)
		}
		if g.Group != "" {
			names = append(names, pGroups)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, maxPositionWait)
	defer cancel()
	return s.proj.WaitFor(ctx, pos, names...)
}

// filterOf checks the customer list's filters; prefix names their fields in
// errors ("filter." inside a bulk body, "" for query parameters).
// assigned_user is a user ID, "me", "none", or several IDs separated by
// commas (customers assigned to any of them); group is a group ID.
func filterOf(r *nethttp.Request, q, status, assignedUser, group, prefix string) (projections.CustomerFilter, error) {
	f := projections.CustomerFilter{Q: strings.TrimSpace(q), Status: status}
	if group != "" {
		id, err := resolveID(r.Context(), group, prefix+"group")
		if err != nil || group == "me" {
			return f, badRequest("invalid_id", prefix+"group", "group %q is not a UUID", group)
		}
		f.Group = id
	}
	if len(f.Q) > 200 {
		return f, badRequest("invalid_input", prefix+"q", "q is longer than 200 characters")
	}
	switch f.Status {
	case "", "active", "invited", "blocked":
	default:
		return f, badRequest("invalid_input", prefix+"status", "status must be active, invited or blocked")
	}
	switch parts := strings.Split(assignedUser, ","); {
	case assignedUser == "":
	case assignedUser == "none":
		f.AssignedUser = "none"
	case len(parts) > 100:
		return f, badRequest("invalid_input", prefix+"assigned_user", "at most 100 users in assigned_user")
	default:
		seen := map[string]bool{}
		for _, raw := range parts {
			raw = strings.TrimSpace(raw)
			if raw == "none" {
				return f, badRequest("invalid_input", prefix+"assigned_user", "none cannot be combined with user IDs")
			}
			id, err := resolveID(r.Context(), raw, prefix+"assigned_user")
			if err != nil {
				return f, err
			}
			if !seen[id] {
				seen[id] = true
				f.AssignedUsers = append(f.AssignedUsers, id)
			}
		}
		if len(f.AssignedUsers) == 1 {
			// One user keeps the indexed walk of its customers.
			f.AssignedUser, f.AssignedUsers = f.AssignedUsers[0], nil
		}
	}
	return f, nil
}
