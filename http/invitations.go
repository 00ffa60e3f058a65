package http

import (
	"bytes"
	"errors"
	nethttp "net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

type inviteBody struct {
	profileBody
	Team []string `json:"team"`
	// SendEmail also e-mails the client its link and team (outbox).
	SendEmail bool `json:"send_email"`
}

type invitationAnswer struct {
	Customer      commands.CustomerView `json:"customer"`
	InvitationURL string                `json:"invitation_url,omitempty"`
	Position      int64                 `json:"position"`
}

func (s *Server) inviteClient(w nethttp.ResponseWriter, r *nethttp.Request) error {
	var body inviteBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	team, err := teamIDs(r, body.Team)
	if err != nil {
		return err
	}
	res, err := s.cmd.InviteClient(r.Context(), m, body.profile(), team, body.SendEmail)
	if err == nil && res.Replayed {
		err = errReplayUnavailable("invitation_url")
	}
	if err != nil {
		return err
	}
	ans := invitationAnswer{Customer: res.Customer, Position: res.Position}
	if res.Token != "" {
		ans.InvitationURL = s.baseURL + "/invitations/" + res.Token
	}
	w.Header().Set("ETag", etag(res.Customer.Version))
	writeCommand(w, nethttp.StatusCreated, res.Position, ans)
	return nil
}

// teamIDs resolves the user IDs of a new customer's team ("me" allowed).
func teamIDs(r *nethttp.Request, raw []string) ([]string, error) {
	team := make([]string, 0, len(raw))
	for _, id := range raw {
		uid, err := resolveID(r.Context(), id, "team")
		if err != nil {
			return nil, err
		}
		team = append(team, uid)
	}
	return team, nil
}

func (s *Server) acceptInvitation(w nethttp.ResponseWriter, r *nethttp.Request) error {
	token := strings.TrimSpace(chi.URLParam(r, "token"))
	if token == "" || len(token) > 200 {
		writeProblem(w, newProblem(nethttp.StatusNotFound, "not_found", "unknown or used invitation"))
		return nil
	}
	m, err := s.meta(r, nil)
	if err != nil {
		return err
	}
	res, err := s.cmd.AcceptInvitation(r.Context(), m, token)
	if err != nil {
		// A token of a client that can no longer accept (blocked, say) is
		// as unusable as an unknown one: the anonymous caller learns
		// nothing about the client, not even its ID.
		if errors.Is(err, commands.ErrNotFound) || domain.IsRule(err, domain.CodeNotInvited) {
			writeProblem(w, newProblem(nethttp.StatusNotFound, "not_found", "unknown or used invitation"))
			return nil
		}
		return err
	}
	writeCustomer(w, nethttp.StatusOK, res)
	return nil
}

func (s *Server) importTemplate(w nethttp.ResponseWriter, r *nethttp.Request) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="clients-import-template.csv"`)
	_, _ = w.Write(s.cmd.ImportTemplate())
}

// importClients runs under the import time limit (a 100,000-row file takes
// longer than the request limit), its body and all.
func (s *Server) importClients(w nethttp.ResponseWriter, r *nethttp.Request) error {
	if err := s.useLimit(w, r, s.importTimeout); err != nil {
		return err
	}
	body, err := readBody(r, "text/csv", maxCSVBody)
	if err == nil {
		err = badCSVText(body)
	}
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opts := commands.ImportOptions{}
	if opts.DryRun, err = boolParam(q.Get("dry_run"), "dry_run"); err != nil {
		return err
	}
	if opts.UpdateExisting, err = boolParam(q.Get("update_existing"), "update_existing"); err != nil {
		return err
	}
	if opts.Invite, err = boolParam(q.Get("invite"), "invite"); err != nil {
		return err
	}
	m, err := s.meta(r, body)
	if err != nil {
		return err
	}
	report, err := s.cmd.ImportClients(r.Context(), m, bytes.NewReader(body), opts)
	var rejected *commands.ImportRejectedError
	if errors.As(err, &rejected) {
		writeJSON(w, nethttp.StatusUnprocessableEntity, rejected.Report)
		return nil
	}
	if err != nil {
		return err
	}
	if len(report.Invitations) == 0 {
		writeCommand(w, nethttp.StatusOK, report.Position, report)
		return nil
	}
	if report.Replayed {
		// The links' tokens are never stored: a replay cannot answer them,
		// and an answer without them would pass for a complete one.
		return errReplayUnavailable("invitation_url")
	}
	ans := importAnswer{ImportReport: report, Invitations: make([]importInvitation, len(report.Invitations))}
	for i, inv := range report.Invitations {
		ans.Invitations[i] = importInvitation{Row: inv.Row, CustomerID: inv.CustomerID, InvitationURL: s.baseURL + "/invitations/" + inv.Token}
	}
	writeCommand(w, nethttp.StatusOK, report.Position, ans)
	return nil
}

// importAnswer is an import's report with its invitations' links.
type importAnswer struct {
	commands.ImportReport
	Invitations []importInvitation `json:"invitations"`
}

type importInvitation struct {
	Row           int    `json:"row"`
	CustomerID    string `json:"customer_id"`
	InvitationURL string `json:"invitation_url"`
}

func boolParam(raw, name string) (bool, error) {
	switch strings.ToLower(raw) {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, badRequest("invalid_input", name, "%s must be true or false", name)
}
