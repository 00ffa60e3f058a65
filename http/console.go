package http

import (
	"context"
	"errors"
	nethttp "net/http"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/console"
	"github.com/assignment-ledger/ledger/domain"
)

// newConsole builds the web console on the server's collaborators: it
// authenticates keys as the API does, checks IDs as the API does
// (parseUUID) and words refusals with the API's one mapping
// (errorToProblem), so the two never disagree.
func (s *Server) newConsole() *console.Console {
	return console.New(console.Deps{
		Pool: s.sessions, Store: s.store, Commands: s.cmd, Queries: s.q, Projections: s.proj, Log: s.log,
		Authenticate:   s.consoleAuthenticate,
		Refusal:        consoleRefusal,
		BaseURL:        s.baseURL,
		SelectMatching: s.consoleSelect,
		Export:         s.consoleExport,
		AuditExport:    s.consoleAuditExport,
		ParseID:        parseUUID,
		ImportLimit: func(w nethttp.ResponseWriter, r *nethttp.Request) error {
			return s.useLimit(w, r, s.importTimeout)
		},
	})
}

func (s *Server) consoleAuthenticate(ctx context.Context, key string) (console.Principal, error) {
	p, err := s.authenticate(ctx, key)
	if errors.Is(err, commands.ErrUnauthenticated) {
		return console.Principal{}, console.ErrBadKey
	}
	if err != nil {
		return console.Principal{}, err
	}
	return console.Principal{TenantID: p.TenantID, Actor: p.Actor}, nil
}

func consoleRefusal(err error) (console.Refusal, bool) {
	if errors.Is(err, commands.ErrUnauthenticated) {
		return console.Refusal{Status: 401, Code: "unauthenticated", Detail: commands.ErrUnauthenticated.Error()}, true
	}
	p, ok := errorToProblem(err)
	if !ok {
		return console.Refusal{}, false
	}
	r := console.Refusal{Status: p.Status, Code: p.Code, Detail: p.Detail, Field: p.Field}
	if pairs, ok := p.Errors.([]domain.PairError); ok {
		r.Errors = pairs
	}
	return r, true
}

// consoleSelect is the API's selection by filter (bulkSelection: wait for
// the read models, count, at most 10,000, then the IDs) for the console's
// "select all matching", so both select exactly alike.
func (s *Server) consoleSelect(ctx context.Context, p console.Principal, q, status, assignedUser, group string) ([]string, error) {
	ctx = context.WithValue(ctx, ctxPrincipal, Principal{TenantID: p.TenantID, Actor: p.Actor})
	r, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, "/", nil)
	if err != nil {
		return nil, err
	}
	ids, _, err := s.bulkSelection(r, nil, &bulkFilterDoc{Q: q, Status: status, AssignedUser: assignedUser, Group: group}, "")
	return ids, err
}

// consoleExport is GET /v1/customers?format= for the console's export
// menu: the same filters (the request's query), formats, columns and
// formula defusing.
func (s *Server) consoleExport(w nethttp.ResponseWriter, r *nethttp.Request, p console.Principal) {
	r = r.WithContext(context.WithValue(r.Context(), ctxPrincipal, Principal{TenantID: p.TenantID, Actor: p.Actor}))
	s.handle(func(w nethttp.ResponseWriter, r *nethttp.Request) error {
		f, err := s.customerFilter(r)
		if err != nil {
			return err
		}
		fm, ok, err := exportFormatOf(r)
		if err == nil && !ok {
			err = badRequest("invalid_input", "format", "format must be csv, xlsx, ods, vcf or html")
		}
		if err != nil {
			return err
		}
		return s.export(w, r, p.TenantID, fm, f)
	})(w, r)
}

// consoleAuditExport is GET /v1/audit as CSV (or NDJSON with
// format=ndjson) for the console's audit page: the API's filters, columns,
// formula defusing and abort-on-failure.
func (s *Server) consoleAuditExport(w nethttp.ResponseWriter, r *nethttp.Request, p console.Principal) {
	r = r.Clone(context.WithValue(r.Context(), ctxPrincipal, Principal{TenantID: p.TenantID, Actor: p.Actor}))
	r.Header.Set("Accept", "text/csv")
	if r.URL.Query().Get("format") == "ndjson" {
		r.Header.Set("Accept", "application/x-ndjson")
	}
	s.handle(s.audit)(w, r)
}
