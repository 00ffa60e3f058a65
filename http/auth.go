package http

import (
	"context"
	nethttp "net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/domain"
)

// Principal is the caller: the owner of the API key, inside one tenant.
type Principal struct {
	TenantID string
	domain.Actor
}

func principal(ctx context.Context) Principal {
	p, _ := ctx.Value(ctxPrincipal).(Principal)
	return p
}

// authenticate checks key once for the request through
// commands.Authenticate, the one check of a key (the commands package owns
// users and api_keys; it leases verified keys for commands.KeyLease, and a
// deactivation or role change answers only once every lease has run out).
func (s *Server) authenticate(ctx context.Context, key string) (Principal, error) {
	c, err := s.auth.Authenticate(ctx, key)
	if err != nil {
		return Principal{}, err
	}
	return Principal{TenantID: c.TenantID, Actor: c.Actor}, nil
}

// requireAuth admits requests with a valid bearer key of an active user;
// the handlers and the commands behind them take the principal as checked.
func (s *Server) requireAuth(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if _, ok := r.Context().Value(ctxPrincipal).(Principal); ok && s.shadow {
			// Authenticated on the primary before it was routed here.
			next.ServeHTTP(w, r)
			return
		}
		scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		key = strings.TrimSpace(key)
		if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" || len(key) > 256 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ledger"`)
			writeProblem(w, newProblem(nethttp.StatusUnauthorized, "unauthenticated", "send Authorization: Bearer <api key>"))
			return
		}
		p, err := s.authenticate(r.Context(), key)
		if err != nil {
			// commands.ErrUnauthenticated answers 401 (writeError).
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(withViewer(context.WithValue(r.Context(), ctxPrincipal, p), p)))
	})
}

// writeUnauthenticated answers 401.
func writeUnauthenticated(w nethttp.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="ledger", error="invalid_token"`)
	writeProblem(w, newProblem(nethttp.StatusUnauthorized, "unauthenticated", "unknown API key or deactivated user"))
}

// requireAdmin refuses members with 403.
func requireAdmin(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if !principal(r.Context()).IsAdmin() {
			writeProblem(w, newProblem(nethttp.StatusForbidden, "forbidden", "only an admin may do this"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireReader admits what an admin reads to admins and auditors, and
// refuses members with 403.
func requireReader(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if !principal(r.Context()).ReadsAll() {
			writeProblem(w, newProblem(nethttp.StatusForbidden, "forbidden", "only an admin or an auditor may read this"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// auditorCommand is the route pattern of the one command an auditor may
// send: issuing its own API key (the command refuses anyone else's).
const auditorCommand = "/v1/users/{id}/api-keys"

// refuseAuditorCommands answers 403 to an auditor's every command (any
// method but GET, HEAD and OPTIONS) except auditorCommand, in one
// place rather than on each route, so a command route added later cannot
// forget it. The commands refuse auditors too (domain.RequireAdmin and the
// assignment rules); this is the guard that does not depend on each of
// them.
func refuseAuditorCommands(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		switch r.Method {
		case nethttp.MethodGet, nethttp.MethodHead, nethttp.MethodOptions:
		default:
			if principal(r.Context()).IsAuditor() && chi.RouteContext(r.Context()).RoutePattern() != auditorCommand {
				writeProblem(w, newProblem(nethttp.StatusForbidden, "forbidden", "an auditor reads everything and changes nothing"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
