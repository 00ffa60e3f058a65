// Package http is the JSON command and query API on chi: authentication,
// tenancy, problem errors, idempotency and read-your-writes, on top of the
// commands and the projections.
package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/internal/config"
	"github.com/assignment-ledger/ledger/ledgerlog"
	"github.com/assignment-ledger/ledger/projections"
	"github.com/assignment-ledger/ledger/readroute"
)

// Deps are the server's collaborators.
type Deps struct {
	Pool        *pgxpool.Pool
	Store       *eventstore.Store
	Commands    *commands.Commands
	Projections *projections.Runner
	Queries     *projections.Queries
	Log         *slog.Logger
	// BaseURL prefixes invitation links.
	BaseURL string
	// Registry receives the HTTP metrics and is served on /metrics.
	Registry *prometheus.Registry
	// Ready reports whether the service may take traffic (/readyz), besides
	// the event store answering.
	Ready func(ctx context.Context) error
	// RequestTimeout bounds each request's database work, ExportTimeout a
	// streamed export's, ImportTimeout a CSV import's (zero:
	// config.DefaultRequestTimeout, DefaultExportTimeout,
	// DefaultImportTimeout).
	RequestTimeout, ExportTimeout, ImportTimeout time.Duration
	// Ledger serves the ledger log (checkpoints, proofs); nil answers its
	// routes 404.
	Ledger *ledgerlog.Log

	// Reads routes GET reads to replicas (nil: all on the primary), and
	// Replicas are the read side over each of its replicas (replicas.go).
	Reads    *readroute.Router
	Replicas []ReplicaDeps
}

// Server is the HTTP API.
type Server struct {
	pool     *pgxpool.Pool
	store    *eventstore.Store
	cmd      *commands.Commands
	proj     *projections.Runner
	q        *projections.Queries
	log      *slog.Logger
	baseURL  string
	registry *prometheus.Registry
	ready    func(ctx context.Context) error
	metrics  *httpMetrics
	router   chi.Router
	ledger   *ledgerlog.Log

	// auth authenticates and sessions keeps the console's sessions: the
	// primary's, also in a shadow (replicas.go).
	auth     *commands.Commands
	sessions *pgxpool.Pool
	// reads and shadows route reads to replicas; shadow marks a copy of the
	// server that reads through one.
	reads   *readroute.Router
	shadows map[string]*Server
	shadow  bool

	requestTimeout, exportTimeout, importTimeout time.Duration

	// query are the query parameters of each operation, from the OpenAPI
	// document (documentedQuery).
	query map[string][]string
}

// maxPositionWait bounds how long a GET waits for X-Min-Position.
const maxPositionWait = 5 * time.Second

// NewServer builds the router.
func NewServer(d Deps) *Server {
	s := &Server{
		pool: d.Pool, store: d.Store, cmd: d.Commands, proj: d.Projections, q: d.Queries, log: d.Log,
		baseURL: d.BaseURL, registry: d.Registry, ready: d.Ready, ledger: d.Ledger,
		requestTimeout: d.RequestTimeout, exportTimeout: d.ExportTimeout, importTimeout: d.ImportTimeout,
		auth: d.Commands, sessions: d.Pool, reads: d.Reads,
	}
	if s.requestTimeout <= 0 {
		s.requestTimeout = config.DefaultRequestTimeout
	}
	if s.exportTimeout <= 0 {
		s.exportTimeout = config.DefaultExportTimeout
	}
	if s.importTimeout <= 0 {
		s.importTimeout = config.DefaultImportTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	s.metrics = newHTTPMetrics(s.registry)
	q, err := documentedQuery(openAPIDocument)
	if err != nil {
		panic(err) // the embedded document is tested to parse
	}
	s.query = q
	s.router = s.routes()
	if s.reads != nil {
		s.shadows = map[string]*Server{}
		for _, rd := range d.Replicas {
			s.shadows[rd.Name] = s.shadowFor(rd)
		}
	}
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) { s.router.ServeHTTP(w, r) }

// Router exposes the chi router (the OpenAPI test walks it).
func (s *Server) Router() chi.Router { return s.router }

// Projection names a route reads, for X-Min-Position.
const (
	pMyClients  = "my_clients"
	pCustomers  = "customer_list"
	pIntervals  = "assignment_intervals"
	pAudit      = "audit_log"
	pNotify     = "notifications"
	pGroups     = "groups"
	pLedger     = "ledger_tree"
	pWriteModel = "" // served from the event store: always current
)

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	if !s.shadow {
		// A shadow serves requests that went through these already.
		// HEAD is answered wherever GET is, as HTTP asks of every server.
		r.Use(middleware.GetHead, withRequestID, s.observe, s.recoverer, s.withDeadline, s.checkQuery)
	}
	r.NotFound(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		writeProblem(w, newProblem(nethttp.StatusNotFound, "not_found", "no such route"))
	})
	r.MethodNotAllowed(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		allowed := s.allowedMethods(r.URL.Path)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeProblem(w, newProblem(nethttp.StatusMethodNotAllowed, "method_not_allowed",
			r.Method+" is not allowed here; allowed: "+strings.Join(allowed, ", ")))
	})

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(nethttp.MethodGet, "/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	r.Get("/openapi.json", s.openAPI)
	r.Post("/v1/invitations/{token}/accept", s.handle(s.acceptInvitation))
	r.Get("/invitations/{token}", s.handle(s.showInvitation))
	r.Get("/v1/ledger/public-key", s.handle(s.ledgerPublicKey))
	r.Post("/invitations/{token}", s.handle(s.acceptInvitationForm))

	r.Group(func(r chi.Router) {
		r.Use(s.requireAuth, refuseAuditorCommands)

		r.With(s.minPosition(pWriteModel)).Get("/v1/policy", s.handle(s.getPolicy))
		r.With(requireAdmin).Put("/v1/policy", s.handle(s.putPolicy))

		r.With(requireAdmin).Post("/v1/users", s.handle(s.createUser))
		// customers is my_clients'.
		r.With(s.minPosition(pMyClients)).Get("/v1/users", s.handle(s.listUsers))
		r.With(s.minPosition(pMyClients)).Get("/v1/users/{id}", s.handle(s.getUser))
		r.Post("/v1/users/{id}/api-keys", s.handle(s.issueAPIKey))
		// The user may set their own away_until and notify_by_email: the
		// command decides who may change what.
		r.Patch("/v1/users/{id}", s.handle(s.updateUser))
		r.With(requireAdmin).Post("/v1/users/{id}/deactivate", s.handle(s.deactivateUser))
		r.With(requireAdmin).Post("/v1/users/{id}/transfer", s.handle(s.transferCustomers))
		r.With(s.minPosition(pMyClients, pIntervals, pCustomers, pGroups)).Get("/v1/users/{id}/clients", s.handle(s.userClients))
		r.With(s.minPosition(pNotify)).Get("/v1/users/{id}/notifications", s.handle(s.notifications))
		r.Post("/v1/users/{id}/notifications/read", s.handle(s.markNotificationsRead))

		r.With(requireAdmin).Post("/v1/customers", s.handle(s.registerCustomer))
		// The assigned-user filter reads my_clients too.
		r.With(s.minPosition(pCustomers, pMyClients, pGroups)).Get("/v1/customers", s.handle(s.listCustomers))
		r.With(requireAdmin).Post("/v1/customers/bulk", s.handle(s.customerBulk))
		r.With(requireAdmin).Post("/v1/customers/messages", s.handle(s.messageCustomers))
		r.With(s.minPosition(pWriteModel)).Get("/v1/messages/{id}", s.handle(s.getMessage))
		r.With(s.minPosition(pWriteModel)).Get("/v1/customers/{id}", s.handle(s.getCustomer))
		r.With(requireAdmin).Patch("/v1/customers/{id}", s.handle(s.updateCustomer))
		r.With(requireAdmin).Delete("/v1/customers/{id}", s.handle(s.eraseCustomer))
		r.With(requireAdmin).Post("/v1/customers/{id}/block", s.handle(s.blockCustomer))
		r.With(requireAdmin).Post("/v1/customers/{id}/unblock", s.handle(s.unblockCustomer))
		r.With(s.minPosition(pWriteModel)).Get("/v1/customers/{id}/history", s.handle(s.customerHistory))
		r.With(s.minPosition(pIntervals)).Get("/v1/customers/{id}/assignees", s.handle(s.customerAssignees))
		r.Put("/v1/customers/{id}/assignees", s.handle(s.setTeam))
		r.Post("/v1/customers/{id}/assignees", s.handle(s.assignUser))
		r.Delete("/v1/customers/{id}/assignees/{user_id}", s.handle(s.unassignUser))
		r.With(requireAdmin).Put("/v1/customers/{id}/lead", s.handle(s.makeTeamLead))
		r.With(requireAdmin).Post("/v1/customers/{id}/assignees/{user_id}/replace", s.handle(s.replaceTeamMember))
		// Members may bulk add or remove themselves: the command decides.
		r.Post("/v1/assignments/bulk", s.handle(s.bulkEdit))

		r.With(requireAdmin).Post("/v1/groups", s.handle(s.createGroup))
		r.With(s.minPosition(pGroups, pCustomers)).Get("/v1/groups", s.handle(s.listGroups))
		r.With(requireAdmin).Patch("/v1/groups/{id}", s.handle(s.renameGroup))
		r.With(requireAdmin).Delete("/v1/groups/{id}", s.handle(s.deleteGroup))

		r.With(requireAdmin).Post("/v1/clients/invitations", s.handle(s.inviteClient))
		r.With(requireReader, s.minPosition(pWriteModel)).Get("/v1/clients/import/template", s.importTemplate)
		r.With(requireAdmin).Post("/v1/clients/import", s.handle(s.importClients))

		// Follow-ups (v3).
		r.Post("/v1/customers/{id}/follow-ups", s.handle(s.scheduleFollowUp))
		r.With(s.minPosition(pFollowUps)).Get("/v1/customers/{id}/follow-ups", s.handle(s.customerFollowUps))
		r.With(s.minPosition(pFollowUps, pMyClients)).Get("/v1/users/{id}/follow-ups", s.handle(s.userFollowUps))
		r.Post("/v1/follow-ups/{id}/complete", s.handle(s.completeFollowUp))
		r.Post("/v1/follow-ups/{id}/snooze", s.handle(s.snoozeFollowUp))
		r.Delete("/v1/follow-ups/{id}", s.handle(s.cancelFollowUp))
		// Saved views (v3).
		r.Post("/v1/views", s.handle(s.createView))
		r.With(s.minPosition(pViews)).Get("/v1/views", s.handle(s.listViews))
		r.Patch("/v1/views/{id}", s.handle(s.changeView))
		r.Delete("/v1/views/{id}", s.handle(s.deleteView))

		// Assignment rules (contract v3): served from the write model.
		r.With(requireAdmin).Post("/v1/assignment-rules", s.handle(s.createRule))
		r.With(requireReader, s.minPosition(pWriteModel)).Get("/v1/assignment-rules", s.handle(s.listRules))
		r.With(requireReader, s.minPosition(pWriteModel)).Get("/v1/assignment-rules/{id}", s.handle(s.getRule))
		r.With(requireAdmin).Put("/v1/assignment-rules/{id}", s.handle(s.changeRule))
		r.With(requireAdmin).Delete("/v1/assignment-rules/{id}", s.handle(s.deleteRule))
		r.With(requireAdmin).Post("/v1/customers/{id}/auto-assign", s.handle(s.autoAssign))

		// The workload report (contract v3): customers and leads per user.
		r.With(requireReader, s.minPosition(pMyClients, pCustomers)).Get("/v1/reports/workload", s.handle(s.workload))

		r.With(requireReader, s.minPosition(pAudit)).Get("/v1/audit", s.handle(s.audit))
		r.With(requireReader, s.minPosition(pLedger)).Get("/v1/ledger/checkpoint", s.handle(s.ledgerCheckpoint))
		r.With(requireReader).Get("/v1/ledger/checkpoints", s.handle(s.ledgerCheckpoints))
		r.With(requireReader, s.minPosition(pLedger)).Get("/v1/ledger/proofs/inclusion", s.handle(s.ledgerInclusion))
		r.With(requireReader, s.minPosition(pLedger)).Get("/v1/ledger/proofs/consistency", s.handle(s.ledgerConsistency))
	})
	// The web console: HTML pages at /, outside the JSON API's contract.
	r.Group(func(r chi.Router) {
		r.Use(s.consoleReads)
		s.newConsole().Routes(r)
	})
	return r
}

// allowedMethods lists the methods the router serves on path, for a 405's
// Allow header (chi's own 405 sets it, a custom one must).
func (s *Server) allowedMethods(path string) []string {
	var out []string
	for _, m := range []string{nethttp.MethodGet, nethttp.MethodPost, nethttp.MethodPut, nethttp.MethodPatch, nethttp.MethodDelete} {
		if s.router.Match(chi.NewRouteContext(), m, path) {
			out = append(out, m)
			if m == nethttp.MethodGet {
				out = append(out, nethttp.MethodHead)
			}
		}
	}
	return out
}

// minPosition honours X-Min-Position: the GET waits (at most 5 s) until the
// projections it reads have processed that position, else answers 503.
func (s *Server) minPosition(names ...string) func(nethttp.Handler) nethttp.Handler {
	var wait []string
	for _, n := range names {
		if n != pWriteModel {
			wait = append(wait, n)
		}
	}
	return func(next nethttp.Handler) nethttp.Handler {
		return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
			raw := r.Header.Get("X-Min-Position")
			var pos int64
			if raw != "" {
				var err error
				if pos, err = strconv.ParseInt(raw, 10, 64); err != nil || pos < 0 {
					s.writeError(w, r, badRequest("invalid_header", "X-Min-Position", "X-Min-Position must be a position token from X-Ledger-Position"))
					return
				}
			}
			if s.shadow {
				// The primary's router found this replica at the position.
				next.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			// A read of the event store alone (a customer, its history, the
			// policy) without a position stays here: it always shows the
			// latest write, as the README says, and a customer just erased
			// must answer 410 at once, not its data from a replica that
			// has not replayed the erasure (found by hostile testing). With
			// a position, a replica that has replayed it answers.
			writeModelOnly := len(wait) == 0
			if s.reads != nil && s.routable(r, names) {
				if (raw != "" || !writeModelOnly) && s.replicaRead(w, r, pos, raw != "", wait) {
					return
				}
				s.reads.Served(readroute.TargetPrimary)
			}
			if raw == "" || len(wait) == 0 {
				// Served from the event store, which is always current.
				next.ServeHTTP(w, r)
				return
			}
			// Within the same bound as the replicas' wait, but at least
			// primaryGrace: the primary may have the position already.
			deadline := start.Add(maxPositionWait)
			if grace := time.Now().Add(primaryGrace); grace.After(deadline) {
				deadline = grace
			}
			ctx, cancel := context.WithDeadline(r.Context(), deadline)
			defer cancel()
			if err := s.waitFor(ctx, pos, wait); err != nil {
				s.writeError(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// waitFor waits until the projections named have processed pos. A position
// past the newest event is treated as any future one (waited for, then 503
// position_not_reached), not refused: positions are global, and "no event has
// position N" told any tenant how many events all tenants had.
func (s *Server) waitFor(ctx context.Context, pos int64, names []string) error {
	for {
		err := s.proj.WaitFor(ctx, pos, names...)
		if !errors.Is(err, projections.ErrUnknownPosition) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: position %d: %w", projections.ErrWaitTimeout, pos, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) healthz(w nethttp.ResponseWriter, r *nethttp.Request) {
	writeJSON(w, nethttp.StatusOK, map[string]string{"status": "ok"})
}

// readyzTimeout bounds the readiness check: a database that does not answer
// within it is not ready.
const readyzTimeout = 2 * time.Second

func (s *Server) readyz(w nethttp.ResponseWriter, r *nethttp.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyzTimeout)
	defer cancel()
	// Reading the event store, not a bare ping: a database that answers
	// pings while the events table is locked cannot serve a command.
	err := s.store.Ready(ctx)
	if err == nil && s.ready != nil {
		err = s.ready(ctx)
	}
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, newProblem(nethttp.StatusServiceUnavailable, "not_ready", err.Error()))
		return
	}
	writeJSON(w, nethttp.StatusOK, map[string]string{"status": "ready"})
}

// withDeadline bounds the database work of every request: past the request
// timeout its queries are cancelled and it answers 503 unavailable, rather
// than holding the client as long as a lock or a stalled database does. A
// handler that turns out to serve an export moves its request to the export
// limit (see stream); the decision is the handler's, made where the route
// and the negotiated format are known.
func (s *Server) withDeadline(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		ctx, cancel := withRequestDeadline(r.Context(), s.requestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// undocumentedQuery refuses a query parameter the OpenAPI document does
// not give the request's operation: ignored, ?dryrun=true (a typo) or
// ?dry_run=true on a bulk call (whose dry_run is a body field) ran the
// command for real, and ?asigned_user=me listed every customer (found by
// hostile testing). A request no route takes is left to the 404/405.
func (s *Server) undocumentedQuery(r *nethttp.Request, q map[string][]string) error {
	if len(q) == 0 {
		return nil
	}
	method := r.Method
	if method == nethttp.MethodHead {
		method = nethttp.MethodGet
	}
	pattern := s.router.Find(chi.NewRouteContext(), method, r.URL.Path)
	known, ok := s.query[method+" "+pattern]
	if pattern == "" || !ok {
		return nil
	}
	if method == nethttp.MethodGet {
		// "Lists are paginated with limit and an opaque cursor" is the
		// contract's convention: a read that is not a list takes them too,
		// as before, and ignores them.
		known = append(slices.Clip(known), "limit", "cursor")
	}
	return unknownQuery(q, known)
}

// checkQuery refuses, for every route, query parameters holding text
// PostgreSQL cannot take (a NUL byte, invalid UTF-8): a 400 naming the
// parameter instead of a 500 from the query, or an export with no rows.
// The API also refuses a parameter given twice: every one takes a single
// value (several IDs go comma-separated in one), and reading only the
// first would answer ?assigned_user=a&assigned_user=b with a's customers
// alone, and one its operation does not document (undocumentedQuery).
// (The console's forms may repeat a field; they read their own.)
func (s *Server) checkQuery(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		// url.ParseQuery drops a pair it cannot read (one holding a ";")
		// and r.URL.Query() ignores the error: ?dry_run=true; ran an
		// import for real, ?assigned_user=X; listed everyone (found by
		// hostile testing). A query that does not parse is a 400.
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			err = badRequest("invalid_input", "", "the query string does not parse (%v); separate parameters with & and percent-encode a ; in a value", err)
		}
		if err == nil {
			err = badQueryText(q)
		}
		if err == nil && strings.HasPrefix(r.URL.Path, "/v1/") {
			if err = repeatedQuery(q); err == nil {
				err = s.undocumentedQuery(r, q)
			}
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
