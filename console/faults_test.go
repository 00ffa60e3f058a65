package console_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/eventstore"
	ledgerhttp "github.com/assignment-ledger/ledger/http"
	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/projections"
)

// TestConsoleBadTextAndCursorsAreBadRequests: a form or query field no
// text can hold (a NUL byte, invalid UTF-8) and an edited list cursor are
// 400s, as in the API, never 500s (found by hostile testing: the console
// handed them to PostgreSQL).
func TestConsoleBadTextAndCursorsAreBadRequests(t *testing.T) {
	w := newWorld(t)
	w.customer("Kai", "Kept", w.bob.id)
	admin, _ := signInHTTP(t, w, w.admin, "/customers")
	cursor := func(kind, v string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(`{"k":"` + kind + `","v":` + v + `}`))
	}
	for _, c := range []struct {
		name, method, path string
		form               url.Values
	}{
		{"invite's team search with NUL", "POST", "/invite", url.Values{"team_q": {"\x00"}, "find": {"team"}}},
		{"invite's team search not UTF-8", "POST", "/invite", url.Values{"team_q": {"\xff"}, "find": {"team"}}},
		{"bulk review's back with NUL", "POST", "/customers/bulk/review", url.Values{"back": {"q=\x00"}, "all_matching": {"on"}, "action": {"block"}}},
		{"message's back with NUL", "POST", "/customers/message", url.Values{"back": {"q=\x00"}, "all_matching": {"on"}}},
		{"customers cursor with a malformed ID", "GET", "/customers?cursor=" + cursor("customers", `{"t":"2026-12-07T19:15:10Z","id":"not-uuid"}`), nil},
		{"my clients cursor of null", "GET", "/my-clients?cursor=" + cursor("my_clients", `null`), nil},
	} {
		got := admin.do(c.method, c.path, c.form)
		if got.status != nethttp.StatusBadRequest || !strings.Contains(got.body, "<html") {
			t.Errorf("%s: %d %.200s", c.name, got.status, got.body)
		}
	}
}

// TestConsoleAnswers503WhenTheDatabaseIsTooSlow: a page whose database
// work outlasts the request limit answers the API's 503 with Retry-After,
// on a page saying so (found by hostile testing: a blank 200).
func TestConsoleAnswers503WhenTheDatabaseIsTooSlow(t *testing.T) {
	w := newWorld(t)
	w.customer("Kai", "Kept", w.bob.id)
	api := ledgerhttp.NewServer(ledgerhttp.Deps{
		Pool: w.pool, Store: eventstore.New(w.pool), Commands: w.cmd, Projections: w.runner, Queries: projections.NewQueries(w.pool, testdb.Keyring(t)),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), BaseURL: "https://ledger.example", RequestTimeout: 300 * time.Millisecond,
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	slow := *w
	slow.base = srv.URL
	admin, _ := signInHTTP(t, &slow, w.admin, "/customers")

	ctx := context.Background()
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, `LOCK TABLE customer_list IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	req, err := nethttp.NewRequest(nethttp.MethodGet, srv.URL+"/customers", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := admin.cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 512)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	if resp.StatusCode != nethttp.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || n == 0 {
		t.Fatalf("customers page with customer_list locked: %d, Retry-After %q, %d bytes of body", resp.StatusCode, resp.Header.Get("Retry-After"), n)
	}
}
