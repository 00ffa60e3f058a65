package console

import (
	nethttp "net/http"
	"strings"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// newCustomerData keeps the form's input after a refusal.
type newCustomerData struct {
	inviteData
	ExternalID string
}

func (c *Console) newCustomerPage(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	p, err := c.teamPicker(r.Context(), s.TenantID, "team", teamLegend, nil, "")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := newCustomerData{inviteData: inviteData{Team: map[string]bool{}, Picker: p}}
	c.render(w, r, nethttp.StatusOK, "new-customer", view{Title: "New customer", Nav: "customers", Data: d})
}

// newCustomer calls RegisterCustomer (the team, if ticked, assigned in
// the same append) and opens the new profile.
func (c *Console) newCustomer(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	d := newCustomerData{inviteData: inviteData{FirstName: strings.TrimSpace(f.Get("first_name")),
		LastName: strings.TrimSpace(f.Get("last_name")), Email: strings.TrimSpace(f.Get("email")),
		Phone: strings.TrimSpace(f.Get("phone")), Team: map[string]bool{}}, ExternalID: strings.TrimSpace(f.Get("external_id"))}
	for _, id := range f["team"] {
		d.Team[id] = true
	}
	_, q, find := pickerFind(r)
	var err error
	if d.Picker, err = c.teamPicker(r.Context(), s.TenantID, "team", teamLegend, f["team"], q); err != nil {
		c.fail(w, r, err)
		return
	}
	if find {
		c.render(w, r, nethttp.StatusOK, "new-customer", view{Title: "New customer", Nav: "customers", Data: d})
		return
	}
	var res commands.CustomerResult
	err = c.checkIDs("team", f["team"]...)
	if err == nil {
		res, err = c.d.Commands.RegisterCustomer(r.Context(), c.meta(s), domain.Profile{FirstName: d.FirstName,
			LastName: d.LastName, Email: d.Email, Phone: d.Phone, ExternalID: d.ExternalID}, f["team"]...)
	}
	if err != nil {
		c.refused(w, r, err, "new-customer", func(v view) (string, view, error) {
			v.Title, v.Nav, v.Data = "New customer", "customers", d
			return "new-customer", v, nil
		})
		return
	}
	redirectAfter(w, r, "/customers/"+res.ID, res.Position, "created")
}
