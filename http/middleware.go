package http

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
)

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxPrincipal
	ctxCorrelationID
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxRequestID).(string)
	return id
}

// correlationID is the server-made ID the request's events carry.
func correlationID(ctx context.Context) string {
	id, _ := ctx.Value(ctxCorrelationID).(string)
	return id
}

// withRequestID tags every request with an ID, echoed in X-Request-ID, so a
// client's report can be matched with the logs. A client's own ID is kept
// when it is 1-128 characters of A-Z a-z 0-9 . _ : - (anything else would
// go into logs unescaped). Events never carry a client's ID: their
// correlation ID is server-made, so that no caller can make unrelated
// commands share one forever in an append-only log, or plant a formula in
// the audit export; it is the request ID when the client sent none, and is
// logged beside it otherwise.
func withRequestID(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		correlation := hex.EncodeToString(b)
		id := r.Header.Get("X-Request-ID")
		if !validRequestID(id) {
			id = correlation
		}
		w.Header().Set("X-Request-ID", id)
		ctx := context.WithValue(r.Context(), ctxRequestID, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, ctxCorrelationID, correlation)))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// statusRecorder remembers what was answered, for logs and metrics.
type statusRecorder struct {
	nethttp.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = nethttp.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Flush lets streamed exports reach the client as they are produced.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(nethttp.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() nethttp.ResponseWriter { return s.ResponseWriter }

type httpMetrics struct {
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ledger_http_request_duration_seconds",
		Help:    "HTTP request latency by route pattern, method and status.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method", "route", "status"})}
	reg.MustRegister(m.duration)
	return m
}

// observe logs each request and records its latency by route pattern (not
// raw path, which would explode the metric's cardinality).
func (s *Server) observe(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		aborted := true
		defer func() {
			if aborted {
				// A handler aborted the response (a failed export): log it
				// as such; net/http then drops the connection.
				s.log.LogAttrs(r.Context(), slog.LevelError, "http request aborted",
					slog.String("request_id", requestID(r.Context())),
					slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.Int64("bytes", rec.bytes), slog.Duration("duration", time.Since(start)))
			}
		}()
		next.ServeHTTP(rec, r)
		aborted = false
		if rec.status == 0 {
			rec.status = nethttp.StatusOK
		}
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		elapsed := time.Since(start)
		s.metrics.duration.WithLabelValues(r.Method, route, strconv.Itoa(rec.status)).Observe(elapsed.Seconds())
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		s.log.LogAttrs(r.Context(), level, "http request",
			slog.String("request_id", requestID(r.Context())),
			slog.String("correlation_id", correlationID(r.Context())),
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", elapsed),
		)
	})
}

// recoverer turns a panic into a logged 500 with a problem body.
func (s *Server) recoverer(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == nethttp.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic serving request",
					slog.String("request_id", requestID(r.Context())),
					slog.String("panic", fmt.Sprint(v)),
					slog.String("stack", string(debug.Stack())))
				p := newProblem(nethttp.StatusInternalServerError, "internal", "internal error; request id "+requestID(r.Context()))
				writeProblem(w, p)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
