package console

import (
	"context"
	"errors"
	nethttp "net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/projections"
)

// pageSize is the customer table's page: keyset paging as the API's.
const pageSize = 50

type customersData struct {
	Q, Status, Group string
	// Assigned are the Assigned-user filter's ticks ("me", "none" or user
	// IDs); AssignedNames word them for the filter's summary.
	Assigned      map[string]bool
	AssignedNames []string
	// AssignedUser is the ticks as the API's assigned_user ("me"
	// resolved): what "save this filter as a view" keeps.
	AssignedUser string
	Statuses     []string
	Users        []commands.UserView
	Groups       []projections.Group
	// Exports are the download links of the filtered list, one per format.
	Exports []exportLink
	Items   []projections.CustomerItem
	Next    string
	Paged   bool
	// NextURL keeps the filters on the next page's link, PrevURL on the
	// previous page's; Query is the filters alone (where a bulk edit
	// returns), FirstURL the links that carry them (whole URLs:
	// html/template would escape a query interpolated after "?").
	NextURL, PrevURL, Query, FirstURL string
	// Total is how many customers match the filters; From and To number
	// the rows of this page among them.
	Total, From, To int
	// Columns are the optional columns offered, Shown the chosen ones;
	// FollowUps fills the follow-ups' column when it is shown.
	Columns   []listColumn
	Shown     map[string]bool
	FollowUps map[string]int
	// Checked are the customers ticked when a bulk review is sent back.
	Checked map[string]bool
	// MessageSubject and MessageBody keep a refused message's text.
	MessageSubject, MessageBody string
	// Bulk is whether the signed-in user may bulk edit at all (an admin,
	// or a member the policy lets self-assign); BulkUsers are the users
	// they may add or remove (a member: only themselves).
	Bulk      bool
	BulkUsers []commands.UserView
	// Views are the saved views the user may pick (v3).
	Views []projections.SavedView
}

// ColSpan is how many columns the table has (for its "no rows" line).
func (d customersData) ColSpan() int {
	n := 4 + len(d.Shown)
	if d.Bulk {
		n++
	}
	return n
}

var statuses = []string{"active", "invited", "blocked"}

// exportLink is one format of the export menu.
type exportLink struct {
	Format, Label, URL string
}

// exportFormats are the API's export formats, as the menu names them.
var exportFormats = [][2]string{{"csv", "CSV"}, {"xlsx", "Excel (XLSX)"}, {"ods", "OpenDocument (ODS)"}, {"vcf", "vCard"}, {"html", "HTML"}}

// activeUsers lists the tenant's active users for the pickers. A tenant
// with more than 500 users would need a search box here; ListUsers pages
// by name, so the query stays an index walk either way.
func (c *Console) activeUsers(ctx context.Context, tenant string) ([]commands.UserView, error) {
	users, err := c.d.Commands.ListUsers(ctx, tenant, commands.UsersFilter{Status: "active"}, nil, 500)
	// Every list this feeds offers people to put on teams or hand
	// customers to; an auditor is never one (auditor_not_assignable).
	return slices.DeleteFunc(users, func(u commands.UserView) bool { return u.Role == string(domain.RoleAuditor) }), err
}

func (c *Console) customers(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	lagging := c.waitForPosition(r, projections.CustomerList, projections.MyClients)
	c.chosenColumns(w, r, s.UserID) // keeps a new choice in the cookie
	name, v, err := c.customersPage(r, s, view{Lagging: lagging})
	if err != nil {
		if _, known := c.d.Refusal(err); known {
			c.refused(w, r, err, "filters", func(v view) (string, view, error) {
				// The filters were refused (a bad cursor or user): show the
				// first page unfiltered, with the message.
				r2 := r.Clone(r.Context())
				r2.URL.RawQuery = ""
				return c.customersPage(r2, s, v)
			})
			return
		}
		c.fail(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, name, v)
}

func (c *Console) customersPage(r *nethttp.Request, s sessionInfo, v view) (string, view, error) {
	q := r.URL.Query()
	d := customersData{Q: strings.TrimSpace(q.Get("q")), Status: q.Get("status"), Group: q.Get("group"),
		Statuses: statuses, Paged: q.Get("cursor") != "", Checked: map[string]bool{}, Assigned: map[string]bool{},
		Columns: c.offeredColumns(), Shown: c.chosenColumns(nil, r, s.UserID)}
	users, err := c.activeUsers(r.Context(), s.TenantID)
	if err != nil {
		return "", v, err
	}
	d.Users = users
	d.Bulk, d.BulkUsers = true, users
	if !s.IsAdmin() {
		pol, err := c.d.Commands.GetPolicy(r.Context(), s.TenantID)
		if err != nil {
			return "", v, err
		}
		d.Bulk = domain.AuthorizeAssignment(s.Actor, pol, s.UserID) == nil
		d.BulkUsers = slices.DeleteFunc(slices.Clone(users), func(u commands.UserView) bool { return u.ID != s.UserID })
	}
	if d.Groups, err = c.d.Queries.Groups(r.Context(), s.TenantID); err != nil {
		return "", v, err
	}
	if d.Views, err = c.d.Queries.ViewsOf(r.Context(), s.TenantID, s.UserID); err != nil {
		return "", v, err
	}
	// The filters' IDs are checked as GET /v1/customers checks them: a
	// malformed one is 400, an unknown one matches no customer.
	f := projections.CustomerFilter{Q: d.Q, Status: d.Status}
	if d.Group != "" {
		if f.Group, err = c.d.ParseID(d.Group, "group"); err != nil {
			return "", v, err
		}
	}
	chosen := assignedValues(q["assigned_user"])
	d.AssignedUser = apiAssigned(s, chosen)
	if f.AssignedUser, f.AssignedUsers, err = c.assignedFilter(s, chosen); err != nil {
		return "", v, err
	}
	names := map[string]string{"me": "me", "none": "no one"}
	for _, u := range users {
		names[u.ID] = u.Name
	}
	for _, a := range chosen {
		d.Assigned[a] = true
		if n, ok := names[a]; ok {
			d.AssignedNames = append(d.AssignedNames, n)
		} else {
			d.AssignedNames = append(d.AssignedNames, a)
		}
	}
	if d.Status != "" && !slices.Contains(statuses, d.Status) {
		d.Status, f.Status = "", ""
	}
	cursor := q.Get("cursor")
	pg, err := c.d.Queries.Customers(r.Context(), s.TenantID, f, pageSize, cursor)
	if err != nil {
		return "", v, err
	}
	d.Items, d.Next = pg.Items, pg.NextCursor
	if d.Total, err = c.d.Queries.CountCustomers(r.Context(), s.TenantID, f); err != nil {
		return "", v, err
	}
	if d.Shown[colFollowUps] {
		ids := make([]string, len(d.Items))
		for i, it := range d.Items {
			ids[i] = it.ID
		}
		if d.FollowUps, err = c.d.Queries.DueFollowUpsByCustomer(r.Context(), s.TenantID, ids, time.Now()); err != nil {
			return "", v, err
		}
	}
	nq := url.Values{}
	for _, k := range []string{"q", "status", "group"} {
		if val := q.Get(k); val != "" {
			nq.Set(k, val)
		}
	}
	if len(chosen) > 0 {
		nq["assigned_user"] = chosen
	}
	d.Query = nq.Encode()
	d.FirstURL = "/customers?" + d.Query
	for _, fm := range exportFormats {
		eq := url.Values{}
		for k, vals := range nq {
			eq[k] = vals
		}
		eq.Set("format", fm[0])
		d.Exports = append(d.Exports, exportLink{Format: fm[0], Label: fm[1], URL: "/customers/export?" + eq.Encode()})
	}
	d.PrevURL, d.NextURL, d.From = pageLinks("/customers", nq, q, cursor, d.Next)
	if len(d.Items) > 0 {
		d.To = d.From + len(d.Items) - 1
	} else {
		d.From = 0
	}
	v.Title, v.Nav, v.Data = "Customers", "customers", d
	return "customers", v, nil
}

// maxPrevCursors bounds the previous pages a page link remembers (the
// list pages forward by a keyset cursor: going back replays a kept
// cursor). Further back, "First page" still leads to the start.
const maxPrevCursors = 20

// pageLinks makes a keyset-paged list's previous and next links. The
// cursors of the pages before this one travel in the links (prev=, the
// nearest last; the first page's is empty) with the page's number (p=),
// so "Previous page" needs no query the read model does not have.
// Answers the links (empty when there is none) and this page's first
// row's number.
func pageLinks(path string, filters, q url.Values, cursor, next string) (prevURL, nextURL string, from int) {
	page, err := strconv.Atoi(q.Get("p"))
	if err != nil || page < 1 || cursor == "" {
		page = 1
	}
	prev := q["prev"]
	if cursor == "" {
		prev = nil
	}
	link := func(cur string, stack []string, p int) string {
		lq := url.Values{}
		for k, vals := range filters {
			lq[k] = vals
		}
		if cur != "" {
			lq.Set("cursor", cur)
			lq["prev"] = stack
			lq.Set("p", strconv.Itoa(p))
		}
		return path + "?" + lq.Encode()
	}
	if len(prev) > 0 {
		last := len(prev) - 1
		prevURL = link(prev[last], prev[:last], page-1)
	}
	if next != "" {
		stack := append(slices.Clone(prev), cursor)
		if len(stack) > maxPrevCursors {
			stack = stack[len(stack)-maxPrevCursors:]
		}
		nextURL = link(next, stack, page+1)
	}
	return prevURL, nextURL, (page-1)*pageSize + 1
}

// assignedValues splits the Assigned-user filter's values: repeated
// parameters (the ticks) or the API's comma-separated list.
func assignedValues(raw []string) []string {
	var out []string
	for _, r := range raw {
		for _, part := range strings.Split(r, ",") {
			if part = strings.TrimSpace(part); part != "" && !slices.Contains(out, part) {
				out = append(out, part)
			}
		}
	}
	return out
}

// errNoneWithUsers and errTooManyAssigned refuse what the API's
// assigned_user refuses.
var (
	errNoneWithUsers   = &domain.ValidationError{Field: "assigned_user", Detail: "no one cannot be combined with users"}
	errTooManyAssigned = &domain.ValidationError{Field: "assigned_user", Detail: "at most 100 users in assigned_user"}
)

// maxAssignedFilter is the API's limit on assigned_user's users.
const maxAssignedFilter = 100

// assignedFilter turns the filter's values into the list's filter as GET
// /v1/customers does: one user walks that user's customers, several their
// union, "none" the unassigned; "me" is the signed-in user.
func (c *Console) assignedFilter(s sessionInfo, chosen []string) (one string, several []string, err error) {
	if slices.Contains(chosen, "none") {
		if len(chosen) > 1 {
			return "", nil, errNoneWithUsers
		}
		return "none", nil, nil
	}
	if len(chosen) > maxAssignedFilter {
		return "", nil, errTooManyAssigned
	}
	for _, a := range chosen {
		id := s.UserID
		if a != "me" {
			if id, err = c.d.ParseID(a, "assigned_user"); err != nil {
				return "", nil, err
			}
		}
		if !slices.Contains(several, id) {
			several = append(several, id)
		}
	}
	if len(several) == 1 {
		return several[0], nil, nil
	}
	return "", several, nil
}

// apiAssigned is the filter's assigned_user as the API's selection and
// export take it: "none", or comma-separated user IDs ("me" resolved).
func apiAssigned(s sessionInfo, raw []string) string {
	vals := assignedValues(raw)
	for i, v := range vals {
		if v == "me" {
			vals[i] = s.UserID
		}
	}
	return strings.Join(vals, ",")
}

// bulkForm is the bulk edit as the customer table's form posts it.
type bulkForm struct {
	Action string
	// UserIDs are the users to add, remove or set (user_ids; the older
	// single user_id is read too).
	UserIDs     []string
	GroupID     string
	CustomerIDs []string
}

func readBulkForm(r *nethttp.Request) bulkForm {
	f := bulkForm{Action: r.PostForm.Get("action"), GroupID: r.PostForm.Get("group_id"), CustomerIDs: r.PostForm["customer_ids"]}
	for _, id := range append(slices.Clone(r.PostForm["user_ids"]), r.PostForm["user_id"]...) {
		if id != "" && !slices.Contains(f.UserIDs, id) {
			f.UserIDs = append(f.UserIDs, id)
		}
	}
	return f
}

func (f bulkForm) request(dryRun bool) commands.BulkRequest {
	return commands.BulkRequest{Action: f.Action, CustomerIDs: f.CustomerIDs, UserIDs: f.UserIDs, DryRun: dryRun}
}

// customerAction is the form's action when it is one of POST
// /v1/customers/bulk's (block, unblock, groups, delete), an admin's route.
func (f bulkForm) customerAction() (domain.CustomerAction, bool) {
	a := domain.CustomerAction(f.Action)
	return a, a.Valid()
}

func (f bulkForm) customerRequest(dryRun bool) commands.CustomerBulkRequest {
	a, _ := f.customerAction()
	return commands.CustomerBulkRequest{Action: a, CustomerIDs: f.CustomerIDs, GroupID: f.GroupID, DryRun: dryRun}
}

// checkBulkIDs checks a bulk form's IDs as POST /v1/assignments/bulk and
// /v1/customers/bulk check theirs.
func (c *Console) checkBulkIDs(f bulkForm) error {
	if err := c.checkIDs("customer_ids", f.CustomerIDs...); err != nil {
		return err
	}
	if err := c.checkIDs("group_id", f.GroupID); err != nil {
		return err
	}
	return c.checkIDs("user_ids", f.UserIDs...)
}

// errNothingSelected and errNoUser are the console's own input checks,
// before the command: the form can be sent without a choice.
var (
	errNothingSelected = &domain.ValidationError{Field: "customer_ids", Detail: "tick at least one customer"}
	errNoUser          = &domain.ValidationError{Field: "user_id", Detail: "choose a user"}
)

// maxReviewRows bounds each review tab's list: a selection of 10,000
// customers is counted in full but not listed in full.
const maxReviewRows = 200

// reviewRow is one pair of the review tabs, with names.
type reviewRow struct {
	CustomerID, Customer, User, Code, Detail string
}

type reviewData struct {
	Form                         bulkForm
	ToBeAssigned, ToBeDeassigned []reviewRow
	Unchanged, Errors            []reviewRow
	ActionLabel                  string
	UserNames                    []string
	// Counts are the tabs' sizes (to be assigned, to be deassigned,
	// unchanged, errors); each tab lists at most maxReviewRows.
	Counts [4]int
	// CanSave is false when the plan has errors or changes nothing.
	CanSave bool
	// BackURL is the customer table with the filters the edit came from
	// (Back: those filters, carried through Save).
	BackURL, Back string
}

// bulkReview runs the bulk edit as a dry run and shows its plan in the
// review tabs (to be assigned / to be deassigned / unchanged / errors);
// nothing is written until Save.
func (c *Console) bulkReview(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	f := readBulkForm(r)
	if _, ok := f.customerAction(); ok {
		// Blocking, groups and deleting are POST /v1/customers/bulk, an
		// admin's route: a member is refused before anything else is
		// looked at, as there.
		if err := domain.RequireAdmin(s.Actor); err != nil {
			c.problem(w, r, err)
			return
		}
	}
	back := func(v view) (string, view, error) {
		r2 := r.Clone(r.Context())
		r2.URL.RawQuery = r.PostForm.Get("back")
		name, v, err := c.customersPage(r2, s, v)
		if err == nil {
			d := v.Data.(customersData)
			for _, id := range f.CustomerIDs {
				d.Checked[id] = true
			}
			v.Data = d
		}
		return name, v, err
	}
	var err error
	if r.PostForm.Get("all_matching") == "on" {
		// The filters the table showed, as the back link carries them.
		back, _ := url.ParseQuery(r.PostForm.Get("back"))
		assigned := apiAssigned(s, back["assigned_user"])
		if c.d.SelectMatching == nil {
			err = errNothingSelected
		} else {
			f.CustomerIDs, err = c.d.SelectMatching(r.Context(), s.Principal, back.Get("q"), back.Get("status"), assigned, back.Get("group"))
		}
	}
	if err == nil {
		err = c.checkBulkIDs(f)
	}
	switch {
	case err != nil:
	case len(f.CustomerIDs) == 0:
		err = errNothingSelected
	case f.Action == string(domain.CustomerActionDelete):
		c.bulkEraseReview(w, r, s, f, back)
		return
	case f.Action == string(domain.CustomerActionBlock) || f.Action == string(domain.CustomerActionUnblock) ||
		f.Action == string(domain.CustomerActionAddToGroup) || f.Action == string(domain.CustomerActionRemoveFromGroup):
		c.bulkCustomersReview(w, r, s, f, back)
		return
	case len(f.UserIDs) == 0:
		err = errNoUser
	}
	var res commands.BulkResult
	if err == nil {
		res, err = c.d.Commands.BulkEdit(r.Context(), c.meta(s), f.request(true))
	}
	if err != nil {
		c.refused(w, r, err, "bulk", back)
		return
	}
	d, err := c.reviewData(r.Context(), s, f, res)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d.Back = r.PostForm.Get("back")
	d.BackURL = customersURL(d.Back)
	c.render(w, r, nethttp.StatusOK, "review", view{Title: "Review bulk edit", Nav: "customers", Data: d})
}

func (c *Console) reviewData(ctx context.Context, s sessionInfo, f bulkForm, res commands.BulkResult) (reviewData, error) {
	d := reviewData{Form: f}
	names, err := c.d.Queries.CustomersByID(ctx, s.TenantID, f.CustomerIDs)
	if err != nil {
		return d, err
	}
	users, err := c.activeUsers(ctx, s.TenantID)
	if err != nil {
		return d, err
	}
	userName := map[string]string{}
	for _, u := range users {
		userName[u.ID] = u.Name
	}
	row := func(customerID, userID string) reviewRow {
		rr := reviewRow{CustomerID: customerID, Customer: customerID, User: userName[userID]}
		if cu, ok := names[customerID]; ok {
			rr.Customer = strings.TrimSpace(cu.FirstName + " " + cu.LastName)
			if rr.Customer == "" {
				rr.Customer = cu.Email
			}
		}
		if rr.User == "" {
			rr.User = userID
		}
		return rr
	}
	d.Counts = [4]int{len(res.ToBeAssigned), len(res.ToBeDeassigned), len(res.Unchanged), len(res.Errors)}
	res.ToBeAssigned, res.ToBeDeassigned = res.ToBeAssigned[:min(len(res.ToBeAssigned), maxReviewRows)], res.ToBeDeassigned[:min(len(res.ToBeDeassigned), maxReviewRows)]
	res.Unchanged, res.Errors = res.Unchanged[:min(len(res.Unchanged), maxReviewRows)], res.Errors[:min(len(res.Errors), maxReviewRows)]
	for _, p := range res.ToBeAssigned {
		d.ToBeAssigned = append(d.ToBeAssigned, row(p.CustomerID, p.UserID))
	}
	for _, p := range res.ToBeDeassigned {
		d.ToBeDeassigned = append(d.ToBeDeassigned, row(p.CustomerID, p.UserID))
	}
	for _, p := range res.Unchanged {
		d.Unchanged = append(d.Unchanged, row(p.CustomerID, p.UserID))
	}
	details := make([]string, 0, len(res.Errors))
	for _, e := range res.Errors {
		details = append(details, e.Detail)
	}
	n, err := c.namerFor(ctx, s.TenantID, details...)
	if err != nil {
		return d, err
	}
	for _, e := range res.Errors {
		rr := row(e.CustomerID, e.UserID)
		rr.Code, rr.Detail = e.Code, n.name(e.Detail)
		d.Errors = append(d.Errors, rr)
	}
	for _, id := range f.UserIDs {
		if n := userName[id]; n != "" {
			d.UserNames = append(d.UserNames, n)
		} else {
			d.UserNames = append(d.UserNames, id)
		}
	}
	d.ActionLabel = map[string]string{"add": "Add", "remove": "Remove", "set": "Make the only assignee:"}[f.Action]
	d.CanSave = d.Counts[3] == 0 && d.Counts[0]+d.Counts[1] > 0
	return d, nil
}

// bulkSave carries out the reviewed bulk edit. Whatever changed since the
// review, the command decides again: a refusal is shown on the review.
func (c *Console) bulkSave(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	f := readBulkForm(r)
	_, customerAction := f.customerAction()
	if customerAction {
		if err := domain.RequireAdmin(s.Actor); err != nil {
			c.problem(w, r, err)
			return
		}
	}
	if err := c.checkBulkIDs(f); err != nil {
		c.problem(w, r, err)
		return
	}
	if len(f.CustomerIDs) > 0 && f.Action == string(domain.CustomerActionDelete) {
		c.bulkErase(w, r, s, f)
		return
	}
	if len(f.CustomerIDs) > 0 && customerAction {
		c.bulkCustomersSave(w, r, s, f)
		return
	}
	if len(f.CustomerIDs) == 0 || len(f.UserIDs) == 0 {
		nethttp.Redirect(w, r, "/customers", nethttp.StatusSeeOther)
		return
	}
	res, err := c.d.Commands.BulkEdit(r.Context(), c.meta(s), f.request(false))
	if err != nil {
		c.refused(w, r, err, "review", func(v view) (string, view, error) {
			plan, perr := c.d.Commands.BulkEdit(r.Context(), c.meta(s), f.request(true))
			if perr != nil {
				var bulk *commands.BulkRejectedError
				if !errors.As(perr, &bulk) {
					plan = commands.BulkResult{}
				}
			}
			d, derr := c.reviewData(r.Context(), s, f, plan)
			d.Back = r.PostForm.Get("back")
			d.BackURL = customersURL(d.Back)
			v.Title, v.Nav, v.Data = "Review bulk edit", "customers", d
			return "review", v, derr
		})
		return
	}
	redirectAfter(w, r, customersURL(r.PostForm.Get("back")), res.Position, "bulk")
}

// customersURL is the customer list as a bulk page's form left it (its
// "back" field: the list's query), where the page's Back link and its
// redirect lead.
func customersURL(query string) string {
	if query == "" {
		return "/customers"
	}
	return "/customers?" + query
}

// export downloads the table's filtered list in the format ?format= names
// (the API's formats; "me" resolved as the table resolves it).
func (c *Console) export(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	if c.d.Export == nil {
		nethttp.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if a := apiAssigned(s, q["assigned_user"]); a != "" {
		q.Set("assigned_user", a)
	}
	q.Del("cursor")
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = q.Encode()
	c.d.Export(w, r2, s.Principal)
}
