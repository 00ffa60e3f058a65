package http

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	nethttp "net/http"
	"strings"

	"github.com/jackc/pgx/v5"

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

// Keys are looked up by their SHA-256 digest: the database only ever sees
// digests, and an index lookup on a digest leaks nothing useful about the key
// through timing.
const qAuthenticate = `
SELECT u.tenant_id::text, u.id::text, u.name, u.role, u.status
FROM api_keys k JOIN users u ON u.id = k.user_id AND u.tenant_id = k.tenant_id
WHERE k.key_hash = $1`

var errUnauthenticated = errors.New("unauthenticated")

func (s *Server) authenticate(ctx context.Context, key string) (Principal, error) {
	sum := sha256.Sum256([]byte(key))
	var p Principal
	var role, status string
	err := s.pool.QueryRow(ctx, qAuthenticate, sum[:]).Scan(&p.TenantID, &p.UserID, &p.Name, &role, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, errUnauthenticated
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if status != string(domain.UserStatusActive) {
		return Principal{}, errUnauthenticated
	}
	p.Role = domain.Role(role)
	return p, nil
}

// requireAuth admits requests with a valid bearer key of an active user.
func (s *Server) requireAuth(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		key = strings.TrimSpace(key)
		if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" || len(key) > 256 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ledger"`)
			writeProblem(w, newProblem(nethttp.StatusUnauthorized, "unauthenticated", "send Authorization: Bearer <api key>"))
			return
		}
		p, err := s.authenticate(r.Context(), key)
		if errors.Is(err, errUnauthenticated) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ledger", error="invalid_token"`)
			writeProblem(w, newProblem(nethttp.StatusUnauthorized, "unauthenticated", "unknown API key or deactivated user"))
			return
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxPrincipal, p)))
	})
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
