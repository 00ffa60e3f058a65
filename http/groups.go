package http

import (
	nethttp "net/http"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

type groupBody struct {
	Name *string `json:"name"`
}

func (b groupBody) name() (string, error) {
	if b.Name == nil {
		return "", badRequest("invalid_input", "name", "name is required")
	}
	return *b.Name, nil
}

// groupAnswer is a group command's answer: the group with its customer
// count (from the customer list's read model) and the position token.
type groupAnswer struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Customers int    `json:"customers"`
	Position  int64  `json:"position"`
}

func (s *Server) createGroup(w nethttp.ResponseWriter, r *nethttp.Request) error {
	var body groupBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	name, err := body.name()
	if err != nil {
		return err
	}
	res, err := s.cmd.CreateGroup(r.Context(), m, name)
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusCreated, res.Position, groupAnswer{ID: res.ID, Name: res.Name, Position: res.Position})
	return nil
}

func (s *Server) listGroups(w nethttp.ResponseWriter, r *nethttp.Request) error {
	gs, err := s.q.Groups(r.Context(), principal(r.Context()).TenantID)
	if err != nil {
		return err
	}
	pg, err := pageOf(r, gs)
	if err != nil {
		return err
	}
	writeJSON(w, nethttp.StatusOK, pg)
	return nil
}

func (s *Server) renameGroup(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	var body groupBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	name, err := body.name()
	if err != nil {
		return err
	}
	res, err := s.cmd.RenameGroup(r.Context(), m, id, name)
	if err != nil {
		return err
	}
	n, err := s.q.CountGroupCustomers(r.Context(), m.TenantID, res.ID)
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusOK, res.Position, groupAnswer{ID: res.ID, Name: res.Name, Customers: n, Position: res.Position})
	return nil
}

func (s *Server) deleteGroup(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	m, err := s.command(r, nil)
	if err != nil {
		return err
	}
	res, err := s.cmd.DeleteGroup(r.Context(), m, id)
	if err != nil {
		return err
	}
	writeNoContent(w, res.Position)
	return nil
}

// writeNoContent answers a command with 204 and its position token.
func writeNoContent(w nethttp.ResponseWriter, position int64) {
	setPosition(w, position)
	w.WriteHeader(nethttp.StatusNoContent)
}

type customerBulkBody struct {
	Action      string         `json:"action"`
	CustomerIDs []string       `json:"customer_ids"`
	Filter      *bulkFilterDoc `json:"filter"`
	// View is a saved view standing for Filter (v3).
	View    string `json:"view"`
	GroupID string `json:"group_id"`
	DryRun  bool   `json:"dry_run"`
}

// customerBulk is POST /v1/customers/bulk. An invalid action or a missing
// group_id is refused before the selection is read.
func (s *Server) customerBulk(w nethttp.ResponseWriter, r *nethttp.Request) error {
	var body customerBulkBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	req := commands.CustomerBulkRequest{Action: domain.CustomerAction(body.Action), DryRun: body.DryRun}
	if !req.Action.Valid() {
		return badRequest("invalid_input", "action", `action must be "block", "unblock", "delete", "add_to_group" or "remove_from_group"`)
	}
	if req.Action.NeedsGroup() {
		if req.GroupID, err = requiredID(r.Context(), body.GroupID, "group_id"); err != nil {
			return err
		}
	} else if body.GroupID != "" {
		return badRequest("invalid_input", "group_id", "group_id is only for add_to_group and remove_from_group")
	}
	if req.CustomerIDs, req.Selected, err = s.bulkSelection(r, body.CustomerIDs, body.Filter, body.View); err != nil {
		return err
	}
	res, err := s.cmd.BulkCustomers(r.Context(), m, req)
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusOK, res.Position, res)
	return nil
}
