package console

import (
	nethttp "net/http"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
)

// inlineAssign is Contactually's inline assign: the Assigned User cell of
// an unassigned customer offers a picker, and Save assigns that user in
// place (AssignUser, as POST /v1/customers/{id}/assignees). The browser
// returns to the same list; a refusal is shown in the row's cell.
func (c *Console) inlineAssign(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	id, user, back := chi.URLParam(r, "id"), r.PostForm.Get("user_id"), r.PostForm.Get("back")
	res, err := commands.CustomerResult{}, c.requiredID("user_id", user)
	if err == nil {
		res, err = c.d.Commands.AssignUser(r.Context(), c.meta(s), id, user)
	}
	if err != nil {
		if ref, known := c.d.Refusal(err); known && (ref.Status == nethttp.StatusNotFound || ref.Status == nethttp.StatusGone) {
			// No row to show it in when the customer is not there.
			c.problem(w, r, err)
			return
		}
		c.refused(w, r, err, "assign-"+id, func(v view) (string, view, error) {
			r2 := r.Clone(r.Context())
			r2.URL.RawQuery = back
			return c.customersPage(r2, s, v)
		})
		return
	}
	redirectAfter(w, r, customersURL(back)+"#row-"+id, res.Position, "assigned")
}
