package http

import (
	"context"
	"fmt"
	nethttp "net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/ledgerlog"
	"github.com/assignment-ledger/ledger/projections"
	"github.com/assignment-ledger/ledger/readroute"
)

// ReplicaDeps are the read side over one replica (readroute names it):
// the same kinds of collaborators as Deps, each over the replica's pool.
// Only their reads are used.
type ReplicaDeps struct {
	Name        string
	Pool        *pgxpool.Pool
	Store       *eventstore.Store
	Commands    *commands.Commands
	Queries     *projections.Queries
	Projections *projections.Runner
	// Ledger serves the ledger log's proofs from the replica; nil keeps
	// the ledger log's reads on the primary.
	Ledger *ledgerlog.Log
}

// How reads reach a replica: the server builds, per replica, a copy of
// itself whose handlers read through that replica's collaborators (a
// "shadow"), and minPosition (every read route of the API declares with it
// what it reads) and consoleReads (the console's pages) hand a GET to a
// shadow when the router finds a replica that can answer it. The handlers
// never know. A shadow authenticates through the primary (a revoked key
// must not outlive its lease on a lagging replica), and keeps the console's
// sessions there too. An answer a shadow fails (a 5xx before anything was
// written) is dropped and the primary answers instead.

// primaryGrace is kept from the 5 s position bound for the primary when
// no replica reached the position: it may well have.
const primaryGrace = time.Second

// replicaAnswerWithin is how long a replica has to begin its answer (reads
// take milliseconds) before the primary answers instead.
const replicaAnswerWithin = 2 * time.Second

// shadowFor is s reading through d.
func (s *Server) shadowFor(d ReplicaDeps) *Server {
	c := *s
	c.pool, c.store, c.cmd, c.q, c.proj, c.ledger = d.Pool, d.Store, d.Commands, d.Queries, d.Projections, d.Ledger
	c.shadow, c.reads, c.shadows = true, nil, nil
	c.router = c.routes()
	return &c
}

// latestCheckpoint is the route of the one ledger log read that stays on
// the primary: reading the latest checkpoint signs one when the tree has
// grown.
const latestCheckpoint = "/v1/ledger/checkpoint"

// routable says whether a GET reading names may go to a replica: the
// ledger log's proofs only when every replica serves its ledger log.
func (s *Server) routable(r *nethttp.Request, names []string) bool {
	if r.Method != nethttp.MethodGet {
		return false
	}
	if slices.Contains(names, pLedger) {
		if chi.RouteContext(r.Context()).RoutePattern() == latestCheckpoint {
			return false
		}
		for _, sh := range s.shadows {
			if sh.ledger == nil {
				return false
			}
		}
	}
	return true
}

// replicaRead serves r from a replica that can answer it, or reports false
// for the primary to answer: with a position, one whose read models
// (names; the event store when none) have reached it, waited for within
// the position bound; without, one at most the maximum lag behind.
func (s *Server) replicaRead(w nethttp.ResponseWriter, r *nethttp.Request, pos int64, hasPos bool, names []string) bool {
	var rep *readroute.Replica
	if hasPos {
		ctx, cancel := context.WithTimeout(r.Context(), maxPositionWait-primaryGrace)
		rep = s.reads.Await(ctx, func(ctx context.Context, rep *readroute.Replica) (bool, error) {
			sh := s.shadows[rep.Name()]
			if len(names) == 0 {
				// Write-model reads: the event's transaction has been
				// replayed, and with it everything committed before it.
				_, err := sh.store.EventCursor(ctx, pos)
				if err == eventstore.ErrNotFound {
					return false, nil
				}
				return err == nil, err
			}
			return sh.proj.Reached(ctx, pos, names...)
		})
		cancel()
	} else {
		rep = s.reads.Fresh()
	}
	if rep == nil {
		return false
	}
	tw := &tryWriter{w: w, h: nethttp.Header{}}
	// A replica that has not begun its answer within replicaAnswerWithin
	// is given up (it may hang: a frozen host, a partition without a
	// reset), and the primary answers: otherwise the read waited for the
	// request's whole deadline and answered 503 (found by hostile testing).
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	giveUp := time.AfterFunc(replicaAnswerWithin, func() {
		if tw.abandon() {
			cancel()
		}
	})
	// The shadow routes the request afresh; the primary's route context
	// stays as it was for the middleware around this one.
	rr := r.WithContext(context.WithValue(ctx, chi.RouteCtxKey, chi.NewRouteContext()))
	s.shadows[rep.Name()].router.ServeHTTP(tw, rr)
	giveUp.Stop()
	if status, failed := tw.failure(); failed {
		if r.Context().Err() == nil {
			s.reads.Failed(rep, fmt.Errorf("a read answered %d", status))
		}
		return false
	}
	tw.commit(nethttp.StatusOK)
	s.reads.Served(readroute.TargetReplica)
	return true
}

// consoleReads routes the console's page reads: a page shown after a
// command (?pos=) from a replica whose read models have all reached that
// position, any other from a replica within the lag bound. Sign-in and
// assets stay here.
func (s *Server) consoleReads(next nethttp.Handler) nethttp.Handler {
	if s.shadow || s.reads == nil {
		return next
	}
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		p := r.URL.Path
		if r.Method != nethttp.MethodGet || p == "/sign-in" || strings.HasPrefix(p, "/assets/") {
			next.ServeHTTP(w, r)
			return
		}
		var pos int64
		raw := r.URL.Query().Get("pos")
		has := raw != ""
		if has {
			var err error
			if pos, err = strconv.ParseInt(raw, 10, 64); err != nil || pos < 0 {
				// The page says what is wrong with it.
				next.ServeHTTP(w, r)
				return
			}
		}
		if s.replicaRead(w, r, pos, has, projections.AllNames()) {
			return
		}
		s.reads.Served(readroute.TargetPrimary)
		next.ServeHTTP(w, r)
	})
}

// tryWriter holds a shadow's answer back until it is known not to be a
// server error: a 5xx (the replica failed) is dropped, and the primary
// answers on the real writer, which nothing has touched.
type tryWriter struct {
	w      nethttp.ResponseWriter
	h      nethttp.Header
	status int
	// mu orders the handler's commit against abandon, called by a timer.
	mu                sync.Mutex
	committed, failed bool
}

func (t *tryWriter) Header() nethttp.Header {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.committed {
		return t.w.Header()
	}
	return t.h
}

func (t *tryWriter) WriteHeader(code int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.committed || t.failed || code < 200 {
		return
	}
	if code >= 500 {
		t.failed, t.status = true, code
		return
	}
	t.commitLocked(code)
}

// commit sends the held headers and code (once).
func (t *tryWriter) commit(code int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.commitLocked(code)
}

func (t *tryWriter) commitLocked(code int) {
	if t.committed || t.failed {
		return
	}
	dst := t.w.Header()
	for k, v := range t.h {
		dst[k] = v
	}
	t.committed, t.status = true, code
	t.w.WriteHeader(code)
}

// abandon fails the answer unless it has begun; it reports whether it did.
func (t *tryWriter) abandon() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.committed || t.failed {
		return false
	}
	t.failed, t.status = true, nethttp.StatusServiceUnavailable
	return true
}

func (t *tryWriter) hasFailed() bool {
	_, failed := t.failure()
	return failed
}

// failure is the status of a failed answer.
func (t *tryWriter) failure() (status int, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status, t.failed
}

func (t *tryWriter) Write(b []byte) (int, error) {
	t.commit(nethttp.StatusOK)
	if t.hasFailed() {
		return len(b), nil
	}
	return t.w.Write(b)
}

func (t *tryWriter) Flush() {
	t.mu.Lock()
	committed := t.committed
	t.mu.Unlock()
	if f, ok := t.w.(nethttp.Flusher); ok && committed {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (an export
// moves its write deadline).
func (t *tryWriter) Unwrap() nethttp.ResponseWriter { return t.w }
