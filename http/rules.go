package http

import (
	nethttp "net/http"

	"github.com/assignment-ledger/ledger/domain"
)

// ruleBody is POST and PUT /v1/assignment-rules' body: the whole rule.
type ruleBody struct {
	Name   *string            `json:"name"`
	Match  *domain.RuleMatch  `json:"match"`
	Assign *domain.RuleAssign `json:"assign"`
	Order  *int               `json:"order"`
}

func (b ruleBody) rule() (domain.RuleBody, error) {
	if b.Name == nil {
		return domain.RuleBody{}, badRequest("invalid_input", "name", "name is required")
	}
	if b.Assign == nil {
		return domain.RuleBody{}, badRequest("invalid_input", "assign", "assign is required: {\"user_ids\":[...],\"strategy\":...}")
	}
	out := domain.RuleBody{Name: *b.Name, Assign: *b.Assign}
	if b.Match != nil {
		out.Match = *b.Match
	}
	if b.Order != nil {
		out.Order = *b.Order
	}
	return out, nil
}

func (s *Server) createRule(w nethttp.ResponseWriter, r *nethttp.Request) error {
	var body ruleBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	rule, err := body.rule()
	if err != nil {
		return err
	}
	res, err := s.cmd.CreateRule(r.Context(), m, rule)
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusCreated, res.Position, res)
	return nil
}

func (s *Server) listRules(w nethttp.ResponseWriter, r *nethttp.Request) error {
	rules, err := s.cmd.ListRules(r.Context(), principal(r.Context()).TenantID)
	if err != nil {
		return err
	}
	pg, err := pageOf(r, rules)
	if err != nil {
		return err
	}
	writeJSON(w, nethttp.StatusOK, pg)
	return nil
}

func (s *Server) getRule(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	rule, err := s.cmd.GetRule(r.Context(), principal(r.Context()).TenantID, id)
	if err != nil {
		return err
	}
	writeJSON(w, nethttp.StatusOK, rule)
	return nil
}

func (s *Server) changeRule(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	var body ruleBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	rule, err := body.rule()
	if err != nil {
		return err
	}
	res, err := s.cmd.ChangeRule(r.Context(), m, id, rule)
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusOK, res.Position, res)
	return nil
}

func (s *Server) deleteRule(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	m, err := s.command(r, nil)
	if err != nil {
		return err
	}
	res, err := s.cmd.DeleteRule(r.Context(), m, id)
	if err != nil {
		return err
	}
	writeNoContent(w, res.Position)
	return nil
}

func (s *Server) autoAssign(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	m, err := s.command(r, nil)
	if err != nil {
		return err
	}
	res, err := s.cmd.AutoAssign(r.Context(), m, id)
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusOK, res.Position, res)
	return nil
}
