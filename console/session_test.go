package console

import "testing"

// TestLocalPath: sign-in's next= only ever leads back into the console.
func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "/customers",
		"/customers/abc?q=x":      "/customers/abc?q=x",
		"//evil.example/":         "/customers",
		"/\\evil.example":         "/customers",
		"https://evil.example/":   "/customers",
		"javascript:alert(1)":     "/customers",
		"/sign-in?next=/sign-out": "/customers",
		"/my-clients":             "/my-clients",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
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
