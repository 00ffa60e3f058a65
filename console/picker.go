package console

import (
	"context"
	"encoding/json"
	nethttp "net/http"
	"slices"
	"strings"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// pickerAll is the most users a team picker lists whole; past it, it
// lists the chosen ones and a search finds the others (?q= on the users,
// server-side), so a tenant of thousands of users gets a short page.
const pickerAll = 25

// pickerFound bounds a search's answers.
const pickerFound = 20

// pickerData is a searchable user picker of a form: the chosen users
// ticked (in the order chosen: the first leads under require_lead), the
// offered ones unticked, and a search field with its Find button. Name
// is the form field the ticks post; its search posts Name+"_q".
type pickerData struct {
	Name, Legend string
	Chosen       []commands.UserView
	Offered      []commands.UserView
	Q            string
	// All says the whole directory is offered (a small tenant); Searched
	// that Offered answers the search Q.
	All, Searched bool
}

// teamPicker builds a picker: chosen (IDs, in order) ticked, then every
// other active user when the tenant is small, else the users matching q.
// Auditors are never offered (auditor_not_assignable).
func (c *Console) teamPicker(ctx context.Context, tenant, name, legend string, chosen []string, q string) (pickerData, error) {
	p := pickerData{Name: name, Legend: legend, Q: strings.TrimSpace(q)}
	users, err := c.activeUsers(ctx, tenant)
	if err != nil {
		return p, err
	}
	byID := map[string]commands.UserView{}
	for _, u := range users {
		byID[u.ID] = u
	}
	for _, id := range chosen {
		if slices.ContainsFunc(p.Chosen, func(u commands.UserView) bool { return u.ID == id }) {
			continue
		}
		u, ok := byID[id]
		if !ok {
			// Past the first page of the directory, or not a user: the
			// command decides; the tick keeps its ID.
			if u, err = c.d.Commands.GetUser(ctx, tenant, id); err != nil {
				u = commands.UserView{ID: id, Name: id}
			}
		}
		p.Chosen = append(p.Chosen, u)
	}
	isChosen := func(u commands.UserView) bool { return slices.Contains(chosen, u.ID) }
	switch {
	case p.Q != "":
		found, err := c.searchUsers(ctx, tenant, p.Q)
		if err != nil {
			return p, err
		}
		p.Offered, p.Searched = slices.DeleteFunc(found, isChosen), true
	case len(users) <= pickerAll:
		p.Offered, p.All = slices.DeleteFunc(slices.Clone(users), isChosen), true
	}
	return p, nil
}

// searchUsers answers the active users (never auditors) whose name or
// e-mail contains q, by name.
func (c *Console) searchUsers(ctx context.Context, tenant, q string) ([]commands.UserView, error) {
	found, err := c.d.Commands.ListUsers(ctx, tenant, commands.UsersFilter{Q: q, Status: "active"}, nil, pickerFound+5)
	if err != nil {
		return nil, err
	}
	found = slices.DeleteFunc(found, func(u commands.UserView) bool { return u.Role == string(domain.RoleAuditor) })
	return found[:min(len(found), pickerFound)], nil
}

// pickerFind reports whether a form was posted by a picker's Find button
// (find=<field>): the page is shown again with the search's answers and
// the form as typed, and no command is run.
func pickerFind(r *nethttp.Request) (field, q string, ok bool) {
	field = r.PostForm.Get("find")
	if field == "" {
		return "", "", false
	}
	return field, r.PostForm.Get(field + "_q"), true
}

// foundUser is one answer of the pickers' live search.
type foundUser struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
}

// userSearch answers the pickers' live search (console.js) as JSON: the
// same search as their Find button. E-mail addresses are shown to those
// who may read the users' directory (the API's GET /v1/users).
func (c *Console) userSearch(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	out := []foundUser{}
	if q := strings.TrimSpace(r.URL.Query().Get("q")); q != "" {
		found, err := c.searchUsers(r.Context(), s.TenantID, q)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for _, u := range found {
			f := foundUser{ID: u.ID, Name: u.Name}
			if s.ReadsAll() {
				f.Email = u.Email
			}
			out = append(out, f)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
