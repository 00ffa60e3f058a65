package http

import (
	"errors"
	nethttp "net/http"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/projections"
)

const pViews = projections.Views

// viewFilterDoc is a view's filter as sent: the customer list's filters.
type viewFilterDoc struct {
	Q            string `json:"q"`
	Status       string `json:"status"`
	AssignedUser string `json:"assigned_user"`
	Group        string `json:"group"`
}

// checked validates the filter with the customer list's own rules (400
// naming filter.<field>) and returns it as a view keeps it: as sent, so
// "me" stays "me" (whoever uses the view).
func (d viewFilterDoc) checked(r *nethttp.Request) (domain.ViewFilter, error) {
	if _, err := filterOf(r, d.Q, d.Status, d.AssignedUser, d.Group, "filter."); err != nil {
		return domain.ViewFilter{}, err
	}
	return domain.ViewFilter(d), nil
}

type viewBody struct {
	Name   *string        `json:"name"`
	Filter *viewFilterDoc `json:"filter"`
	Shared *bool          `json:"shared"`
}

// createView is POST /v1/views.
func (s *Server) createView(w nethttp.ResponseWriter, r *nethttp.Request) error {
	var body viewBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	if body.Name == nil {
		return badRequest("invalid_input", "name", "name is required")
	}
	var f domain.ViewFilter
	if body.Filter != nil {
		if f, err = body.Filter.checked(r); err != nil {
			return err
		}
	}
	res, err := s.cmd.CreateView(r.Context(), m, *body.Name, f, body.Shared != nil && *body.Shared)
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusCreated, res.Position, res)
	return nil
}

// listViews is GET /v1/views: the caller's own views and the shared ones.
func (s *Server) listViews(w nethttp.ResponseWriter, r *nethttp.Request) error {
	p := principal(r.Context())
	vs, err := s.q.ViewsOf(r.Context(), p.TenantID, p.UserID)
	if err != nil {
		return err
	}
	pg, err := pageOf(r, vs)
	if err != nil {
		return err
	}
	writeJSON(w, nethttp.StatusOK, pg)
	return nil
}

// changeView is PATCH /v1/views/{id}.
func (s *Server) changeView(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	var body viewBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	ch := commands.ViewChange{Name: body.Name, Shared: body.Shared}
	if body.Filter != nil {
		f, err := body.Filter.checked(r)
		if err != nil {
			return err
		}
		ch.Filter = &f
	}
	res, err := s.cmd.ChangeView(r.Context(), m, id, ch)
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusOK, res.Position, res)
	return nil
}

// deleteView is DELETE /v1/views/{id}.
func (s *Server) deleteView(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	m, err := s.command(r, nil)
	if err != nil {
		return err
	}
	res, err := s.cmd.DeleteView(r.Context(), m, id)
	if err != nil {
		return err
	}
	writeNoContent(w, res.Position)
	return nil
}

// viewFilter is the customer filter of saved view raw (a query parameter
// or a bulk body's field, named field), as the caller may use it: its own
// or a shared one, read from its stream (so a view just saved is usable at
// once). An unknown view, or another user's private one, is 404.
func (s *Server) viewFilter(r *nethttp.Request, raw, field string) (projections.CustomerFilter, error) {
	id, err := parseUUID(raw, field)
	if err != nil {
		return projections.CustomerFilter{}, err
	}
	p := principal(r.Context())
	v, err := s.cmd.GetView(r.Context(), p.TenantID, p.Actor, id)
	if err != nil {
		return projections.CustomerFilter{}, err
	}
	f, err := filterOf(r, v.Filter.Q, v.Filter.Status, v.Filter.AssignedUser, v.Filter.Group, "view.")
	var bad *errInput
	if errors.As(err, &bad) {
		// Stored before a rule changed: the view, not the request, is at fault.
		return projections.CustomerFilter{}, badRequest("invalid_input", field, "the view's filter is no longer valid: %s", bad.detail)
	}
	return f, err
}

// narrowByView combines the list's own filter f with saved view raw's: a
// customer must match both. The one with an assigned-user filter leads
// (the indexed walk of a user's customers), the other narrows it.
func (s *Server) narrowByView(r *nethttp.Request, f projections.CustomerFilter, raw string) (projections.CustomerFilter, error) {
	vf, err := s.viewFilter(r, raw, "view")
	if err != nil {
		return f, err
	}
	byUser := func(g projections.CustomerFilter) bool { return g.AssignedUser != "" || len(g.AssignedUsers) > 0 }
	if f.Q == "" && f.Status == "" && f.Group == "" && !byUser(f) {
		return vf, nil
	}
	if byUser(vf) && !byUser(f) {
		vf.Also = &f
		return vf, nil
	}
	f.Also = &vf
	return f, nil
}
