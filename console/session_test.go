package console

import (
	"strings"
	"testing"
)

// TestLocalPath: sign-in's next= only ever leads to a page of the console:
// what a browser would read as another host (a tab or newline it strips,
// a backslash it reads as "/") or anything but a console page leads to /.
func TestLocalPath(t *testing.T) {
	c := New(Deps{})
	for in, want := range map[string]string{
		"":                             "/",
		"/customers/abc?q=x":           "/customers/abc?q=x",
		"/customers?q=a+b&status=x":    "/customers?q=a+b&status=x",
		"//evil.example/":              "/",
		"/\\evil.example":              "/",
		"/\t/evil.test":                "/",
		"/\n/evil.test":                "/",
		"/\r\n/evil.test":              "/",
		"\t//evil.test":                "/",
		"/ /evil.test":                 "/",
		"/\u00a0/evil.test":            "/",
		"/\u2028/evil.test":            "/",
		"/%2F%2Fevil.test":             "/",
		"/%09/evil.test":               "/",
		"/customers\\evil.test":        "/",
		"https://evil.example/":        "/",
		"http:/evil.example/":          "/",
		"javascript:alert(1)":          "/",
		"/sign-in?next=/sign-out":      "/",
		"/assets/console.css":          "/",
		"/v1/customers":                "/",
		"/healthz":                     "/",
		"/no-such-page":                "/",
		"/my-clients":                  "/my-clients",
		"/users/abc/transfer?to=x":     "/users/abc/transfer?to=x",
		"/audit?type=UserAssigned#top": "/audit?type=UserAssigned",
	} {
		got := c.localPath(in)
		if got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
		if strings.ContainsAny(got, "\t\r\n\\") || strings.HasPrefix(got, "//") {
			t.Errorf("localPath(%q) = %q leaves the site", in, got)
		}
	}
}

// TestNoticeText: ?done= shows only the console's own words.
func TestNoticeText(t *testing.T) {
	if got := noticeText("team"); got != "Team saved." {
		t.Errorf("noticeText(team) = %q", got)
	}
	if got := noticeText("<script>"); got != "" {
		t.Errorf("an unknown done= shows %q", got)
	}
}
