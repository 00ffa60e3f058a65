package http

import (
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"testing"

	"github.com/assignment-ledger/ledger/eventstore"
)

// A replica's server error before its first byte leaves the real writer
// untouched, headers included, so the primary can answer in its place; any
// other answer goes through with the headers the handler set.
func TestTryWriterHoldsBackAReplicasServerError(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	rec := httptest.NewRecorder()
	rec.Header().Set("X-Request-ID", "r1")
	tw := &tryWriter{w: rec, h: nethttp.Header{}}
	r := httptest.NewRequest("GET", "/v1/customers", nil)
	s.writeError(tw, r, eventstore.ErrUnavailable)
	if !tw.failed || tw.status != 503 {
		t.Fatalf("failed %v status %d", tw.failed, tw.status)
	}
	if rec.Body.Len() != 0 || rec.Header().Get("Retry-After") != "" || rec.Header().Get("Content-Type") != "" || rec.Code != 200 || rec.Flushed {
		t.Fatalf("the real writer was touched: %d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}

	rec = httptest.NewRecorder()
	tw = &tryWriter{w: rec, h: nethttp.Header{}}
	tw.Header().Set("ETag", `"3"`)
	writeJSON(tw, nethttp.StatusOK, map[string]string{"id": "c1"})
	tw.commit(nethttp.StatusOK)
	if tw.failed || rec.Code != 200 || rec.Header().Get("ETag") != `"3"` || rec.Body.String() == "" {
		t.Fatalf("answer not passed through: %d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}

	// A handler that writes nothing answers an empty 200, as net/http
	// would, with its headers.
	rec = httptest.NewRecorder()
	tw = &tryWriter{w: rec, h: nethttp.Header{}}
	tw.Header().Set("Cache-Control", "no-store")
	tw.commit(nethttp.StatusOK)
	if rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("empty answer: %d %v", rec.Code, rec.Header())
	}
}
