package console_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/domain"
)

// TestConsoleScreenshots opens every page on a small demo tenant and
// writes a PNG of each: into $LEDGER_SCREENSHOTS when set (`make
// screenshots` sets docs/screenshots), else into a temporary directory, so
// in `make test` it checks that every page renders in a real browser, at
// 1280 and 390 pixels wide.
func TestConsoleScreenshots(t *testing.T) {
	dir := os.Getenv("LEDGER_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	three := 3
	w.policy(domain.Policy{MaxAssignees: &three, RequireLead: true, MembersCanSelfAssign: true})
	dora := w.member("Dora Dunn", "dora@acme.example")
	people := []struct{ first, last string }{
		{"Carla", "Client"}, {"Mia", "Moss"}, {"Tom", "Tide"}, {"Ada", "Apple"}, {"Ben", "Berry"},
		{"Cy", "Cherry"}, {"Nora", "North"}, {"Otto", "Old"}, {"Lea", "Lone"}, {"Ned", "Notify"},
	}
	teams := [][]string{{w.bob.id, w.admin.id}, {w.carol.id}, {w.bob.id}, {dora.id, w.carol.id}, {}, {w.admin.id}}
	var first string
	for i, p := range people {
		id := w.customer(p.first, p.last, teams[i%len(teams)]...)
		if i == 0 {
			first = id
		}
	}
	then := time.Now().UTC().Add(time.Second).Truncate(time.Second)
	time.Sleep(1100 * time.Millisecond)
	ctx := context.Background()
	if _, err := w.cmd.SetTeam(ctx, w.meta(), first, []string{w.admin.id, w.carol.id, dora.id}, w.carol.id); err != nil {
		t.Fatal(err)
	}

	shots := []struct {
		name, path string
		width      int
		before     func(b *browser)
	}{
		{"customers", "/customers", 1280, nil},
		{"customers-390", "/customers", 390, nil},
		{"profile", "/customers/" + first + "?as_of=" + then.Format("2006-01-02T15:04:05"), 1280, nil},
		{"profile-390", "/customers/" + first, 390, nil},
		{"review", "/customers", 1280, func(b *browser) {
			b.run("prepare a review", chromedp.Click(`input[data-select-all]`, chromedp.ByQuery),
				chromedp.SetValue("#bulk-action", "set", chromedp.ByID),
				chromedp.SetValue("#bulk-user", w.carol.id, chromedp.ByID))
			b.click("#bulk-review")
		}},
		{"my-clients", "/my-clients", 1280, nil},
		{"notifications", "/notifications", 1280, nil},
		{"users", "/users", 1280, nil},
		{"deactivate", "/users/" + w.bob.id + "/deactivate?transfer_to=" + w.carol.id, 1280, nil},
		{"audit", "/audit", 1280, nil},
		{"import", "/import", 1280, nil},
		{"invite", "/invite", 1280, nil},
		{"policy", "/policy", 1280, nil},
		{"groups", "/groups", 1280, nil},
		{"assign-customers", "/users/" + w.bob.id + "/customers", 1280, nil},
		{"customers-columns", "/customers?cols=1&col=phone&col=created&col=groups", 1280, nil},
		{"rules", "/rules", 1280, nil},
		{"workload", "/workload", 1280, nil},
		{"follow-ups", "/follow-ups", 1280, nil},
		{"views", "/views", 1280, nil},
	}
	for _, s := range shots {
		b := newBrowser(t, w, s.width, 900)
		b.signIn(w.admin)
		b.open(s.path)
		if s.before != nil {
			s.before(b)
		}
		var png []byte
		b.run("screenshot "+s.name, chromedp.CaptureScreenshot(&png))
		if err := os.WriteFile(filepath.Join(dir, s.name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The sign-in page, signed out.
	b := newBrowser(t, w, 1280, 600)
	b.open("/sign-in")
	var png []byte
	b.run("screenshot sign-in", chromedp.CaptureScreenshot(&png))
	if err := os.WriteFile(filepath.Join(dir, "sign-in.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
}
