package console

import (
	nethttp "net/http"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

type transferData struct {
	User   commands.UserView
	To     string
	Heirs  []commands.UserView
	Review *reviewData
}

// transferPage previews handing all of a user's customers to another user
// (TransferCustomers as a dry run: the review tabs), without deactivating
// anyone.
func (c *Console) transferPage(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	name, v, err := c.transferView(r, s, view{})
	if err != nil {
		if _, known := c.d.Refusal(err); known {
			c.refused(w, r, err, "transfer", func(v view) (string, view, error) {
				r2 := r.Clone(r.Context())
				r2.URL.RawQuery = ""
				return c.transferView(r2, s, v)
			})
			return
		}
		c.fail(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, name, v)
}

func (c *Console) transferView(r *nethttp.Request, s sessionInfo, v view) (string, view, error) {
	u, err := c.d.Commands.GetUser(r.Context(), s.TenantID, chi.URLParam(r, "id"))
	if err != nil {
		return "", v, err
	}
	d := transferData{User: u, To: r.FormValue("to")}
	active, err := c.activeUsers(r.Context(), s.TenantID)
	if err != nil {
		return "", v, err
	}
	for _, a := range active {
		if a.ID != u.ID {
			d.Heirs = append(d.Heirs, a)
		}
	}
	v.Title, v.Nav, v.Data = "Transfer "+u.Name+"'s customers", "users", d
	if d.To == "" {
		return "transfer", v, nil
	}
	if err := c.checkIDs("to", d.To); err != nil {
		return "", v, err
	}
	res, err := c.d.Commands.TransferCustomers(r.Context(), c.meta(s), commands.TransferRequest{From: u.ID, To: d.To, DryRun: true})
	if err != nil {
		return "", v, err
	}
	var ids []string
	seen := map[string]bool{}
	for _, group := range [][]string{pairsCustomers(res.ToBeAssigned), pairsCustomers(res.ToBeDeassigned), pairsCustomers(res.Unchanged)} {
		for _, id := range group {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	for _, e := range res.Errors {
		ids = append(ids, e.CustomerID)
	}
	rd, err := c.reviewData(r.Context(), s, bulkForm{CustomerIDs: ids, UserIDs: []string{d.To}}, res)
	if err != nil {
		return "", v, err
	}
	d.Review = &rd
	v.Data = d
	return "transfer", v, nil
}

func pairsCustomers(xs []domain.Pair) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.CustomerID
	}
	return out
}

func (c *Console) transfer(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	to := r.PostForm.Get("to")
	var res commands.BulkResult
	err := c.checkIDs("to", to)
	if err == nil && to == "" {
		err = &domain.ValidationError{Field: "to", Detail: "choose who takes the customers"}
	}
	if err == nil {
		res, err = c.d.Commands.TransferCustomers(r.Context(), c.meta(s),
			commands.TransferRequest{From: chi.URLParam(r, "id"), To: to})
	}
	if err != nil {
		c.refused(w, r, err, "transfer", func(v view) (string, view, error) { return c.transferView(r, s, v) })
		return
	}
	redirectAfter(w, r, "/users", res.Position, "transferred")
}
