package http

import (
	"context"
	"errors"
	nethttp "net/http"
	"time"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/projections"
)

// pFollowUps is the read model that holds the follow-ups: they are a table
// of the customer list's.
const pFollowUps = pCustomers

type followUpBody struct {
	DueAt *string `json:"due_at"`
	Note  *string `json:"note"`
	To    *string `json:"to"`
}

// bodyTime reads a required RFC 3339 time of a JSON body.
func bodyTime(raw *string, field string) (time.Time, error) {
	if raw == nil || *raw == "" {
		return time.Time{}, badRequest("invalid_input", field, "%s is required (an RFC 3339 time)", field)
	}
	t, err := parseTime(*raw)
	if err != nil {
		return time.Time{}, badRequest("invalid_time", field, "%s must be an RFC 3339 time such as 2026-03-03T12:00:00Z", field)
	}
	return t, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// scheduleFollowUp is POST /v1/customers/{id}/follow-ups.
func (s *Server) scheduleFollowUp(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	var body followUpBody
	m, err := s.command(r, &body)
	if err != nil {
		return err
	}
	due, err := bodyTime(body.DueAt, "due_at")
	if err != nil {
		return err
	}
	res, err := s.cmd.ScheduleFollowUp(r.Context(), m, id, commands.FollowUpRequest{DueAt: due, Note: deref(body.Note), To: deref(body.To)})
	if err != nil {
		return err
	}
	writeCommand(w, nethttp.StatusCreated, res.Position, res)
	return nil
}

// customerFollowUps is GET /v1/customers/{id}/follow-ups: the customer's
// open and done follow-ups by due time. The customer is read from its
// stream first, so an unknown one is 404 and an erased one 410.
func (s *Server) customerFollowUps(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	tenant := principal(r.Context()).TenantID
	c, err := s.cmd.GetCustomer(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	if err := s.seeCustomer(r.Context(), c); err != nil {
		return err
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	p, err := s.q.CustomerFollowUps(r.Context(), tenant, id, limit, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	writeJSON(w, nethttp.StatusOK, page[projections.FollowUp]{Items: nonNil(p.Items), NextCursor: p.NextCursor})
	return nil
}

// userFollowUps is GET /v1/users/{id}/follow-ups?due=overdue|today|upcoming
// (the user, an admin or an auditor): the open follow-ups of the user's
// customers by today's team.
func (s *Server) userFollowUps(w nethttp.ResponseWriter, r *nethttp.Request) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	due := r.URL.Query().Get("due")
	switch due {
	case "", projections.DueOverdue, projections.DueToday, projections.DueUpcoming:
	default:
		return badRequest("invalid_input", "due", `due must be "overdue", "today" or "upcoming"`)
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	if err := s.notificationsOf(r, id); err != nil {
		return err
	}
	p, err := s.q.UserFollowUps(r.Context(), principal(r.Context()).TenantID, id, due, time.Now(), limit, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	writeJSON(w, nethttp.StatusOK, page[projections.FollowUp]{Items: nonNil(p.Items), NextCursor: p.NextCursor})
	return nil
}

// followUpCustomer finds the customer of follow-up id in the follow_ups
// read model. A miss waits (within the read-your-writes bound) for the read
// model to reach the tenant's latest event and looks again, so a follow-up
// just scheduled is found; an unknown one is then 404.
func (s *Server) followUpCustomer(ctx context.Context, tenant, id string) (string, error) {
	customer, err := s.q.FollowUpCustomer(ctx, tenant, id)
	if !errors.Is(err, projections.ErrNotFound) {
		return customer, err
	}
	last, err := s.store.LastPosition(ctx, tenant)
	if err != nil {
		return "", err
	}
	wctx, cancel := context.WithTimeout(ctx, maxPositionWait)
	defer cancel()
	if err := s.proj.WaitFor(wctx, last, pFollowUps); err != nil {
		return "", err
	}
	return s.q.FollowUpCustomer(ctx, tenant, id)
}

// followUpCommand runs a command on follow-up {id}.
func (s *Server) followUpCommand(w nethttp.ResponseWriter, r *nethttp.Request, body any, check func() error,
	run func(m commands.Meta, customerID, id string) (commands.FollowUpResult, error), noContent bool) error {
	id, err := idParam(r, "id")
	if err != nil {
		return err
	}
	var m commands.Meta
	if body != nil {
		m, err = s.command(r, body)
	} else {
		m, err = s.commandOptionalBody(r, &struct{}{})
	}
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	customer, err := s.followUpCustomer(r.Context(), m.TenantID, id)
	if err != nil {
		return err
	}
	res, err := run(m, customer, id)
	if err != nil {
		return err
	}
	if noContent {
		writeNoContent(w, res.Position)
		return nil
	}
	writeCommand(w, nethttp.StatusOK, res.Position, res)
	return nil
}

func (s *Server) completeFollowUp(w nethttp.ResponseWriter, r *nethttp.Request) error {
	return s.followUpCommand(w, r, nil, nil, func(m commands.Meta, customerID, id string) (commands.FollowUpResult, error) {
		return s.cmd.CompleteFollowUp(r.Context(), m, customerID, id)
	}, false)
}

type snoozeBody struct {
	Until *string `json:"until"`
}

func (s *Server) snoozeFollowUp(w nethttp.ResponseWriter, r *nethttp.Request) error {
	var body snoozeBody
	var until time.Time
	check := func() (err error) {
		until, err = bodyTime(body.Until, "until")
		return err
	}
	return s.followUpCommand(w, r, &body, check, func(m commands.Meta, customerID, id string) (commands.FollowUpResult, error) {
		return s.cmd.SnoozeFollowUp(r.Context(), m, customerID, id, until)
	}, false)
}

func (s *Server) cancelFollowUp(w nethttp.ResponseWriter, r *nethttp.Request) error {
	return s.followUpCommand(w, r, nil, nil, func(m commands.Meta, customerID, id string) (commands.FollowUpResult, error) {
		return s.cmd.CancelFollowUp(r.Context(), m, customerID, id)
	}, true)
}
