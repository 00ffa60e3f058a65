package console

import (
	nethttp "net/http"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// eraseData is the confirmation page of a deletion (erasure): one
// customer from its profile, or a bulk selection.
type eraseData struct {
	// Customer is the one customer of the profile's Delete.
	Customer *commands.CustomerView
	// Bulk is the dry run of the bulk action "delete".
	Bulk    *commands.CustomerBulkResult
	Form    bulkForm
	Back    string
	BackURL string
}

// erasePage is the profile's Delete: a page asking to confirm, because an
// erasure cannot be undone. It changes nothing.
func (c *Console) erasePage(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	cu, err := c.d.Commands.GetCustomer(r.Context(), s.TenantID, chi.URLParam(r, "id"))
	if err != nil {
		c.gone(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, "erase", view{Title: "Delete " + fullNameOf(cu), Nav: "customers", Data: eraseData{Customer: &cu}})
}

// erase is the confirmed Delete of one customer: DELETE
// /v1/customers/{id}'s command (the bulk action "delete" for one).
func (c *Console) erase(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	pos, err := c.d.Commands.EraseCustomer(r.Context(), c.meta(s), id)
	if err != nil {
		if ref, known := c.d.Refusal(err); known && (ref.Status == nethttp.StatusNotFound || ref.Status == nethttp.StatusGone) {
			c.gone(w, r, err)
			return
		}
		c.refused(w, r, err, "erase", func(v view) (string, view, error) {
			cu, err := c.d.Commands.GetCustomer(r.Context(), s.TenantID, id)
			v.Title, v.Nav, v.Data = "Delete "+fullNameOf(cu), "customers", eraseData{Customer: &cu}
			return "erase", v, err
		})
		return
	}
	redirectAfter(w, r, "/customers", pos, "deleted")
}

// bulkEraseReview is the Customers page's bulk "delete": the command's dry
// run, shown for confirmation.
func (c *Console) bulkEraseReview(w nethttp.ResponseWriter, r *nethttp.Request, s sessionInfo, f bulkForm, back func(v view) (string, view, error)) {
	res, err := c.d.Commands.BulkCustomers(r.Context(), c.meta(s), commands.CustomerBulkRequest{
		Action: domain.CustomerActionDelete, CustomerIDs: f.CustomerIDs, DryRun: true})
	if err != nil {
		c.refused(w, r, err, "bulk", back)
		return
	}
	d := eraseData{Bulk: &res, Form: f, Back: r.PostForm.Get("back"), BackURL: customersURL(r.PostForm.Get("back"))}
	c.render(w, r, nethttp.StatusOK, "erase", view{Title: "Delete customers", Nav: "customers", Data: d})
}

// bulkErase carries out the confirmed bulk delete: all or nothing.
func (c *Console) bulkErase(w nethttp.ResponseWriter, r *nethttp.Request, s sessionInfo, f bulkForm) {
	res, err := c.d.Commands.BulkCustomers(r.Context(), c.meta(s), commands.CustomerBulkRequest{
		Action: domain.CustomerActionDelete, CustomerIDs: f.CustomerIDs})
	if err != nil {
		c.refused(w, r, err, "erase", func(v view) (string, view, error) {
			plan, _ := c.d.Commands.BulkCustomers(r.Context(), c.meta(s), commands.CustomerBulkRequest{
				Action: domain.CustomerActionDelete, CustomerIDs: f.CustomerIDs, DryRun: true})
			v.Title, v.Nav, v.Data = "Delete customers", "customers", eraseData{Bulk: &plan, Form: f, Back: r.PostForm.Get("back"),
				BackURL: customersURL(r.PostForm.Get("back"))}
			return "erase", v, nil
		})
		return
	}
	redirectAfter(w, r, customersURL(r.PostForm.Get("back")), res.Position, "deleted")
}

// gone answers a customer that is unknown (404) or erased (410), or any
// other refusal of the page, on the problem page.
func (c *Console) gone(w nethttp.ResponseWriter, r *nethttp.Request, err error) {
	c.problem(w, r, err)
}
