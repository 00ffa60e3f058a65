package http

import (
	"context"
	nethttp "net/http"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

type userIDBody struct {
	UserID string `json:"user_id"`
}

func (s *Server) assignUser(w nethttp.ResponseWriter, r *nethttp.Request) error {
	return s.userCommand(w, r, s.cmd.AssignUser)
}

func (s *Server) makeTeamLead(w nethttp.ResponseWriter, r *nethttp.Request) error {
	return s.userCommand(w, r, s.cmd.MakeTeamLead)
}

// userCommand runs a customer command whose body names a user.
func (s *Server) userCommand(w nethttp.ResponseWriter, r *nethttp.Request,
	run func(ctx context.Context, m commands.Meta, customerID, userID string) (commands.CustomerResult, error)) error {
	customerID, err := idParam(r, "id")
	if err != nil {
		return err
	}
	var body userIDBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	userID, err := requiredID(r.Context(), body.UserID, "user_id")
	if err != nil {
		return err
	}
	res, err := run(r.Context(), m, customerID, userID)
	if err != nil {
		return err
	}
	writeCustomer(w, nethttp.StatusOK, res)
	return nil
}

func (s *Server) unassignUser(w nethttp.ResponseWriter, r *nethttp.Request) error {
	customerID, err := idParam(r, "id")
	if err != nil {
		return err
	}
	userID, err := idParam(r, "user_id")
	if err != nil {
		return err
	}
	m, err := s.command(r, nil)
	if err != nil {
		return err
	}
	res, err := s.cmd.UnassignUser(r.Context(), m, customerID, userID)
	if err != nil {
		return err
	}
	writeCustomer(w, nethttp.StatusOK, res)
	return nil
}

type setTeamBody struct {
	UserIDs *[]string `json:"user_ids"`
	Lead    string    `json:"lead"`
}

// setTeam is SetTeam: PUT /v1/customers/{id}/assignees.
func (s *Server) setTeam(w nethttp.ResponseWriter, r *nethttp.Request) error {
	customerID, err := idParam(r, "id")
	if err != nil {
		return err
	}
	var body setTeamBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	// user_ids is required, and [] is a valid answer (an empty team): a
	// forgotten field must not empty a team.
	if body.UserIDs == nil {
		return badRequest("invalid_input", "user_ids", "user_ids is required (send [] for an empty team)")
	}
	if len(*body.UserIDs) > domain.MaxAssigneesLimit {
		return badRequest("invalid_input", "user_ids", "at most %d users per team", domain.MaxAssigneesLimit)
	}
	ids := make([]string, 0, len(*body.UserIDs))
	for _, raw := range *body.UserIDs {
		id, err := resolveID(r.Context(), raw, "user_ids")
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	lead := ""
	if body.Lead != "" {
		if lead, err = resolveID(r.Context(), body.Lead, "lead"); err != nil {
			return err
		}
	}
	res, err := s.cmd.SetTeam(r.Context(), m, customerID, ids, lead)
	if err != nil {
		return err
	}
	writeCustomer(w, nethttp.StatusOK, res)
	return nil
}

type replaceBody struct {
	WithUserID string `json:"with_user_id"`
}

func (s *Server) replaceTeamMember(w nethttp.ResponseWriter, r *nethttp.Request) error {
	customerID, err := idParam(r, "id")
	if err != nil {
		return err
	}
	userID, err := idParam(r, "user_id")
	if err != nil {
		return err
	}
	var body replaceBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	with, err := requiredID(r.Context(), body.WithUserID, "with_user_id")
	if err != nil {
		return err
	}
	res, err := s.cmd.ReplaceTeamMember(r.Context(), m, customerID, userID, with)
	if err != nil {
		return err
	}
	writeCustomer(w, nethttp.StatusOK, res)
	return nil
}

type bulkBody struct {
	Action      string         `json:"action"`
	CustomerIDs []string       `json:"customer_ids"`
	Filter      *bulkFilterDoc `json:"filter"`
	// View is a saved view standing for Filter (v3).
	View    string   `json:"view"`
	UserIDs []string `json:"user_ids"`
	DryRun  bool     `json:"dry_run"`
}

// maxBulkCustomers is the contract's limit for one bulk edit.
const maxBulkCustomers = 10_000

func (s *Server) bulkEdit(w nethttp.ResponseWriter, r *nethttp.Request) error {
	var body bulkBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	if body.Action == "auto_assign" {
		return s.bulkAutoAssign(w, r, m, body)
	}
	if body.Action != "add" && body.Action != "remove" && body.Action != "set" {
		return badRequest("invalid_input", "action", `action must be "add", "remove", "set" or "auto_assign"`)
	}
	if body.UserIDs == nil || (len(body.UserIDs) == 0 && body.Action != "set") {
		// set to no one ([]) empties the teams, as SetTeam does.
		return badRequest("invalid_input", "user_ids", "user_ids must not be empty")
	}
	if len(body.UserIDs) > 100 {
		return badRequest("invalid_input", "user_ids", "at most 100 users per bulk edit")
	}
	req := commands.BulkRequest{Action: body.Action, DryRun: body.DryRun}
	for _, id := range body.UserIDs {
		uid, err := resolveID(r.Context(), id, "user_ids")
		if err != nil {
			return err
		}
		req.UserIDs = append(req.UserIDs, uid)
	}
	if req.CustomerIDs, req.Selected, err = s.bulkSelection(r, body.CustomerIDs, body.Filter, body.View); err != nil {
		return err
	}
	res, err := s.cmd.BulkEdit(r.Context(), m, req)
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusOK, res.Position, res)
	return nil
}

// bulkAutoAssign is the assignments bulk call's "auto_assign" (admin): the
// assignment rules applied to every selected customer, all or nothing.
func (s *Server) bulkAutoAssign(w nethttp.ResponseWriter, r *nethttp.Request, m commands.Meta, body bulkBody) error {
	if len(body.UserIDs) > 0 {
		return badRequest("invalid_input", "user_ids", "auto_assign takes no user_ids: the rules choose")
	}
	if err := domain.RequireAdmin(m.Actor); err != nil {
		return err
	}
	ids, selected, err := s.bulkSelection(r, body.CustomerIDs, body.Filter, body.View)
	if err != nil {
		return err
	}
	res, err := s.cmd.BulkAutoAssign(r.Context(), m, ids, body.DryRun, selected)
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusOK, res.Position, res)
	return nil
}
