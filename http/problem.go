package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/ledgerlog"
	"github.com/assignment-ledger/ledger/projections"
)

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Code     string `json:"code,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Field names the offending input for validation errors.
	Field string `json:"field,omitempty"`
	// Errors lists every failing pair of a refused bulk edit.
	Errors any `json:"errors,omitempty"`
	// Count is how many customers a bulk call selected when they were too
	// many (too_many_customers).
	Count *int `json:"count,omitempty"`
}

const problemBase = "https://ledger.dev/problems/"

func newProblem(status int, code, detail string) Problem {
	typ := "about:blank"
	if code != "" {
		typ = problemBase + code
	}
	return Problem{Type: typ, Title: nethttp.StatusText(status), Status: status, Detail: detail, Code: code}
}

func writeProblem(w nethttp.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// errInput marks malformed requests found by the HTTP layer itself.
type errInput struct {
	status int
	code   string
	field  string
	detail string
}

func (e *errInput) Error() string { return e.detail }

// tooManyError is a bulk call selecting more customers than one call may
// change (HTTP 422 too_many_customers, with the count).
type tooManyError struct {
	count int
}

func (e *tooManyError) Error() string {
	return fmt.Sprintf("%d customers selected; at most %d per bulk call", e.count, maxBulkCustomers)
}

func badRequest(code, field, format string, args ...any) error {
	return &errInput{status: nethttp.StatusBadRequest, code: code, field: field, detail: fmt.Sprintf(format, args...)}
}

// errReplayUnavailable answers an idempotent replay of a request whose
// answer carried a secret: the store keeps only the secret's hash, and a
// replay must never answer success with the secret blanked out.
func errReplayUnavailable(secret string) error {
	return &errInput{status: nethttp.StatusConflict, code: "replay_unavailable",
		detail: fmt.Sprintf("this Idempotency-Key was already used and its answer carried a secret (%s) that is not kept: "+
			"the first request succeeded; send a new request without this key for a new one", secret)}
}

// errorToProblem is the one place where typed errors become HTTP answers.
func errorToProblem(err error) (Problem, bool) {
	var (
		in       *errInput
		rule     *domain.RuleError
		invalid  *domain.ValidationError
		denied   *domain.ForbiddenError
		bulk     *commands.BulkRejectedError
		custBulk *commands.CustomerBulkRejectedError
		imported *commands.ImportRejectedError
		tooMany  *tooManyError
		claim    *eventstore.ClaimTakenError
		outside  *ledgerlog.RangeError
	)
	switch {
	case errors.As(err, &outside):
		p := newProblem(nethttp.StatusBadRequest, "invalid_input", outside.Detail)
		p.Field = outside.Param
		return p, true
	case errors.Is(err, ledgerlog.ErrNoTree):
		return newProblem(nethttp.StatusNotFound, "not_found", "the tenant's ledger log has no events yet"), true
	case errors.As(err, &in):
		p := newProblem(in.status, in.code, in.detail)
		p.Field = in.field
		return p, true
	case errors.As(err, &bulk):
		p := newProblem(nethttp.StatusConflict, "bulk_edit_refused", fmt.Sprintf("%d pair(s) break a rule; nothing was written", len(bulk.Errors)))
		p.Errors = bulk.Errors
		return p, true
	case errors.As(err, &custBulk):
		p := newProblem(nethttp.StatusConflict, "bulk_action_refused", fmt.Sprintf("%d customer(s) cannot take the action; nothing was written", len(custBulk.Errors)))
		p.Errors = custBulk.Errors
		return p, true
	case errors.As(err, &tooMany):
		p := newProblem(nethttp.StatusUnprocessableEntity, "too_many_customers", tooMany.Error()+"; narrow the selection")
		p.Count = &tooMany.count
		return p, true
	case errors.As(err, &imported):
		return Problem{}, false // answered with the report itself, see importClients
	case errors.As(err, &rule):
		if rule.Unprocessable() {
			return newProblem(nethttp.StatusUnprocessableEntity, rule.Code, rule.Detail), true
		}
		return newProblem(nethttp.StatusConflict, rule.Code, rule.Detail), true
	case errors.As(err, &invalid):
		p := newProblem(nethttp.StatusBadRequest, "invalid_input", invalid.Error())
		p.Field = invalid.Field
		return p, true
	case errors.As(err, &denied):
		return newProblem(nethttp.StatusForbidden, "forbidden", denied.Detail), true
	case errors.Is(err, projections.ErrBadCursor):
		p := newProblem(nethttp.StatusBadRequest, "invalid_cursor", "the cursor is not one this list issued")
		p.Field = "cursor"
		return p, true
	case errors.Is(err, commands.ErrErased):
		return newProblem(nethttp.StatusGone, "erased", "the customer was erased; only its history remains"), true
	case errors.Is(err, commands.ErrNotFound), errors.Is(err, eventstore.ErrNotFound), errors.Is(err, projections.ErrNotFound):
		return newProblem(nethttp.StatusNotFound, "not_found", "no such resource"), true
	case errors.Is(err, commands.ErrEmailNotConfigured):
		return newProblem(nethttp.StatusUnprocessableEntity, "email_not_configured", "e-mail is not configured on this server (LEDGER_SMTP_URL, LEDGER_MAIL_FROM)"), true
	case errors.Is(err, commands.ErrPreconditionFailed):
		return newProblem(nethttp.StatusPreconditionFailed, "version_mismatch", "the resource has changed since the version given in If-Match"), true
	case errors.Is(err, eventstore.ErrReplayUnavailable):
		return newProblem(nethttp.StatusConflict, "replay_unavailable", "this Idempotency-Key was already used and its answer "+
			"named a customer that has since been erased: the answer is not kept and the request is not run again"), true
	case errors.Is(err, eventstore.ErrIdempotencyKeyReused):
		return newProblem(nethttp.StatusUnprocessableEntity, "idempotency_key_reused", "this Idempotency-Key was used with a different request"), true
	case errors.As(err, &claim):
		return newProblem(nethttp.StatusConflict, claim.Kind+"_taken", err.Error()), true
	case errors.Is(err, projections.ErrWaitTimeout):
		return newProblem(nethttp.StatusServiceUnavailable, "position_not_reached", "the read models have not caught up with the requested position yet"), true
	}
	// Driver errors become the store's sentinels here, whichever package
	// ran the query.
	switch err = eventstore.Translate(err); {
	case errors.Is(err, eventstore.ErrUnavailable):
		return newProblem(nethttp.StatusServiceUnavailable, "unavailable", "the database is unavailable or too slow; retry later"), true
	case errors.Is(err, eventstore.ErrConflict), errors.Is(err, eventstore.ErrVersionMismatch):
		return newProblem(nethttp.StatusConflict, "concurrent_modification", "the resource was changed concurrently; retry"), true
	}
	return Problem{}, false
}

// writeError answers err as a problem; unexpected errors are logged and 500.
func (s *Server) writeError(w nethttp.ResponseWriter, r *nethttp.Request, err error) {
	if errors.Is(err, commands.ErrUnauthenticated) {
		writeUnauthenticated(w)
		return
	}
	if p, ok := errorToProblem(err); ok {
		if p.Status == nethttp.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
			if p.Code == "unavailable" {
				s.log.WarnContext(r.Context(), "database unavailable", slog.String("error", err.Error()),
					slog.String("request_id", requestID(r.Context())))
			}
		}
		p.Instance = r.URL.Path
		writeProblem(w, p)
		return
	}
	if errors.Is(r.Context().Err(), context.Canceled) {
		// The client went away; nobody reads the answer.
		return
	}
	s.log.ErrorContext(r.Context(), "request failed", slog.String("error", err.Error()),
		slog.String("request_id", requestID(r.Context())))
	p := newProblem(nethttp.StatusInternalServerError, "internal", "internal error; request id "+requestID(r.Context()))
	p.Instance = r.URL.Path
	writeProblem(w, p)
}

// handler is an API handler: it writes its answer and returns nil, or
// writes nothing and returns the error to answer. One that fails after
// writing must not return the error (see stream, which aborts instead).
type handler func(w nethttp.ResponseWriter, r *nethttp.Request) error

// handle adapts h for the router: the error h returns is answered by
// writeError, the one error path of the API's handlers.
func (s *Server) handle(h handler) nethttp.HandlerFunc {
	return func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}
