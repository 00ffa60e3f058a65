package http

import (
	nethttp "net/http"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
)

type messageBody struct {
	CustomerIDs []string       `json:"customer_ids"`
	Filter      *bulkFilterDoc `json:"filter"`
	// View is a saved view standing for Filter (v3).
	View    string `json:"view"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// messageCustomers is POST /v1/customers/messages: 202, since the e-mails
// are queued, not yet sent. What no recipient could change (the text, no
// e-mail configured) is refused before the selection is read.
func (s *Server) messageCustomers(w nethttp.ResponseWriter, r *nethttp.Request) error {
	var body messageBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	if _, err := s.cmd.CheckMessage(m, body.Subject, body.Body); err != nil {
		return err
	}
	req := commands.MessageRequest{Subject: body.Subject, Body: body.Body}
	if req.CustomerIDs, _, err = s.bulkSelection(r, body.CustomerIDs, body.Filter, body.View); err != nil {
		return err
	}
	res, err := s.cmd.MessageCustomers(r.Context(), m, req)
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusAccepted, res.Position, res)
	return nil
}

// getMessage is GET /v1/messages/{id}: the message's delivery counts.
func (s *Server) getMessage(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := requiredID(r.Context(), chi.URLParam(r, "id"), "id")
	if err != nil {
		return err
	}
	v, err := s.cmd.GetMessage(r.Context(), principal(r.Context()).TenantID, id)
	if err != nil {
		return err
	}
	writeJSON(w, nethttp.StatusOK, v)
	return nil
}
