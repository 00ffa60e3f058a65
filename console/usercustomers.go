package console

import (
	"errors"
	nethttp "net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/projections"
)

// userCustomersData is Spryker's per-user "Assign customers" page: the
// customer table with the user's customers ticked, and one Save.
type userCustomersData struct {
	User    commands.UserView
	Q, Show string
	Items   []projections.CustomerItem
	// Ticked are the rows ticked: the user's customers, or after a
	// refusal what the admin left ticked.
	Ticked map[string]bool
	// Total counts the rows the filter matches; From and To number this
	// page's.
	Total, From, To  int
	NextURL, PrevURL string
	// Query is the filters (where Save returns); SelfURL the page with them.
	Query, SelfURL string
	// Review is the plan of the ticks (the bulk edit's dry runs).
	Review *reviewData
	// Add and Remove are the reviewed changes, carried to Save.
	Add, Remove []string
}

// userCustomersShows are the page's "show" filter: every customer, the
// user's, or the unassigned.
var userCustomersShows = map[string]bool{"": true, "theirs": true, "unassigned": true}

func (c *Console) userCustomers(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	lagging := c.waitForPosition(r, projections.CustomerList, projections.MyClients)
	name, v, err := c.userCustomersPage(r, s, view{Lagging: lagging}, r.URL.Query())
	if err != nil {
		c.problem(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, name, v)
}

// userCustomersPage renders the page for the filters in q (a GET's query,
// or the "back" a review carries).
func (c *Console) userCustomersPage(r *nethttp.Request, s sessionInfo, v view, q url.Values) (string, view, error) {
	u, err := c.d.Commands.GetUser(r.Context(), s.TenantID, chi.URLParam(r, "id"))
	if err != nil {
		return "", v, err
	}
	d := userCustomersData{User: u, Q: strings.TrimSpace(q.Get("q")), Show: q.Get("show"), Ticked: map[string]bool{}}
	if !userCustomersShows[d.Show] {
		d.Show = ""
	}
	f := projections.CustomerFilter{Q: d.Q}
	switch d.Show {
	case "theirs":
		f.AssignedUser = u.ID
	case "unassigned":
		f.AssignedUser = "none"
	}
	cursor := q.Get("cursor")
	pg, err := c.d.Queries.Customers(r.Context(), s.TenantID, f, pageSize, cursor)
	if err != nil {
		return "", v, err
	}
	d.Items = pg.Items
	if d.Total, err = c.d.Queries.CountCustomers(r.Context(), s.TenantID, f); err != nil {
		return "", v, err
	}
	for _, it := range d.Items {
		if slices.ContainsFunc(it.Assignees, func(a projections.Assignee) bool { return a.UserID == u.ID }) {
			d.Ticked[it.ID] = true
		}
	}
	nq := url.Values{}
	if d.Q != "" {
		nq.Set("q", d.Q)
	}
	if d.Show != "" {
		nq.Set("show", d.Show)
	}
	path := "/users/" + u.ID + "/customers"
	d.PrevURL, d.NextURL, d.From = pageLinks(path, nq, q, cursor, pg.NextCursor)
	if len(d.Items) > 0 {
		d.To = d.From + len(d.Items) - 1
	} else {
		d.From = 0
	}
	// Save comes back to this very page (its cursor included).
	bq := url.Values{}
	for k, vals := range q {
		if k != "pos" && k != "done" {
			bq[k] = vals
		}
	}
	d.Query = bq.Encode()
	d.SelfURL = path + "?" + d.Query
	v.Title, v.Nav, v.Data = "Customers of "+u.Name, "users", d
	return "user-customers", v, nil
}

// errNoChange is a Save of the ticks as they were.
var errNoChange = errors.New("nothing to change")

// userCustomersReview compares the ticks with the rows shown (shown=) and
// plans the changes as the bulk edit's dry runs: the user added to the
// newly ticked, removed from the unticked. Nothing is written.
func (c *Console) userCustomersReview(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	userID := chi.URLParam(r, "id")
	shown, ticked := r.PostForm["shown"], r.PostForm["customer_ids"]
	back, _ := url.ParseQuery(r.PostForm.Get("back"))
	page := func(v view) (string, view, error) {
		name, v, err := c.userCustomersPage(r, s, v, back)
		if err == nil {
			d := v.Data.(userCustomersData)
			d.Ticked = map[string]bool{}
			for _, id := range ticked {
				d.Ticked[id] = true
			}
			v.Data = d
		}
		return name, v, err
	}
	if err := c.checkIDs("customer_ids", append(slices.Clone(shown), ticked...)...); err != nil {
		c.refused(w, r, err, "assign", page)
		return
	}
	rows, err := c.d.Queries.CustomersByID(r.Context(), s.TenantID, shown)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var add, remove []string
	for _, id := range shown {
		row, known := rows[id]
		has := known && slices.ContainsFunc(row.Assignees, func(a projections.Assignee) bool { return a.UserID == userID })
		switch want := slices.Contains(ticked, id); {
		case want && !has:
			add = append(add, id)
		case !want && has:
			remove = append(remove, id)
		}
	}
	name, v, err := page(view{})
	if err != nil {
		c.problem(w, r, err)
		return
	}
	d := v.Data.(userCustomersData)
	rd, err := c.planUserCustomers(r, s, userID, add, remove)
	if err != nil {
		c.refused(w, r, err, "assign", page)
		return
	}
	d.Review, d.Add, d.Remove = &rd, add, remove
	v.Data = d
	c.render(w, r, nethttp.StatusOK, name, v)
}

// planUserCustomers runs the two dry runs (add to add, remove from remove)
// and merges them into the review tabs.
func (c *Console) planUserCustomers(r *nethttp.Request, s sessionInfo, userID string, add, remove []string) (reviewData, error) {
	var plan commands.BulkResult
	for _, step := range []struct {
		action string
		ids    []string
	}{{"add", add}, {"remove", remove}} {
		if len(step.ids) == 0 {
			continue
		}
		res, err := c.d.Commands.BulkEdit(r.Context(), c.meta(s), commands.BulkRequest{Action: step.action, CustomerIDs: step.ids,
			UserIDs: []string{userID}, DryRun: true})
		if err != nil {
			return reviewData{}, err
		}
		plan.ToBeAssigned = append(plan.ToBeAssigned, res.ToBeAssigned...)
		plan.ToBeDeassigned = append(plan.ToBeDeassigned, res.ToBeDeassigned...)
		plan.Unchanged = append(plan.Unchanged, res.Unchanged...)
		plan.Errors = append(plan.Errors, res.Errors...)
	}
	return c.reviewData(r.Context(), s, bulkForm{CustomerIDs: append(slices.Clone(add), remove...), UserIDs: []string{userID}}, plan)
}

// userCustomersSave carries out the reviewed changes: the user added where
// ticked, then removed where unticked (two bulk edits, each all or
// nothing). Each is decided again by its command; a refusal is shown on
// the review, planned again, saying what was already saved.
func (c *Console) userCustomersSave(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	userID := chi.URLParam(r, "id")
	add, remove := r.PostForm["add"], r.PostForm["remove"]
	back, _ := url.ParseQuery(r.PostForm.Get("back"))
	saved := ""
	var pos int64
	err := c.checkIDs("customer_ids", append(slices.Clone(add), remove...)...)
	if err == nil && len(add)+len(remove) == 0 {
		err = errNoChange
	}
	if err == nil && len(add) > 0 {
		var res commands.BulkResult
		if res, err = c.d.Commands.BulkEdit(r.Context(), c.meta(s), commands.BulkRequest{Action: "add", CustomerIDs: add, UserIDs: []string{userID}}); err == nil {
			pos, saved, add = res.Position, "The additions were saved; the removals were refused.", nil
		}
	}
	if err == nil && len(remove) > 0 {
		var res commands.BulkResult
		if res, err = c.d.Commands.BulkEdit(r.Context(), c.meta(s), commands.BulkRequest{Action: "remove", CustomerIDs: remove, UserIDs: []string{userID}}); err == nil {
			pos = res.Position
		}
	}
	if errors.Is(err, errNoChange) {
		nethttp.Redirect(w, r, "/users/"+userID+"/customers?"+back.Encode(), nethttp.StatusSeeOther)
		return
	}
	if err != nil {
		c.refused(w, r, err, "review", func(v view) (string, view, error) {
			v.Notice, v.Pos = saved, pos
			name, v, perr := c.userCustomersPage(r, s, v, back)
			if perr != nil {
				return name, v, perr
			}
			d := v.Data.(userCustomersData)
			rd, perr := c.planUserCustomers(r, s, userID, add, remove)
			var bulk *commands.BulkRejectedError
			if perr != nil && !errors.As(perr, &bulk) {
				rd, perr = reviewData{}, nil
			}
			d.Review, d.Add, d.Remove = &rd, add, remove
			v.Data = d
			return name, v, perr
		})
		return
	}
	redirectAfter(w, r, "/users/"+userID+"/customers?"+back.Encode(), pos, "bulk")
}
