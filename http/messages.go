package http

import (
	nethttp "net/http"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
)

type messageBody struct {
	CustomerIDs []string       `json:"customer_ids"`
	Filter      *bulkFilterDoc `json:"filter"`
	Subject     string         `json:"subject"`
	Body        string         `json:"body"`
}

// messageCustomers is POST /v1/customers/messages: 202, since the e-mails
// are queued, not yet sent. What no recipient could change (the text, no
// e-mail configured) is refused before the selection is read.
func (s *Server) messageCustomers(w nethttp.ResponseWriter, r *nethttp.Request) {
	var body messageBody
	m, err := s.command(r, &body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.cmd.CheckMessage(m, body.Subject, body.Body); err != nil {
		s.writeError(w, r, err)
		return
	}
	req := commands.MessageRequest{Subject: body.Subject, Body: body.Body}
	if req.CustomerIDs, _, err = s.bulkSelection(r, body.CustomerIDs, body.Filter); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.cmd.MessageCustomers(r.Context(), m, req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeCommand(w, nethttp.StatusAccepted, res.Position, res)
}

// getMessage is GET /v1/messages/{id}: the message's delivery counts.
func (s *Server) getMessage(w nethttp.ResponseWriter, r *nethttp.Request) {
	id, err := requiredID(r.Context(), chi.URLParam(r, "id"), "id")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v, err := s.cmd.GetMessage(r.Context(), principal(r.Context()).TenantID, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, nethttp.StatusOK, v)
}
