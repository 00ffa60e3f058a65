package console

import (
	"context"
	nethttp "net/http"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// customerActionData is the review of a bulk block, unblock, or group
// action (POST /v1/customers/bulk's dry run), by name.
type customerActionData struct {
	Form    bulkForm
	Label   string
	Group   string
	Changed []reviewRow
	// Unchanged and Errors as the command's plan words them.
	Unchanged, Errors []reviewRow
	Counts            [3]int
	CanSave           bool
	Back, BackURL     string
}

// customerActionLabels word the customer actions on the review page.
var customerActionLabels = map[domain.CustomerAction]string{
	domain.CustomerActionBlock:           "Block",
	domain.CustomerActionUnblock:         "Unblock",
	domain.CustomerActionAddToGroup:      "Add to the group",
	domain.CustomerActionRemoveFromGroup: "Remove from the group",
}

// errNoGroup is a group action sent without a group.
var errNoGroup = &domain.ValidationError{Field: "group_id", Detail: "choose a group"}

// bulkCustomersReview is the Customers page's block, unblock and group
// actions: the command's dry run, shown with names before Save.
func (c *Console) bulkCustomersReview(w nethttp.ResponseWriter, r *nethttp.Request, s sessionInfo, f bulkForm, back func(v view) (string, view, error)) {
	a, _ := f.customerAction()
	var res commands.CustomerBulkResult
	var err error
	if a.NeedsGroup() && f.GroupID == "" {
		err = errNoGroup
	} else {
		res, err = c.d.Commands.BulkCustomers(r.Context(), c.meta(s), f.customerRequest(true))
	}
	if err != nil {
		c.refused(w, r, err, "bulk", back)
		return
	}
	d, err := c.customerActionData(r.Context(), s, f, res)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d.Back = r.PostForm.Get("back")
	d.BackURL = customersURL(d.Back)
	c.render(w, r, nethttp.StatusOK, "customer-action", view{Title: "Review bulk action", Nav: "customers", Data: d})
}

func (c *Console) customerActionData(ctx context.Context, s sessionInfo, f bulkForm, res commands.CustomerBulkResult) (customerActionData, error) {
	a, _ := f.customerAction()
	d := customerActionData{Form: f, Label: customerActionLabels[a],
		Counts: [3]int{len(res.Changed), len(res.Unchanged), len(res.Errors)}}
	names, err := c.d.Queries.CustomersByID(ctx, s.TenantID, f.CustomerIDs)
	if err != nil {
		return d, err
	}
	if f.GroupID != "" {
		if g, err := c.d.Queries.Group(ctx, s.TenantID, f.GroupID); err == nil {
			d.Group = g.Name
		}
	}
	row := func(id string) reviewRow { return reviewRow{CustomerID: id, Customer: customerName(names, id)} }
	for _, id := range res.Changed[:min(len(res.Changed), maxReviewRows)] {
		d.Changed = append(d.Changed, row(id))
	}
	for _, id := range res.Unchanged[:min(len(res.Unchanged), maxReviewRows)] {
		d.Unchanged = append(d.Unchanged, row(id))
	}
	for _, e := range res.Errors[:min(len(res.Errors), maxReviewRows)] {
		rr := row(e.CustomerID)
		rr.Code = e.Code
		d.Errors = append(d.Errors, rr)
	}
	d.CanSave = len(res.Errors) == 0 && len(res.Changed) > 0
	return d, nil
}

// bulkCustomersSave carries out a reviewed block, unblock or group action:
// all or nothing; a refusal is shown on the review, planned again.
func (c *Console) bulkCustomersSave(w nethttp.ResponseWriter, r *nethttp.Request, s sessionInfo, f bulkForm) {
	res, err := c.d.Commands.BulkCustomers(r.Context(), c.meta(s), f.customerRequest(false))
	if err != nil {
		c.refused(w, r, err, "review", func(v view) (string, view, error) {
			plan, _ := c.d.Commands.BulkCustomers(r.Context(), c.meta(s), f.customerRequest(true))
			d, derr := c.customerActionData(r.Context(), s, f, plan)
			d.Back = r.PostForm.Get("back")
			d.BackURL = customersURL(d.Back)
			v.Title, v.Nav, v.Data = "Review bulk action", "customers", d
			return "customer-action", v, derr
		})
		return
	}
	redirectAfter(w, r, customersURL(r.PostForm.Get("back")), res.Position, "bulk")
}
