package http

import (
	nethttp "net/http"
	"testing"
)

func TestNegotiateWeighsTheAcceptHeader(t *testing.T) {
	offers := []string{"application/json", "text/csv", "text/html"}
	for _, c := range []struct{ accept, want string }{
		{"", "application/json"},
		{"text/csv", "text/csv"},
		{"TEXT/CSV", "text/csv"},
		{"text/csv;q=0.1, application/json", "application/json"},
		{"application/json;q=0.5, text/csv", "text/csv"},
		{"text/csv, application/json", "application/json"}, // a tie: the server's order
		{"text/*", "text/csv"},
		{"text/*;q=0.5, text/html", "text/html"},
		{"*/*;q=0.1, text/csv;q=0.2", "text/csv"},
		{"text/csv;q=0", "application/json"},                       // refused: the default, not 406
		{"*/*, text/csv;q=0", "application/json"},                  // the more specific range wins
		{"text/html,application/xhtml+xml,*/*;q=0.8", "text/html"}, // a browser
		{"image/png", "application/json"},
		{"text/csv;q=2, application/json;q=0.3", "application/json"}, // a bad q is ignored
		{"garbage;;, text/csv", "text/csv"},
	} {
		r, _ := nethttp.NewRequest("GET", "/", nil)
		if c.accept != "" {
			r.Header.Set("Accept", c.accept)
		}
		if got := negotiate(r, offers...); got != c.want {
			t.Errorf("Accept %q: %s, want %s", c.accept, got, c.want)
		}
	}
}
