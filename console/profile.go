package console

import (
	"context"
	"encoding/json"
	"errors"
	nethttp "net/http"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/projections"
)

type profileData struct {
	Customer commands.CustomerView
	Users    []commands.UserView
	// OnTeam marks the users on the team now (the toggles' state).
	OnTeam map[string]bool
	// Mine is whether the signed-in user is on the team (+My Clients).
	Mine    bool
	History []historyEntry
	// AsOf is the picker's value; TeamThen the team at that moment.
	AsOf     string
	AsOfTime time.Time
	TeamThen []projections.Assignee
	// Others are the active users not on the team (Replace's choices).
	Others []commands.UserView
	// Groups are the customer's groups (the customer list's read model);
	// OtherGroups the tenant's groups it is not in (Add's choices).
	Groups, OtherGroups []projections.GroupRef
	// Edit fills the profile form; From is what the form was filled from
	// (the current profile), sent back to tell which fields changed.
	Edit, From profileEdit
	// CanSelfAssign is whether the signed-in user may put themselves on
	// the team or take themselves off (an admin, or a member when the
	// policy lets members self-assign): the My Clients button is shown
	// only then.
	CanSelfAssign bool
	// Lead is the team form's chosen lead ("" keeps it): after a refusal,
	// what the user chose, like the ticks in OnTeam.
	Lead string
	// Picker is the team form's user picker.
	Picker pickerData
}

// teamFormLegend is the profile's team picker's legend.
const teamFormLegend = "Tick who serves this customer, then Save"

// historyEntry is one event of the customer's stream, for the timeline.
type historyEntry struct {
	At    time.Time
	Type  string
	Actor string
	// User and Other name the users the event is about, when it is.
	User, Other string
	Lead        bool
}

// asOfLayout is the datetime-local picker's format (seconds shown, UTC).
const asOfLayout = "2006-01-02T15:04:05"

func (c *Console) profile(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	lagging := c.waitForPosition(r, projections.AssignmentIntervals, projections.CustomerList, projections.Groups)
	name, v, err := c.profilePage(r, s, view{Lagging: lagging})
	if err != nil {
		if ref, known := c.d.Refusal(err); known && (ref.Status == nethttp.StatusNotFound || ref.Status == nethttp.StatusGone) {
			c.gone(w, r, err)
			return
		}
		if _, known := c.d.Refusal(err); known {
			c.refused(w, r, err, "asof", func(v view) (string, view, error) {
				r2 := r.Clone(r.Context())
				r2.URL.RawQuery = ""
				return c.profilePage(r2, s, v)
			})
			return
		}
		c.fail(w, r, err)
		return
	}
	c.render(w, r, nethttp.StatusOK, name, v)
}

func (c *Console) profilePage(r *nethttp.Request, s sessionInfo, v view) (string, view, error) {
	ctx := r.Context()
	id := chi.URLParam(r, "id")
	cu, err := c.d.Commands.GetCustomer(ctx, s.TenantID, id)
	if err != nil {
		return "", v, err
	}
	if err := c.seeCustomer(ctx, cu); err != nil {
		return "", v, err
	}
	users, err := c.activeUsers(ctx, s.TenantID)
	if err != nil {
		return "", v, err
	}
	d := profileData{Customer: cu, Users: users, OnTeam: map[string]bool{}, Edit: editOf(cu), From: editOf(cu)}
	for _, a := range cu.Assignees {
		d.OnTeam[a.UserID] = true
	}
	d.Mine = d.OnTeam[s.UserID]
	team := make([]string, 0, len(cu.Assignees))
	for _, a := range cu.Assignees {
		team = append(team, a.UserID)
	}
	if d.Picker, err = c.teamPicker(ctx, s.TenantID, "user_ids", teamFormLegend, team, ""); err != nil {
		return "", v, err
	}
	if d.CanSelfAssign = s.IsAdmin(); !d.CanSelfAssign {
		pol, err := c.d.Commands.GetPolicy(ctx, s.TenantID)
		if err != nil {
			return "", v, err
		}
		d.CanSelfAssign = domain.AuthorizeAssignment(s.Actor, pol, s.UserID) == nil
	}
	for _, u := range users {
		if !d.OnTeam[u.ID] {
			d.Others = append(d.Others, u)
		}
	}
	if d.History, err = c.history(r, s, cu.ID); err != nil {
		return "", v, err
	}
	if item, err := c.d.Queries.Customer(ctx, s.TenantID, cu.ID); err == nil {
		d.Groups = item.Groups
	} else if !errors.Is(err, projections.ErrNotFound) {
		return "", v, err
	}
	all, err := c.d.Queries.Groups(ctx, s.TenantID)
	if err != nil {
		return "", v, err
	}
	for _, g := range all {
		if !slices.ContainsFunc(d.Groups, func(in projections.GroupRef) bool { return in.ID == g.ID }) {
			d.OtherGroups = append(d.OtherGroups, projections.GroupRef{ID: g.ID, Name: g.Name})
		}
	}
	if raw := r.URL.Query().Get("as_of"); raw != "" {
		at, perr := time.ParseInLocation(asOfLayout, raw, time.UTC)
		if perr != nil {
			// Browsers without seconds in the picker send minutes only.
			at, perr = time.ParseInLocation("2006-01-02T15:04", raw, time.UTC)
		}
		if perr != nil {
			v.Refusal, v.RefusalAt = &Refusal{Status: nethttp.StatusBadRequest, Code: "invalid_input", Field: "as_of",
				Detail: "the date and time must look like 2026-01-31T09:30:00"}, "asof"
		} else {
			d.AsOf, d.AsOfTime = raw, at
			if d.TeamThen, err = c.d.Queries.TeamAsOf(ctx, s.TenantID, cu.ID, at); err != nil {
				return "", v, err
			}
		}
	}
	v.Title, v.Nav, v.Data = fullNameOf(cu), "customers", d
	return "profile", v, nil
}

func fullNameOf(cu commands.CustomerView) string {
	if n := funcs["fullName"].(func(string, string) string)(cu.FirstName, cu.LastName); n != "" {
		return n
	}
	return cu.Email
}

// history is the customer's stream, oldest first, read from the event
// store as GET /v1/customers/{id}/history reads it; user IDs are shown by
// name from the team directory.
func (c *Console) history(r *nethttp.Request, s sessionInfo, customerID string) ([]historyEntry, error) {
	events, err := c.d.Store.ReadStream(r.Context(), s.TenantID, customerID)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	users, err := c.d.Commands.ListUsers(r.Context(), s.TenantID, commands.UsersFilter{}, nil, 500)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		names[u.ID] = u.Name
	}
	name := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		return id
	}
	out := make([]historyEntry, 0, len(events))
	for _, e := range events {
		var data struct {
			UserID         string `json:"user_id"`
			WithUserID     string `json:"with_user_id"`
			PreviousUserID string `json:"previous_user_id"`
			Lead           bool   `json:"lead"`
		}
		_ = json.Unmarshal(e.Data, &data) // a shape without these fields leaves them empty
		h := historyEntry{At: e.RecordedAt, Type: e.Type, Actor: e.Metadata.Actor.Name, Lead: data.Lead}
		if data.UserID != "" {
			h.User = name(data.UserID)
		}
		switch {
		case data.WithUserID != "":
			h.Other = name(data.WithUserID)
		case data.PreviousUserID != "":
			h.Other = name(data.PreviousUserID)
		}
		out = append(out, h)
	}
	return out, nil
}

// profileCommand runs one command from the profile page: success goes back
// to the profile (waiting for the command's position), a refusal is shown
// at the form that was used.
// keep, when not nil, puts what the user chose back on the page after a
// refusal, so they can correct it rather than redo it.
func (c *Console) profileCommand(w nethttp.ResponseWriter, r *nethttp.Request, form, done string,
	run func(s sessionInfo, id string) (commands.CustomerResult, error), keep func(d *profileData)) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	res, err := run(s, id)
	if err != nil {
		c.refused(w, r, err, form, func(v view) (string, view, error) {
			name, v, err := c.profilePage(r, s, v)
			if err == nil && keep != nil {
				d := v.Data.(profileData)
				keep(&d)
				v.Data = d
			}
			return name, v, err
		})
		return
	}
	redirectAfter(w, r, "/customers/"+res.ID+"#"+form, res.Position, done)
}

// toggleMine is the +My Clients button: AssignUser or UnassignUser of
// oneself, as POST/DELETE /v1/customers/{id}/assignees with "me" do.
func (c *Console) toggleMine(w nethttp.ResponseWriter, r *nethttp.Request) {
	c.profileCommand(w, r, "mine", "mine", func(s sessionInfo, id string) (commands.CustomerResult, error) {
		if r.PostForm.Get("mine") == "remove" {
			return c.d.Commands.UnassignUser(r.Context(), c.meta(s), id, s.UserID)
		}
		return c.d.Commands.AssignUser(r.Context(), c.meta(s), id, s.UserID)
	}, nil)
}

// setTeam is the assigned-user toggles and one Save (SetTeam). The
// picker's Find shows the profile again with the search's answers and the
// ticks as left, running no command.
func (c *Console) setTeam(w nethttp.ResponseWriter, r *nethttp.Request) {
	// The toggles as the user left them, not as the team is.
	keep := func(d *profileData) {
		d.OnTeam = map[string]bool{}
		for _, id := range r.PostForm["user_ids"] {
			d.OnTeam[id] = true
		}
		d.Lead = r.PostForm.Get("lead")
		_, q, _ := pickerFind(r)
		s, _ := sessionOf(r.Context())
		if p, err := c.teamPicker(r.Context(), s.TenantID, "user_ids", teamFormLegend, r.PostForm["user_ids"], q); err == nil {
			d.Picker = p
		}
	}
	if _, _, find := pickerFind(r); find {
		s, ok := c.requireSession(w, r)
		if !ok {
			return
		}
		name, v, err := c.profilePage(r, s, view{})
		if err != nil {
			c.problem(w, r, err)
			return
		}
		d := v.Data.(profileData)
		keep(&d)
		v.Data = d
		c.render(w, r, nethttp.StatusOK, name, v)
		return
	}
	c.profileCommand(w, r, "team", "team", func(s sessionInfo, id string) (commands.CustomerResult, error) {
		ids := slices.Clone(r.PostForm["user_ids"])
		if err := c.checkIDs("user_ids", ids...); err != nil {
			return commands.CustomerResult{}, err
		}
		if err := c.checkIDs("lead", r.PostForm.Get("lead")); err != nil {
			return commands.CustomerResult{}, err
		}
		// "" keeps the current lead if kept, else the first ticked under
		// require_lead: the command decides, as for the API's PUT.
		return c.d.Commands.SetTeam(r.Context(), c.meta(s), id, ids, r.PostForm.Get("lead"))
	}, keep)
}

func (c *Console) makeLead(w nethttp.ResponseWriter, r *nethttp.Request) {
	c.profileCommand(w, r, "members", "lead", func(s sessionInfo, id string) (commands.CustomerResult, error) {
		if err := c.requiredID("user_id", r.PostForm.Get("user_id")); err != nil {
			return commands.CustomerResult{}, err
		}
		return c.d.Commands.MakeTeamLead(r.Context(), c.meta(s), id, r.PostForm.Get("user_id"))
	}, nil)
}

func (c *Console) removeMember(w nethttp.ResponseWriter, r *nethttp.Request) {
	c.profileCommand(w, r, "members", "removed", func(s sessionInfo, id string) (commands.CustomerResult, error) {
		if err := c.requiredID("user_id", r.PostForm.Get("user_id")); err != nil {
			return commands.CustomerResult{}, err
		}
		return c.d.Commands.UnassignUser(r.Context(), c.meta(s), id, r.PostForm.Get("user_id"))
	}, nil)
}

func (c *Console) replaceMember(w nethttp.ResponseWriter, r *nethttp.Request) {
	c.profileCommand(w, r, "members", "replaced", func(s sessionInfo, id string) (commands.CustomerResult, error) {
		with := r.PostForm.Get("with_user_id")
		if err := c.requiredID("user_id", r.PostForm.Get("user_id")); err != nil {
			return commands.CustomerResult{}, err
		}
		if with == "" {
			return commands.CustomerResult{}, errNoUser
		}
		if err := c.checkIDs("with_user_id", with); err != nil {
			return commands.CustomerResult{}, err
		}
		return c.d.Commands.ReplaceTeamMember(r.Context(), c.meta(s), id, r.PostForm.Get("user_id"), with)
	}, nil)
}

// block blocks or unblocks the customer (BlockCustomer/UnblockCustomer,
// admin only; the team stays).
func (c *Console) block(w nethttp.ResponseWriter, r *nethttp.Request) {
	unblock := r.PostForm.Get("block") == "unblock"
	done := "blocked"
	if unblock {
		done = "unblocked"
	}
	c.profileCommand(w, r, "mine", done, func(s sessionInfo, id string) (commands.CustomerResult, error) {
		if unblock {
			return c.d.Commands.UnblockCustomer(r.Context(), c.meta(s), id)
		}
		return c.d.Commands.BlockCustomer(r.Context(), c.meta(s), id)
	}, nil)
}

// group adds the customer to a group or removes it (POST
// /v1/customers/bulk's add_to_group / remove_from_group for this one
// customer, admin only).
func (c *Console) group(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	action := domain.CustomerActionAddToGroup
	if r.PostForm.Get("action") == "remove" {
		action = domain.CustomerActionRemoveFromGroup
	}
	res, err := commands.CustomerBulkResult{}, c.checkIDs("group_id", r.PostForm.Get("group_id"))
	if err == nil {
		res, err = c.d.Commands.BulkCustomers(r.Context(), c.meta(s), commands.CustomerBulkRequest{
			Action: action, CustomerIDs: []string{id}, GroupID: r.PostForm.Get("group_id")})
	}
	if err != nil {
		c.refused(w, r, err, "groups", func(v view) (string, view, error) { return c.profilePage(r, s, v) })
		return
	}
	redirectAfter(w, r, "/customers/"+id+"#groups", res.Position, "groups")
}

// seeCustomer answers a customer the signed-in member may not see (under
// members_see "assigned", not on its team) exactly as an unknown one: the
// API's not-found, which the problem page shows as 404.
func (c *Console) seeCustomer(ctx context.Context, cu commands.CustomerView) error {
	team := make([]string, len(cu.Assignees))
	for i, a := range cu.Assignees {
		team[i] = a.UserID
	}
	ok, err := c.d.Queries.SeesTeam(ctx, team)
	if err != nil {
		return err
	}
	if !ok {
		return commands.ErrNotFound
	}
	return nil
}
