package http

import (
	"bytes"
	"encoding/json"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPanicIsRecoveredAsProblem(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s := NewServer(Deps{Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	h := withRequestID(s.recoverer(nethttp.HandlerFunc(func(nethttp.ResponseWriter, *nethttp.Request) {
		panic("boom")
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if rec.Code != 500 || p.Status != 500 || p.Code != "internal" || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("answer %d %+v", rec.Code, p)
	}
	if !strings.Contains(logs.String(), "boom") || !strings.Contains(p.Detail, rec.Header().Get("X-Request-ID")) {
		t.Fatalf("panic not logged with its request id: %s / %s", logs.String(), p.Detail)
	}
}

func TestParseETag(t *testing.T) {
	t.Parallel()
	type tag struct {
		version int64
		matches bool
	}
	// A weak tag, or one not in canonical digits, compares unequal to
	// every version (strong comparison is octet for octet).
	for in, want := range map[string]tag{`"3"`: {3, true}, `W/"7"`: {7, false}, `12`: {12, true}, `"09"`: {9, false}, `"+10"`: {10, false}} {
		if v, matches, err := parseETag(in); err != nil || (tag{v, matches}) != want {
			t.Errorf("parseETag(%q) = %d, %v, %v", in, v, matches, err)
		}
	}
	for _, in := range []string{`"x"`, `"-1"`, ``, `*`, `W/`} {
		if _, _, err := parseETag(in); err == nil {
			t.Errorf("parseETag(%q) accepted", in)
		}
	}
}
