package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	nethttp "net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/projections"
)

const (
	sessionCookie = "ledger_session"
	// signInCookie carries the sign-in form's CSRF token (double submit):
	// there is no session yet to keep it in.
	signInCookie = "ledger_sign_in"
	sessionTTL   = 12 * time.Hour
)

type ctxKey int

const ctxSession ctxKey = iota

// sessionInfo is a signed-in browser: who, and the token its forms post.
type sessionInfo struct {
	Principal
	CSRF string
}

func sessionOf(ctx context.Context) (sessionInfo, bool) {
	s, ok := ctx.Value(ctxSession).(sessionInfo)
	return s, ok
}

// The user's role and status are read with the session on every request,
// so a role change or a deactivation applies to open sessions at once.
const qSession = `
SELECT s.tenant_id::text, u.id::text, u.name, u.role, s.csrf_token
FROM console_sessions s JOIN users u ON u.id = s.user_id AND u.tenant_id = s.tenant_id
WHERE s.token_hash = $1 AND s.expires_at > now() AND u.status = 'active'`

// session loads the browser's session, if any, sets the security headers
// of every console answer, and refuses a POST whose CSRF token is not the
// session's (or, for sign-in, the sign-in cookie's) and any field no text
// can hold (checkText).
func (c *Console) session(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if !strings.HasPrefix(r.URL.Path, "/assets/") {
			h.Set("Cache-Control", "no-store")
		}
		ctx := r.Context()
		if ck, err := r.Cookie(sessionCookie); err == nil && ck.Value != "" && len(ck.Value) < 200 {
			sum := sha256.Sum256([]byte(ck.Value))
			var s sessionInfo
			var role string
			err := c.d.Pool.QueryRow(ctx, qSession, sum[:]).Scan(&s.TenantID, &s.UserID, &s.Name, &role, &s.CSRF)
			switch {
			case err == nil:
				s.Role = domain.Role(role)
				ctx = context.WithValue(ctx, ctxSession, s)
				// Every read model read of the page is the signed-in user's,
				// under members_see (projections.Viewer), as in the API.
				ctx = projections.WithViewer(ctx, projections.ViewerFor(s.TenantID, s.Actor))
			case !errors.Is(err, pgx.ErrNoRows):
				c.fail(w, r, fmt.Errorf("load session: %w", err))
				return
			}
		}
		r = r.WithContext(ctx)
		if r.Method == nethttp.MethodPost && !c.csrfOK(r) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(nethttp.StatusForbidden)
			_, _ = w.Write([]byte("This form has expired or did not come from this site. Go back, reload the page and try again."))
			return
		}
		if err := checkText(r); err != nil {
			c.problem(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// csrfOK checks the form's token: the session's for a signed-in browser,
// the sign-in cookie's on the sign-in form. A cross-site Origin is refused
// outright, whatever the token.
func (c *Console) csrfOK(r *nethttp.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	if err := r.ParseMultipartForm(10 << 20); err != nil && !errors.Is(err, nethttp.ErrNotMultipart) {
		return false
	}
	if _, ok := sessionOf(r.Context()); !ok && r.URL.Path == "/sign-out" {
		return true // nothing to sign out of, nothing to protect
	}
	sent := r.PostForm.Get("csrf")
	if sent == "" {
		return false
	}
	want := ""
	if s, ok := sessionOf(r.Context()); ok && r.URL.Path != "/sign-in" {
		want = s.CSRF
	} else if ck, err := r.Cookie(signInCookie); err == nil {
		want = ck.Value
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(sent), []byte(want)) == 1
}

// checkText refuses a form or query field that no text field can hold (a
// NUL byte, invalid UTF-8) before any page hands it to PostgreSQL, which
// cannot store it: a 400 naming the field, as the API answers, rather than
// the database's error as a 500. Uploaded files are the import's to check.
func checkText(r *nethttp.Request) error {
	if err := r.ParseForm(); err != nil {
		return &domain.ValidationError{Field: "query", Detail: "is not a valid query string"}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Form)) {
		for _, v := range append([]string{name}, r.Form[name]...) {
			if strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
				return &domain.ValidationError{Field: name, Detail: "must be UTF-8 text without NUL bytes"}
			}
		}
	}
	return nil
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// secure reports whether cookies may be marked Secure: only over HTTPS
// (directly or behind a proxy saying so); `make run` serves plain HTTP.
func secure(r *nethttp.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

// requireSession sends a browser that is not signed in to the sign-in
// page, coming back here afterwards.
func (c *Console) requireSession(w nethttp.ResponseWriter, r *nethttp.Request) (sessionInfo, bool) {
	s, ok := sessionOf(r.Context())
	if !ok {
		nethttp.Redirect(w, r, "/sign-in?next="+url.QueryEscape(r.URL.RequestURI()), nethttp.StatusSeeOther)
	}
	return s, ok
}

func (c *Console) home(w nethttp.ResponseWriter, r *nethttp.Request) {
	if _, ok := c.requireSession(w, r); ok {
		nethttp.Redirect(w, r, "/customers", nethttp.StatusSeeOther)
	}
}

type signInData struct {
	Next  string
	Token string
}

func (c *Console) signInPage(w nethttp.ResponseWriter, r *nethttp.Request) {
	c.renderSignIn(w, r, nethttp.StatusOK, "")
}

func (c *Console) renderSignIn(w nethttp.ResponseWriter, r *nethttp.Request, status int, problem string) {
	tok := randomToken()
	nethttp.SetCookie(w, &nethttp.Cookie{Name: signInCookie, Value: tok, Path: "/sign-in", HttpOnly: true,
		SameSite: nethttp.SameSiteStrictMode, Secure: secure(r), MaxAge: 3600})
	v := view{Title: "Sign in", Data: signInData{Next: c.localPath(r.FormValue("next")), Token: tok}}
	if problem != "" {
		v.Refusal, v.RefusalAt = &Refusal{Status: status, Code: "unauthenticated", Detail: problem}, "sign-in"
	}
	// The sign-in page never shows a session's header.
	r = r.WithContext(context.WithValue(r.Context(), ctxSession, nil))
	c.render(w, r, status, "sign-in", v)
}

// localPath keeps next= on this site: it answers p only when p is a path
// of a console page, else "/". A browser strips tabs and newlines from a
// Location and reads "\\" as "/", so "/\t/evil.test" or "/\\evil.test"
// would lead to another host: anything that is not a plain path (control
// characters, backslashes, a scheme, a host, "//") is refused outright,
// and what is left must be a page the console serves by GET.
func (c *Console) localPath(p string) string {
	const home = "/"
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\") {
		return home
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || unicode.IsSpace(r) {
			return home
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return home
	}
	if u.Path == "/" || strings.HasPrefix(u.Path, "/sign-") || strings.HasPrefix(u.Path, "/assets/") ||
		!c.match.Match(chi.NewRouteContext(), nethttp.MethodGet, u.Path) {
		return home
	}
	out := (&url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}).String()
	if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") {
		return home
	}
	return out
}

func (c *Console) signIn(w nethttp.ResponseWriter, r *nethttp.Request) {
	key := strings.TrimSpace(r.PostForm.Get("api_key"))
	if key == "" || len(key) > 256 {
		c.renderSignIn(w, r, nethttp.StatusUnauthorized, "Enter your API key.")
		return
	}
	p, err := c.d.Authenticate(r.Context(), key)
	if errors.Is(err, ErrBadKey) {
		c.renderSignIn(w, r, nethttp.StatusUnauthorized, "Unknown API key or deactivated user.")
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	tok := randomToken()
	sum := sha256.Sum256([]byte(tok))
	// Expired sessions are swept here, at the only place sessions are made.
	if _, err := c.d.Pool.Exec(r.Context(), `DELETE FROM console_sessions WHERE expires_at < now()`); err != nil {
		c.fail(w, r, fmt.Errorf("sweep sessions: %w", err))
		return
	}
	if _, err := c.d.Pool.Exec(r.Context(), `INSERT INTO console_sessions (token_hash, tenant_id, user_id, csrf_token, expires_at)
		VALUES ($1, $2, $3, $4, now() + $5::interval)`, sum[:], p.TenantID, p.UserID, randomToken(), sessionTTL.String()); err != nil {
		c.fail(w, r, fmt.Errorf("create session: %w", err))
		return
	}
	nethttp.SetCookie(w, &nethttp.Cookie{Name: signInCookie, Value: "", Path: "/sign-in", MaxAge: -1})
	nethttp.SetCookie(w, &nethttp.Cookie{Name: sessionCookie, Value: tok, Path: "/", HttpOnly: true,
		SameSite: nethttp.SameSiteStrictMode, Secure: secure(r), MaxAge: int(sessionTTL.Seconds())})
	nethttp.Redirect(w, r, c.localPath(r.PostForm.Get("next")), nethttp.StatusSeeOther)
}

func (c *Console) signOut(w nethttp.ResponseWriter, r *nethttp.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		sum := sha256.Sum256([]byte(ck.Value))
		if _, err := c.d.Pool.Exec(r.Context(), `DELETE FROM console_sessions WHERE token_hash = $1`, sum[:]); err != nil {
			c.fail(w, r, fmt.Errorf("end session: %w", err))
			return
		}
	}
	nethttp.SetCookie(w, &nethttp.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: nethttp.SameSiteStrictMode, Secure: secure(r)})
	nethttp.Redirect(w, r, "/sign-in?done=signedout", nethttp.StatusSeeOther)
}
