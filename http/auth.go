package http

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	nethttp "net/http"
	"strings"
	"sync"

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
	p, err := s.lookupKey(ctx, sum)
	if err != nil {
		s.keys.forget(sum)
		return Principal{}, err
	}
	s.keys.put(sum, p)
	return p, nil
}

func (s *Server) lookupKey(ctx context.Context, sum [32]byte) (Principal, error) {
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
	return s.auth(next, false)
}

// requireAuthWithAppend admits the requests of the single-customer
// commands, which check the caller's key in their append's own statement
// (commands.Meta.CallerKeyHash): a key this process has already seen is
// admitted without a database round trip of its own, unchecked until the
// command runs; any other key is looked up as requireAuth does.
func (s *Server) requireAuthWithAppend(next nethttp.Handler) nethttp.Handler {
	return s.auth(next, true)
}

func (s *Server) auth(next nethttp.Handler, deferred bool) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		key = strings.TrimSpace(key)
		if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" || len(key) > 256 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ledger"`)
			writeProblem(w, newProblem(nethttp.StatusUnauthorized, "unauthenticated", "send Authorization: Bearer <api key>"))
			return
		}
		ctx := r.Context()
		if deferred {
			sum := sha256.Sum256([]byte(key))
			if p, ok := s.keys.get(sum); ok {
				ctx = context.WithValue(ctx, ctxUncheckedKey, sum)
				next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, ctxPrincipal, p)))
				return
			}
		}
		p, err := s.authenticate(ctx, key)
		if errors.Is(err, errUnauthenticated) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ledger", error="invalid_token"`)
			writeProblem(w, newProblem(nethttp.StatusUnauthorized, "unauthenticated", "unknown API key or deactivated user"))
			return
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, ctxPrincipal, p)))
	})
}

// uncheckedKey is the digest of the request's API key when requireAuthWithAppend
// admitted it unchecked.
func uncheckedKey(ctx context.Context) ([32]byte, bool) {
	k, ok := ctx.Value(ctxUncheckedKey).([32]byte)
	return k, ok
}

// writeUnauthenticated answers 401.
func writeUnauthenticated(w nethttp.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="ledger", error="invalid_token"`)
	writeProblem(w, newProblem(nethttp.StatusUnauthorized, "unauthenticated", "unknown API key or deactivated user"))
}

// keyCache remembers whose API keys this process has seen, by digest, so
// requireAuthWithAppend can admit them without a lookup. An entry is only
// ever a hint: the command checks the key with its append.
type keyCache struct {
	mu sync.Mutex
	m  map[[32]byte]Principal
}

// maxCachedKeys bounds the cache; past it the cache starts over.
const maxCachedKeys = 100_000

func (c *keyCache) get(sum [32]byte) (Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[sum]
	return p, ok
}

func (c *keyCache) put(sum [32]byte, p Principal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedKeys {
		c.m = map[[32]byte]Principal{}
	}
	c.m[sum] = p
}

// forgetUser drops every cached key of userID (after its role changed).
func (c *keyCache) forgetUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for sum, p := range c.m {
		if p.UserID == userID {
			delete(c.m, sum)
		}
	}
}

func (c *keyCache) forget(sum [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, sum)
}

// requireAdminChecked is requireAdmin for routes whose key may have been
// admitted unchecked (requireAuthWithAppend): its refusal goes through
// writeError, which checks the key first.
func (s *Server) requireAdminChecked(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if !principal(r.Context()).IsAdmin() {
			s.writeError(w, r, &domain.ForbiddenError{Detail: "only an admin may do this"})
			return
		}
		next.ServeHTTP(w, r)
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
