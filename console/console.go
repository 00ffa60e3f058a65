// Package console is the web console served by `ledger serve` at /: server-
// rendered pages (html/template) over the same commands and queries as the
// JSON API, with a session cookie instead of a bearer key. It holds no rule
// of its own: every change is a commands call, and every refusal is shown
// as the API's problem mapping words it (Deps.Refusal).
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	nethttp "net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/projections"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// Principal is the signed-in user, inside one tenant.
type Principal struct {
	TenantID string
	domain.Actor
}

// Refusal is a refused command or query as the API's problem mapping
// words it: the same status, code and message the JSON answer carries.
type Refusal struct {
	Status int
	Code   string
	Detail string
	Field  string
	// Errors are the failing pairs of a refused bulk edit.
	Errors []domain.PairError
}

// ErrBadKey is what Deps.Authenticate answers for an unknown key or a
// deactivated user.
var ErrBadKey = errors.New("unknown API key or deactivated user")

// Deps are the console's collaborators; the http package builds them so
// that authentication and the error mapping stay in one place.
type Deps struct {
	Pool        *pgxpool.Pool
	Store       *eventstore.Store
	Commands    *commands.Commands
	Queries     *projections.Queries
	Projections *projections.Runner
	Log         *slog.Logger
	// Authenticate checks an API key as the API does (ErrBadKey when it is
	// not an active user's).
	Authenticate func(ctx context.Context, apiKey string) (Principal, error)
	// Refusal maps an error as the API's problem mapping does; false for
	// an unexpected error (a 500).
	Refusal func(err error) (Refusal, bool)
	// SelectMatching answers every customer the customer list's filters
	// match, as a bulk call's "filter" selects them (the API's own code,
	// with its limit). May be nil: "select all matching" is then refused.
	SelectMatching func(ctx context.Context, p Principal, q, status, assignedUser, group string) ([]string, error)
	// ExportCSV writes the customer list filtered by r's query as CSV, as
	// the API's export does.
	Export func(w nethttp.ResponseWriter, r *nethttp.Request, p Principal)
	// AuditExport writes the audit log filtered by r's query (the API's
	// filters) as CSV or, with format=ndjson, NDJSON.
	AuditExport func(w nethttp.ResponseWriter, r *nethttp.Request, p Principal)
	// ImportLimit moves an import's request from the request time limit
	// to the import limit, as the API's import does. May be nil.
	ImportLimit func(w nethttp.ResponseWriter, r *nethttp.Request) error
	// BaseURL prefixes invitation links, as in the API's answers.
	BaseURL string
	// RoleChanged tells the API a user's role changed, as its own PATCH
	// does, so no cached principal keeps the old role. May be nil.
	RoleChanged func(userID string)
	// ParseID checks an ID as the API checks its IDs: the canonical UUID,
	// or the API's own 400 invalid_id error naming field (which Refusal
	// maps), so a malformed ID answers the same in both.
	ParseID func(raw, field string) (string, error)
}

// Console serves the pages.
type Console struct {
	d     Deps
	pages map[string]*template.Template
	// match holds the console's routes (never served): the sign-in's
	// return address must be a page it would serve.
	match chi.Router
}

// New parses the templates; a broken template is a programming error
// caught by every test, so it panics.
func New(d Deps) *Console {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.ParseID == nil {
		d.ParseID = parseID
	}
	c := &Console{d: d, pages: map[string]*template.Template{}, match: chi.NewRouter()}
	c.register(c.match)
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", n))
		c.pages[base] = t
	}
	return c
}

// Routes registers the console's pages on r (the API's router). They all
// sit behind c.session, which also marks them for the OpenAPI test: they
// are not part of the JSON API.
func (c *Console) Routes(r chi.Router) { c.register(r) }

// register adds the routes to r. Each page's guard does, before the page,
// what the API does before its handler and in the same order: a browser
// without a session is sent to sign in, a member on an admin page gets 403
// (the API's requireAdmin), an auditor gets the pages an admin reads but
// 403 for every form it posts (the API's refuseAuditorCommands), an ID in the path that is not a UUID gets 400
// invalid_id (the API's idParam). Admin pages are the ones whose every
// action only an admin may take; pages a member may use stay open and
// the commands decide each action, as in the API.
func (c *Console) register(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(c.session)
		static, _ := fs.Sub(assetFiles, "assets")
		r.Get("/assets/*", nethttp.StripPrefix("/assets/", assetServer(static)).ServeHTTP)
		r.Get("/", c.home)
		r.Get("/sign-in", c.signInPage)
		r.Post("/sign-in", c.signIn)
		r.Post("/sign-out", c.signOut)

		member := r.With(c.guard(anyone))
		reader := r.With(c.guard(readers))
		admin := r.With(c.guard(admins))
		memberID := r.With(c.guard(anyone, "id"))
		adminID := r.With(c.guard(admins, "id"))

		member.Get("/customers", c.customers)
		member.Post("/customers/bulk/review", c.bulkReview)
		member.Post("/customers/bulk", c.bulkSave)
		admin.Post("/customers/message", c.messageCustomers)
		memberID.Get("/messages/{id}", c.messageStatus)
		adminID.Get("/customers/{id}/message", c.messageOne)
		member.Get("/customers/export", c.export)
		admin.Get("/customers/new", c.newCustomerPage)
		admin.Post("/customers/new", c.newCustomer)
		memberID.Get("/customers/{id}", c.profile)
		adminID.Post("/customers/{id}/block", c.block)
		adminID.Get("/customers/{id}/delete", c.erasePage)
		adminID.Post("/customers/{id}/delete", c.erase)
		adminID.Post("/customers/{id}/profile", c.editProfile)
		adminID.Post("/customers/{id}/groups", c.group)
		reader.Get("/audit/export", c.auditExport)
		memberID.Post("/customers/{id}/mine", c.toggleMine)
		memberID.Post("/customers/{id}/assign", c.inlineAssign)
		memberID.Post("/customers/{id}/team", c.setTeam)
		adminID.Post("/customers/{id}/lead", c.makeLead)
		memberID.Post("/customers/{id}/remove", c.removeMember)
		adminID.Post("/customers/{id}/replace", c.replaceMember)
		member.Get("/groups", c.groups)
		admin.Post("/groups", c.createGroup)
		adminID.Post("/groups/{id}/rename", c.renameGroup)
		adminID.Post("/groups/{id}/delete", c.deleteGroup)
		member.Get("/my-clients", c.myClients)
		member.Get("/notifications", c.notifications)
		member.Post("/notifications/read", c.markRead)
		// Follow-ups and saved views (issue 23).
		member.Get("/follow-ups", c.myFollowUps)
		memberID.Get("/customers/{id}/follow-ups", c.customerFollowUps)
		memberID.Post("/customers/{id}/follow-ups", c.scheduleFollowUp)
		memberID.Post("/follow-ups/{id}", c.followUpAction)
		member.Get("/views", c.viewsPage)
		member.Get("/views/open", c.openView)
		member.Post("/views", c.saveView)
		memberID.Post("/views/{id}/delete", c.deleteView)
		reader.Get("/users", c.users)
		member.Get("/users/search", c.userSearch)
		admin.Post("/users", c.createUser)
		adminID.Post("/users/{id}/role", c.changeRole)
		adminID.Get("/users/{id}/deactivate", c.deactivatePreview)
		adminID.Post("/users/{id}/deactivate", c.deactivate)
		adminID.Get("/users/{id}/customers", c.userCustomers)
		adminID.Post("/users/{id}/customers/review", c.userCustomersReview)
		adminID.Post("/users/{id}/customers", c.userCustomersSave)
		adminID.Get("/users/{id}/transfer", c.transferPage)
		adminID.Post("/users/{id}/transfer", c.transfer)
		reader.Get("/audit", c.audit)
		reader.Get("/workload", c.workload)
		reader.Get("/rules", c.rules)
		admin.Post("/rules", c.createRule)
		admin.Post("/rules/try", c.tryRule)
		admin.Post("/rules/assign", c.assignByRules)
		adminID.Post("/rules/{id}/move", c.moveRule)
		adminID.Post("/rules/{id}/delete", c.deleteRule)
		admin.Get("/import", c.importPage)
		admin.Get("/import/template.csv", c.importTemplate)
		admin.Post("/import", c.importClients)
		admin.Get("/invite", c.invitePage)
		admin.Post("/invite", c.invite)
		admin.Get("/policy", c.policy)
		admin.Post("/policy", c.changePolicy)
	})
}

// audience is who may open a page (see register).
type audience int

const (
	// anyone signed in: the commands decide each action, as in the API.
	anyone audience = iota
	// readers: admins and auditors (the API's requireReader).
	readers
	// admins only (the API's requireAdmin).
	admins
)

// guard is the checks before a signed-in page (see register): who may
// open it, then the path's IDs (params). An auditor's every form post is
// refused here with 403, whatever the page, as the API refuses an
// auditor's every command: the console has no command an auditor may
// send (its own API key is the API's).
func (c *Console) guard(who audience, params ...string) func(nethttp.Handler) nethttp.Handler {
	return func(next nethttp.Handler) nethttp.Handler {
		return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
			s, ok := c.requireSession(w, r)
			if !ok {
				return
			}
			var err error
			switch {
			case s.IsAuditor() && r.Method != nethttp.MethodGet && r.Method != nethttp.MethodHead:
				err = &domain.ForbiddenError{Detail: "an auditor reads everything and changes nothing"}
			case who == readers:
				err = domain.RequireReader(s.Actor)
			case who == admins:
				err = domain.RequireAdmin(s.Actor)
			}
			if err != nil {
				c.problem(w, r, err)
				return
			}
			for _, p := range params {
				if _, err := c.d.ParseID(chi.URLParam(r, p), p); err != nil {
					c.problem(w, r, err)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// checkIDs checks IDs a form or query sends, as the API checks the same
// IDs in its bodies and queries (field names the API's field): the first
// malformed one is the answer, 400 invalid_id. Empty values are left to
// the command or the form's own checks (a choice not made).
func (c *Console) checkIDs(field string, ids ...string) error {
	for _, id := range ids {
		if id == "" {
			continue
		}
		if _, err := c.d.ParseID(id, field); err != nil {
			return err
		}
	}
	return nil
}

// requiredID is checkIDs for a field the API requires: empty is 400 too.
func (c *Console) requiredID(field, raw string) error {
	if raw == "" {
		return &domain.ValidationError{Field: field, Detail: "is required"}
	}
	return c.checkIDs(field, raw)
}

// parseID stands in for Deps.ParseID when none is given (a console built
// without the API): a malformed ID is then a validation error.
func parseID(raw, field string) (string, error) {
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		return "", &domain.ValidationError{Field: field, Detail: "is not a UUID"}
	}
	return id.String(), nil
}

// assetServer serves the embedded assets; they change only with the
// binary, so a day's caching is safe enough.
func assetServer(static fs.FS) nethttp.Handler {
	files := nethttp.FileServerFS(static)
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"day": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02")
	},
	// cellOf hands the table's "cell" template one optional column's
	// value: the column's key, the row, and the follow-ups' counts.
	"cellOf": func(key string, item projections.CustomerItem, followUps map[string]int) cellData {
		return cellData{Key: key, Item: item, FollowUps: followUps[item.ID]}
	},
	"hasPrefix": strings.HasPrefix,
	"fullName":  func(first, last string) string { return strings.TrimSpace(first + " " + last) },
	"badge": func(n int) string {
		if n > maxUnreadShown {
			return strconv.Itoa(maxUnreadShown) + "+"
		}
		return strconv.Itoa(n)
	},
}

// cellData is one optional column's cell of the customer table.
type cellData struct {
	Key       string
	Item      projections.CustomerItem
	FollowUps int
}

// view is what every page's template gets.
type view struct {
	Title string
	Nav   string
	Me    Principal
	CSRF  string
	// Unread is the signed-in user's unread notifications (the header's
	// counter).
	Unread int
	// Notice confirms a command that was carried out.
	Notice string
	// Lagging says the read models had not caught up with the user's last
	// command within the wait.
	Lagging bool
	// Refusal is a refused action's message, shown next to the form named
	// RefusalAt.
	Refusal   *Refusal
	RefusalAt string
	// Pos is the position of a command whose result is shown on this
	// page itself (no redirect): the header's links carry it, so the next
	// page waits for it as after a redirect.
	Pos  int64
	Data any
	// FollowUpsDue counts the signed-in user's overdue follow-ups (the
	// header's counter).
	FollowUpsDue int
	// NavLinks are the header's links for the signed-in user's role.
	NavLinks []navItem
}

// render writes a page. Pages are small, so they are rendered into memory
// first: a template error then becomes a clean 500, not half a page.
func (c *Console) render(w nethttp.ResponseWriter, r *nethttp.Request, status int, name string, v view) {
	t, ok := c.pages[name]
	if !ok {
		c.fail(w, r, fmt.Errorf("console: no page %q", name))
		return
	}
	if s, ok := sessionOf(r.Context()); ok {
		v.Me, v.CSRF = s.Principal, s.CSRF
		v.NavLinks = navFor(s.Actor)
		// The header's counters are the page's decoration: a page (the
		// problem page of a database that is down, above all) is shown
		// without them rather than not at all.
		if v.Unread == 0 {
			n, err := c.d.Queries.UnreadUpTo(r.Context(), s.TenantID, s.UserID, maxUnreadShown+1)
			if err != nil {
				c.d.Log.WarnContext(r.Context(), "console: unread notifications", slog.String("error", err.Error()))
			}
			v.Unread = n
		}
		due, err := c.overdueFollowUps(r.Context(), s)
		if err != nil {
			c.d.Log.WarnContext(r.Context(), "console: overdue follow-ups", slog.String("error", err.Error()))
		}
		v.FollowUpsDue = due
	}
	if v.Notice == "" {
		v.Notice = noticeText(r.URL.Query().Get("done"))
	}
	var b strings.Builder
	if err := t.Execute(&b, v); err != nil {
		c.fail(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail answers an unexpected error: logged, and a plain page without the
// error's text (it may name internals).
func (c *Console) fail(w nethttp.ResponseWriter, r *nethttp.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		return // the browser went away; nobody reads the answer
	}
	// An error the API answers (a bad cursor, a database that is down or
	// too slow: 503) is answered the same way here, never as a 500.
	if _, ok := c.d.Refusal(err); ok {
		c.problem(w, r, err)
		return
	}
	c.d.Log.ErrorContext(r.Context(), "console request failed", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(nethttp.StatusInternalServerError)
	_, _ = w.Write([]byte("Something went wrong on our side; the error has been logged."))
}

// refused renders page with err's refusal shown at the form `at`, with
// the status the API answers err with, or fails when err is not one the
// API maps. When the page itself cannot be shown for a reason the API
// maps (the customer or user in the path is unknown or erased), the
// refusal is shown on the problem page instead, still with err's status:
// the answer is the command's, as the API's would be.
func (c *Console) refused(w nethttp.ResponseWriter, r *nethttp.Request, err error, at string, page func(v view) (string, view, error)) {
	ref, ok := c.refusalOf(r, err)
	if !ok {
		c.fail(w, r, err)
		return
	}
	name, v, perr := page(view{Refusal: &ref, RefusalAt: at})
	if perr != nil {
		if _, known := c.d.Refusal(perr); known {
			c.problem(w, r, err)
			return
		}
		c.fail(w, r, perr)
		return
	}
	c.render(w, r, ref.Status, name, v)
}

// problemData is the problem page's explanation below the refusal.
type problemData struct {
	Message string
}

// problemTitles and problemMessages word the problem page per status.
var problemTitles = map[int]string{
	nethttp.StatusBadRequest:          "Bad address",
	nethttp.StatusForbidden:           "Not allowed",
	nethttp.StatusNotFound:            "Not found",
	nethttp.StatusGone:                "Deleted",
	nethttp.StatusConflict:            "Refused",
	nethttp.StatusPreconditionFailed:  "Changed meanwhile",
	nethttp.StatusUnprocessableEntity: "Refused",
	nethttp.StatusServiceUnavailable:  "Try again",
}

var problemMessages = map[int]string{
	nethttp.StatusBadRequest: "The address is not one the console makes: check the link.",
	nethttp.StatusForbidden:  "Your role does not allow this; an admin can do it, or change your role.",
	nethttp.StatusNotFound:   "There is no such customer, user or message in your tenant.",
	nethttp.StatusGone:       "This customer was deleted: its personal data is erased. Its history stays in the audit log.",
}

// problem answers err on a page of its own: the rule's message under the
// status the API answers it with (a 403 says the page is not for the
// user's role, a 404 or 410 that the customer is unknown or erased).
func (c *Console) problem(w nethttp.ResponseWriter, r *nethttp.Request, err error) {
	ref, ok := c.refusalOf(r, err)
	if !ok {
		c.fail(w, r, err)
		return
	}
	title := problemTitles[ref.Status]
	if title == "" {
		title = nethttp.StatusText(ref.Status)
	}
	if ref.Status == nethttp.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	c.render(w, r, ref.Status, "problem", view{Title: title, Refusal: &ref, RefusalAt: "problem",
		Data: problemData{Message: problemMessages[ref.Status]}})
}

// maxUnreadShown is the most the header's counter shows exactly ("99+"
// past it).
const maxUnreadShown = 99

// maxWait bounds a page's wait for the read models to show the user's last
// command, as X-Min-Position does for the API.
const maxWait = 5 * time.Second

// waitForPosition honours ?pos= (set by the redirect after a command): the
// page waits until the named read models have applied it. A page that
// waited in vain is still shown, saying so, rather than an error.
func (c *Console) waitForPosition(r *nethttp.Request, names ...string) (lagging bool) {
	raw := r.URL.Query().Get("pos")
	if raw == "" {
		return false
	}
	pos, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || pos <= 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), maxWait)
	defer cancel()
	// The header's counter reads the notifications.
	names = append(names, projections.Notifications)
	if err := c.d.Projections.WaitFor(ctx, pos, names...); err != nil {
		if !errors.Is(err, projections.ErrUnknownPosition) {
			return true
		}
	}
	return false
}

// redirectAfter sends the browser to target after a command, carrying the
// command's position so the next page waits for it, and a notice.
func redirectAfter(w nethttp.ResponseWriter, r *nethttp.Request, target string, position int64, done string) {
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	frag := ""
	if i := strings.IndexByte(target, '#'); i >= 0 {
		target, frag = target[:i], target[i:]
	}
	target += sep + "pos=" + strconv.FormatInt(position, 10) + "&done=" + done + frag
	nethttp.Redirect(w, r, target, nethttp.StatusSeeOther)
}

// noticeText is the confirmation named by ?done=; only known words are
// shown, so a crafted link cannot put text on the page.
func noticeText(done string) string {
	return map[string]string{
		"team":         "Team saved.",
		"mine":         "My Clients updated.",
		"lead":         "Team lead changed.",
		"removed":      "Team member removed.",
		"replaced":     "Team member replaced.",
		"bulk":         "Bulk edit saved.",
		"assigned":     "Assigned.",
		"read":         "Notifications marked read.",
		"signedout":    "You are signed out.",
		"usercreated":  "User created.",
		"blocked":      "Customer blocked.",
		"groups":       "Groups updated.",
		"created":      "Customer created.",
		"unblocked":    "Customer unblocked.",
		"deleted":      "Deleted: the personal data is erased.",
		"role":         "Role changed.",
		"deactivated":  "User deactivated.",
		"transferred":  "Customers transferred.",
		"policy":       "Policy saved.",
		"groupcreated": "Group created.",
		"grouprenamed": "Group renamed.",
		"groupdeleted": "Group deleted; its customers are not.",
		"profile":      "Profile saved.",
		"followup":     "Follow-up saved.",
		"view":         "View saved.",
		"viewdeleted":  "View deleted.",
	}[done]
}

func (c *Console) meta(s sessionInfo) commands.Meta {
	return commands.Meta{TenantID: s.TenantID, Actor: s.Actor}
}
