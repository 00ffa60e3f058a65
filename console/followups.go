package console

import (
	"context"
	"encoding/json"
	nethttp "net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/projections"
)

// Follow-ups and saved views (issue 23): the customer's follow-ups, "My
// follow-ups" (overdue first), the views picker and "save this filter as a
// view". Every action is the API's command.

// followUpRow is a follow-up with its customer's name.
type followUpRow struct {
	projections.FollowUp
	Customer string
}

// followUpSection is one part of "My follow-ups".
type followUpSection struct {
	ID, Title string
	Items     []followUpRow
}

type myFollowUpsData struct {
	Sections []followUpSection
}

type customerFollowUpsData struct {
	Customer commands.CustomerView
	Items    []projections.FollowUp
	// Form keeps what was typed when the command was refused.
	DueAt, Note, To string
}

// maxFollowUpsShown bounds a follow-ups list of the console's pages: the
// earliest due, one API page's most.
const maxFollowUpsShown = 500

// overdueFollowUps counts the user's overdue follow-ups (the header's
// counter), up to the page's bound.
func (c *Console) overdueFollowUps(ctx context.Context, s sessionInfo) (int, error) {
	if s.IsAuditor() {
		return 0, nil
	}
	return c.d.Queries.CountOverdueFollowUps(ctx, s.TenantID, s.UserID, time.Now(), maxUnreadShown+1)
}

func (c *Console) namedFollowUps(ctx context.Context, tenant string, fs []projections.FollowUp) ([]followUpRow, error) {
	ids := make([]string, 0, len(fs))
	for _, f := range fs {
		ids = append(ids, f.CustomerID)
	}
	byID, err := c.d.Queries.CustomersByID(ctx, tenant, ids)
	if err != nil {
		return nil, err
	}
	out := make([]followUpRow, 0, len(fs))
	for _, f := range fs {
		row := followUpRow{FollowUp: f, Customer: "a customer no longer listed"}
		if cu, ok := byID[f.CustomerID]; ok {
			row.Customer = strings.TrimSpace(cu.FirstName + " " + cu.LastName)
			if row.Customer == "" {
				row.Customer = cu.Email
			}
		}
		out = append(out, row)
	}
	return out, nil
}

// myFollowUps is "My follow-ups": the user's open follow-ups by today's
// teams, overdue first.
func (c *Console) myFollowUps(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	lagging := c.waitForPosition(r, projections.MyClients, projections.CustomerList)
	name, v, err := c.myFollowUpsPage(r, s, view{Lagging: lagging})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, name, v)
}

func (c *Console) myFollowUpsPage(r *nethttp.Request, s sessionInfo, v view) (string, view, error) {
	now := time.Now()
	var d myFollowUpsData
	for _, sec := range []followUpSection{{ID: projections.DueOverdue, Title: "Overdue"}, {ID: projections.DueToday, Title: "Today"},
		{ID: projections.DueUpcoming, Title: "Upcoming"}} {
		fs, err := c.d.Queries.UserFollowUps(r.Context(), s.TenantID, s.UserID, sec.ID, now, maxFollowUpsShown, "")
		if err != nil {
			return "", v, err
		}
		if sec.Items, err = c.namedFollowUps(r.Context(), s.TenantID, fs.Items); err != nil {
			return "", v, err
		}
		d.Sections = append(d.Sections, sec)
	}
	v.Title, v.Nav, v.Data = "My follow-ups", "follow-ups", d
	return "follow-ups", v, nil
}

// customerFollowUps is a customer's follow-ups page: the list and the form
// that schedules one.
func (c *Console) customerFollowUps(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	lagging := c.waitForPosition(r, projections.CustomerList)
	name, v, err := c.customerFollowUpsPage(r, s, view{Lagging: lagging}, customerFollowUpsData{To: domain.FollowUpToTeam})
	if err != nil {
		c.problem(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, name, v)
}

func (c *Console) customerFollowUpsPage(r *nethttp.Request, s sessionInfo, v view, d customerFollowUpsData) (string, view, error) {
	id := chi.URLParam(r, "id")
	cu, err := c.d.Commands.GetCustomer(r.Context(), s.TenantID, id)
	if err != nil {
		return "", v, err
	}
	if err := c.seeCustomer(r.Context(), cu); err != nil {
		return "", v, err
	}
	items, err := c.d.Queries.CustomerFollowUps(r.Context(), s.TenantID, id, maxFollowUpsShown, "")
	if err != nil {
		return "", v, err
	}
	d.Customer, d.Items = cu, items.Items
	title := strings.TrimSpace(cu.FirstName + " " + cu.LastName)
	if title == "" {
		title = cu.Email
	}
	v.Title, v.Nav, v.Data = "Follow-ups of "+title, "customers", d
	return "customer-follow-ups", v, nil
}

// parseLocalTime reads a datetime-local field (no zone: UTC, the times the
// console shows) or an RFC 3339 time.
func parseLocalTime(raw string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, raw, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, &domain.ValidationError{Field: "due_at", Detail: "must be a date and time"}
}

// scheduleFollowUp is the customer page's form (ScheduleFollowUp).
func (c *Console) scheduleFollowUp(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	d := customerFollowUpsData{DueAt: r.PostForm.Get("due_at"), Note: r.PostForm.Get("note"), To: r.PostForm.Get("to")}
	var res commands.FollowUpResult
	due, err := parseLocalTime(d.DueAt)
	if err == nil {
		res, err = c.d.Commands.ScheduleFollowUp(r.Context(), c.meta(s), id, commands.FollowUpRequest{DueAt: due, Note: d.Note, To: d.To})
	}
	if err != nil {
		c.refused(w, r, err, "follow-up", func(v view) (string, view, error) {
			return c.customerFollowUpsPage(r, s, v, d)
		})
		return
	}
	redirectAfter(w, r, "/customers/"+id+"/follow-ups", res.Position, "followup")
}

// followUpAction completes, snoozes (by a day from now) or cancels a
// follow-up, then returns to the page the form was on.
func (c *Console) followUpAction(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	customer := r.PostForm.Get("customer_id")
	back := "/follow-ups"
	if r.PostForm.Get("back") == "customer" {
		back = "/customers/" + customer + "/follow-ups"
	}
	var res commands.FollowUpResult
	err := c.checkIDs("customer_id", customer)
	if err == nil {
		switch r.PostForm.Get("action") {
		case "complete":
			res, err = c.d.Commands.CompleteFollowUp(r.Context(), c.meta(s), customer, id)
		case "snooze":
			res, err = c.d.Commands.SnoozeFollowUp(r.Context(), c.meta(s), customer, id, time.Now().Add(24*time.Hour))
		case "delete":
			res, err = c.d.Commands.CancelFollowUp(r.Context(), c.meta(s), customer, id)
		default:
			err = &domain.ValidationError{Field: "action", Detail: "must be complete, snooze or delete"}
		}
	}
	if err != nil {
		c.problem(w, r, err)
		return
	}
	redirectAfter(w, r, back, res.Position, "followup")
}

// viewRow is a saved view with the customer list's address of its filter.
type viewRow struct {
	projections.SavedView
	URL       string
	Deletable bool
}

type viewsData struct {
	Items []viewRow
}

// viewsPage is the views picker: each view opens the customer list with
// its filter; one's own (an admin: shared ones too) can be deleted.
func (c *Console) viewsPage(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	lagging := c.waitForPosition(r, projections.Views)
	vs, err := c.d.Queries.ViewsOf(r.Context(), s.TenantID, s.UserID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var d viewsData
	for _, v := range vs {
		var f domain.ViewFilter
		_ = json.Unmarshal(v.Filter, &f)
		d.Items = append(d.Items, viewRow{SavedView: v, URL: viewURL(f),
			Deletable: !s.IsAuditor() && (v.OwnerID == s.UserID || (v.Shared && s.IsAdmin()))})
	}
	c.render(w, r, nethttp.StatusOK, "views", view{Title: "Views", Nav: "views", Lagging: lagging, Data: d})
}

// saveView is "save this filter as a view" (CreateView) from the customer
// list's current filters.
func (c *Console) saveView(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	f := domain.ViewFilter{Q: r.PostForm.Get("q"), Status: r.PostForm.Get("status"),
		AssignedUser: r.PostForm.Get("assigned_user"), Group: r.PostForm.Get("group")}
	err := c.checkFilterIDs(f)
	var res commands.ViewResult
	if err == nil {
		res, err = c.d.Commands.CreateView(r.Context(), c.meta(s), r.PostForm.Get("name"), f, r.PostForm.Get("shared") == "on")
	}
	if err != nil {
		c.problem(w, r, err)
		return
	}
	redirectAfter(w, r, "/views", res.Position, "view")
}

// checkFilterIDs checks a filter's IDs as the list checks them.
func (c *Console) checkFilterIDs(f domain.ViewFilter) error {
	if f.Group != "" {
		if _, err := c.d.ParseID(f.Group, "group"); err != nil {
			return err
		}
	}
	switch f.AssignedUser {
	case "", "me", "none":
	default:
		for _, u := range strings.Split(f.AssignedUser, ",") {
			if _, err := c.d.ParseID(strings.TrimSpace(u), "assigned_user"); err != nil {
				return err
			}
		}
	}
	switch f.Status {
	case "", "active", "invited", "blocked":
	default:
		return &domain.ValidationError{Field: "filter.status", Detail: "must be active, invited or blocked"}
	}
	return nil
}

// openView is the customer table's view picker: it opens the table with
// the chosen view's filters (one's own or a shared view; another's private
// one is not found).
func (c *Console) openView(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	id := r.URL.Query().Get("view")
	if id == "" {
		nethttp.Redirect(w, r, "/customers", nethttp.StatusSeeOther)
		return
	}
	if err := c.checkIDs("view", id); err != nil {
		c.problem(w, r, err)
		return
	}
	v, err := c.d.Commands.GetView(r.Context(), s.TenantID, s.Actor, id)
	if err != nil {
		c.problem(w, r, err)
		return
	}
	nethttp.Redirect(w, r, viewURL(v.Filter), nethttp.StatusSeeOther)
}

// viewURL is the customer table's address with filter f.
func viewURL(f domain.ViewFilter) string {
	q := url.Values{}
	for k, val := range map[string]string{"q": f.Q, "status": f.Status, "assigned_user": f.AssignedUser, "group": f.Group} {
		if val != "" {
			q.Set(k, val)
		}
	}
	if len(q) == 0 {
		return "/customers"
	}
	return "/customers?" + q.Encode()
}

// deleteView deletes a view (DeleteView).
func (c *Console) deleteView(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	res, err := c.d.Commands.DeleteView(r.Context(), c.meta(s), chi.URLParam(r, "id"))
	if err != nil {
		c.problem(w, r, err)
		return
	}
	redirectAfter(w, r, "/views", res.Position, "viewdeleted")
}
