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
		weak    bool
	}
	for in, want := range map[string]tag{`"3"`: {3, false}, `W/"7"`: {7, true}, `12`: {12, false}} {
		if v, weak, err := parseETag(in); err != nil || (tag{v, weak}) != want {
			t.Errorf("parseETag(%q) = %d, %v, %v", in, v, weak, err)
		}
	}
	for _, in := range []string{`"x"`, `"-1"`, ``, `*`, `W/`} {
		if _, _, err := parseETag(in); err == nil {
			t.Errorf("parseETag(%q) accepted", in)
		}
	}
}
