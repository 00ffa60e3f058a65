package console

import (
	nethttp "net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// maxUsersShown bounds the users page; past it the search narrows the list
// (ListUsers walks the (tenant, name, id) index either way).
const maxUsersShown = 500

type usersData struct {
	Q, Status string
	Items     []commands.UserView
	// Active are the possible heirs of a deactivation.
	Active []commands.UserView
	// Form keeps the create form's input after a refusal.
	Name, Email, Role string
}

func (c *Console) users(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	name, v, err := c.usersPage(r, s, view{})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, name, v)
}

func (c *Console) usersPage(r *nethttp.Request, s sessionInfo, v view) (string, view, error) {
	q := r.URL.Query()
	d := usersData{Q: strings.TrimSpace(q.Get("q")), Status: q.Get("status"), Role: "member"}
	if d.Status != "active" && d.Status != "deactivated" {
		d.Status = ""
	}
	var err error
	if d.Items, err = c.d.Commands.ListUsers(r.Context(), s.TenantID, commands.UsersFilter{Q: d.Q, Status: d.Status}, nil, maxUsersShown); err != nil {
		return "", v, err
	}
	if d.Active, err = c.activeUsers(r.Context(), s.TenantID); err != nil {
		return "", v, err
	}
	if r.Method == nethttp.MethodPost {
		d.Name, d.Email, d.Role = r.PostForm.Get("name"), r.PostForm.Get("email"), r.PostForm.Get("role")
	}
	v.Title, v.Nav, v.Data = "Users", "users", d
	return "users", v, nil
}

func (c *Console) createUser(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	res, err := c.d.Commands.CreateUser(r.Context(), c.meta(s), strings.TrimSpace(r.PostForm.Get("name")),
		strings.TrimSpace(r.PostForm.Get("email")), domain.Role(r.PostForm.Get("role")))
	if err != nil {
		c.refused(w, r, err, "create-user", func(v view) (string, view, error) { return c.usersPage(r, s, v) })
		return
	}
	redirectAfter(w, r, "/users", res.Position, "usercreated")
}

func (c *Console) changeRole(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	role := domain.Role(r.PostForm.Get("role"))
	res, err := c.d.Commands.UpdateUser(r.Context(), c.meta(s), id, nil, &role)
	if err != nil {
		if ref, known := c.d.Refusal(err); known && ref.Status == nethttp.StatusNotFound {
			// No row of the list to show it at: the user is not there.
			c.problem(w, r, err)
			return
		}
		c.refused(w, r, err, "role-"+id, func(v view) (string, view, error) { return c.usersPage(r, s, v) })
		return
	}
	if c.d.RoleChanged != nil {
		c.d.RoleChanged(id)
	}
	redirectAfter(w, r, "/users", res.Position, "role")
}

type deactivateData struct {
	User       commands.UserView
	TransferTo string
	Heir       string
	Preview    commands.DeactivationPreview
	// Customers names the customers of the preview.
	Customers map[string]string
	Heirs     []commands.UserView
	CanGo     bool
}

// deactivatePreview is the dry run: which customers the user would leave
// (handed to the heir, or unassigned) and which policies would refuse.
func (c *Console) deactivatePreview(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	name, v, err := c.deactivatePage(r, s, view{})
	if err != nil {
		if _, known := c.d.Refusal(err); known {
			c.refused(w, r, err, "users", func(v view) (string, view, error) { return c.usersPage(r, s, v) })
			return
		}
		c.fail(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, name, v)
}

func (c *Console) deactivatePage(r *nethttp.Request, s sessionInfo, v view) (string, view, error) {
	id := chi.URLParam(r, "id")
	u, err := c.d.Commands.GetUser(r.Context(), s.TenantID, id)
	if err != nil {
		return "", v, err
	}
	d := deactivateData{User: u, TransferTo: r.FormValue("transfer_to"), Customers: map[string]string{}}
	if err := c.checkIDs("transfer_to", d.TransferTo); err != nil {
		return "", v, err
	}
	if d.Preview, err = c.d.Commands.PreviewDeactivation(r.Context(), c.meta(s), u.ID, d.TransferTo); err != nil {
		return "", v, err
	}
	ids := append([]string(nil), d.Preview.ToBeTransferred...)
	for _, e := range d.Preview.Errors {
		ids = append(ids, e.CustomerID)
	}
	byID, err := c.d.Queries.CustomersByID(r.Context(), s.TenantID, ids)
	if err != nil {
		return "", v, err
	}
	for id := range byID {
		d.Customers[id] = customerName(byID, id)
	}
	details := make([]string, 0, len(d.Preview.Errors))
	for _, e := range d.Preview.Errors {
		details = append(details, e.Detail)
	}
	n, err := c.namerFor(r.Context(), s.TenantID, details...)
	if err != nil {
		return "", v, err
	}
	for i := range d.Preview.Errors {
		d.Preview.Errors[i].Detail = n.name(d.Preview.Errors[i].Detail)
	}
	active, err := c.activeUsers(r.Context(), s.TenantID)
	if err != nil {
		return "", v, err
	}
	for _, a := range active {
		if a.ID != u.ID {
			d.Heirs = append(d.Heirs, a)
		}
		if a.ID == d.TransferTo {
			d.Heir = a.Name
		}
	}
	d.CanGo = len(d.Preview.Errors) == 0
	v.Title, v.Nav, v.Data = "Deactivate "+u.Name, "users", d
	return "deactivate", v, nil
}

func (c *Console) deactivate(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	res, err := commands.UserResult{}, c.checkIDs("transfer_to", r.PostForm.Get("transfer_to"))
	if err == nil {
		res, err = c.d.Commands.DeactivateUser(r.Context(), c.meta(s), id, r.PostForm.Get("transfer_to"))
	}
	if err != nil {
		c.refused(w, r, err, "deactivate", func(v view) (string, view, error) { return c.deactivatePage(r, s, v) })
		return
	}
	redirectAfter(w, r, "/users", res.Position, "deactivated")
}

type policyData struct {
	Policy domain.Policy
	// Max is the limit as the form shows it ("" for none).
	Max string
}

func (c *Console) policy(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	name, v, err := c.policyPage(r, s, view{})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, name, v)
}

func (c *Console) policyPage(r *nethttp.Request, s sessionInfo, v view) (string, view, error) {
	p, err := c.d.Commands.GetPolicy(r.Context(), s.TenantID)
	if err != nil {
		return "", v, err
	}
	d := policyData{Policy: p}
	if p.MaxAssignees != nil {
		d.Max = strconv.Itoa(*p.MaxAssignees)
	}
	v.Title, v.Nav, v.Data = "Policy", "policy", d
	return "policy", v, nil
}

var errBadMax = &domain.ValidationError{Field: "max_assignees", Detail: "must be a whole number, or empty for no limit"}

func (c *Console) changePolicy(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	p := domain.Policy{RequireAssignee: f.Get("require_assignee") == "on", RequireLead: f.Get("require_lead") == "on",
		MembersCanSelfAssign: f.Get("members_can_self_assign") == "on", MembersSee: domain.VisibilityAll}
	if f.Get("members_see_assigned") == "on" {
		p.MembersSee = domain.VisibilityAssigned
	}
	var err error
	if raw := strings.TrimSpace(f.Get("max_assignees")); raw != "" {
		n, perr := strconv.Atoi(raw)
		if perr != nil {
			err = errBadMax
		}
		p.MaxAssignees = &n
	}
	var res commands.PolicyResult
	if err == nil {
		// The form has no max_customers_per_user field: keep it.
		res, err = c.d.Commands.ChangePolicy(r.Context(), c.meta(s), p, commands.KeepMaxCustomersPerUser)
	}
	if err != nil {
		c.refused(w, r, err, "policy", func(v view) (string, view, error) { return c.policyPage(r, s, v) })
		return
	}
	redirectAfter(w, r, "/policy", res.Position, "policy")
}
