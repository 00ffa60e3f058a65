// Package http is the JSON command and query API on chi: authentication,
// tenancy, problem errors, idempotency and read-your-writes, on top of the
// commands and the projections.
package http

import (
	"context"
	"errors"
	"log/slog"
	nethttp "net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/projections"
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
	// Ready reports whether the service may take traffic (/readyz).
	Ready func(ctx context.Context) error
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
	keys     keyCache
}

// maxPositionWait bounds how long a GET waits for X-Min-Position.
const maxPositionWait = 5 * time.Second

// NewServer builds the router.
func NewServer(d Deps) *Server {
	s := &Server{
		pool: d.Pool, store: d.Store, cmd: d.Commands, proj: d.Projections, q: d.Queries, log: d.Log,
		baseURL: d.BaseURL, registry: d.Registry, ready: d.Ready,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	s.metrics = newHTTPMetrics(s.registry)
	s.router = s.routes()
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
	pWriteModel = "" // served from the event store: always current
)

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(withRequestID, s.observe, s.recoverer)
	r.NotFound(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		writeProblem(w, newProblem(nethttp.StatusNotFound, "not_found", "no such route"))
	})
	r.MethodNotAllowed(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		writeProblem(w, newProblem(nethttp.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here"))
	})

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(nethttp.MethodGet, "/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	r.Get("/openapi.json", s.openAPI)
	r.Post("/v1/invitations/{token}/accept", s.acceptInvitation)

	r.Group(func(r chi.Router) {
		r.Use(s.requireAuth)

		r.With(s.minPosition(pWriteModel)).Get("/v1/policy", s.getPolicy)
		r.With(requireAdmin).Put("/v1/policy", s.putPolicy)

		r.With(requireAdmin).Post("/v1/users", s.createUser)
		r.With(s.minPosition(pWriteModel)).Get("/v1/users", s.listUsers)
		r.With(s.minPosition(pWriteModel)).Get("/v1/users/{id}", s.getUser)
		r.Post("/v1/users/{id}/api-keys", s.issueAPIKey)
		r.With(requireAdmin).Patch("/v1/users/{id}", s.updateUser)
		r.With(requireAdmin).Post("/v1/users/{id}/deactivate", s.deactivateUser)
		r.With(requireAdmin).Post("/v1/users/{id}/transfer", s.transferCustomers)
		r.With(s.minPosition(pMyClients, pIntervals, pCustomers)).Get("/v1/users/{id}/clients", s.userClients)
		r.With(s.minPosition(pNotify)).Get("/v1/users/{id}/notifications", s.notifications)
		r.Post("/v1/users/{id}/notifications/read", s.markNotificationsRead)

		r.With(requireAdmin).Post("/v1/customers", s.registerCustomer)
		// The assigned-user filter reads my_clients too.
		r.With(s.minPosition(pCustomers, pMyClients)).Get("/v1/customers", s.listCustomers)
		r.With(s.minPosition(pWriteModel)).Get("/v1/customers/{id}", s.getCustomer)
		r.With(requireAdmin).Patch("/v1/customers/{id}", s.updateCustomer)
		r.With(requireAdmin).Post("/v1/customers/{id}/block", s.blockCustomer)
		r.With(requireAdmin).Post("/v1/customers/{id}/unblock", s.unblockCustomer)
		r.With(s.minPosition(pWriteModel)).Get("/v1/customers/{id}/history", s.customerHistory)
		r.With(s.minPosition(pIntervals)).Get("/v1/customers/{id}/assignees", s.customerAssignees)
		r.Put("/v1/customers/{id}/assignees", s.setTeam)
		// Members may bulk add or remove themselves: the command decides.
		r.Post("/v1/assignments/bulk", s.bulkEdit)

		r.With(requireAdmin).Post("/v1/clients/invitations", s.inviteClient)
		r.With(requireAdmin, s.minPosition(pWriteModel)).Get("/v1/clients/import/template", s.importTemplate)
		r.With(requireAdmin).Post("/v1/clients/import", s.importClients)

		r.With(requireAdmin, s.minPosition(pAudit)).Get("/v1/audit", s.audit)
	})
	// The single-customer commands check the caller's key with their
	// append (see requireAuthWithAppend).
	r.Group(func(r chi.Router) {
		r.Use(s.requireAuthWithAppend)
		r.Post("/v1/customers/{id}/assignees", s.assignUser)
		r.Delete("/v1/customers/{id}/assignees/{user_id}", s.unassignUser)
		r.With(s.requireAdminChecked).Put("/v1/customers/{id}/lead", s.makeTeamLead)
		r.With(s.requireAdminChecked).Post("/v1/customers/{id}/assignees/{user_id}/replace", s.replaceTeamMember)
	})
	// The web console: HTML pages at /, outside the JSON API's contract.
	s.newConsole().Routes(r)
	return r
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
			if raw == "" {
				next.ServeHTTP(w, r)
				return
			}
			pos, err := strconv.ParseInt(raw, 10, 64)
			if err != nil || pos < 0 {
				s.writeError(w, r, badRequest("invalid_header", "X-Min-Position", "X-Min-Position must be a position token from X-Ledger-Position"))
				return
			}
			if len(wait) == 0 {
				// Served from the event store, which is always current.
				next.ServeHTTP(w, r)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), maxPositionWait)
			defer cancel()
			if err := s.proj.WaitFor(ctx, pos, wait...); err != nil {
				if errors.Is(err, projections.ErrUnknownPosition) {
					s.writeError(w, r, badRequest("invalid_header", "X-Min-Position", "no event has position %d", pos))
					return
				}
				s.writeError(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (s *Server) healthz(w nethttp.ResponseWriter, r *nethttp.Request) {
	writeJSON(w, nethttp.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w nethttp.ResponseWriter, r *nethttp.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if s.ready != nil {
		if err := s.ready(ctx); err != nil {
			writeProblem(w, newProblem(nethttp.StatusServiceUnavailable, "not_ready", err.Error()))
			return
		}
	}
	writeJSON(w, nethttp.StatusOK, map[string]string{"status": "ready"})
}
