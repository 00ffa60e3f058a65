package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
	ledgerhttp "github.com/assignment-ledger/ledger/http"
	"github.com/assignment-ledger/ledger/internal/testdb"
	"github.com/assignment-ledger/ledger/mail"
	"github.com/assignment-ledger/ledger/projections"
)

// installHint is how to get the browser the tests drive; they fail with
// it rather than skip.
const installHint = "apt-get update && apt-get install -y chromium (or run `make test`, which installs it as root)"

// world is a real `serve` (the API's router, console included) on a fresh
// database with its projections running, and a tenant with an admin and
// two members, Bob and Carol.
type world struct {
	t      *testing.T
	base   string
	cmd    *commands.Commands
	runner *projections.Runner
	tenant string
	// pool is the database, for counting what a refused request did not
	// append.
	pool  *pgxpool.Pool
	admin user
	bob   user
	carol user
}

type user struct {
	id, name, key string
	actor         domain.Actor
}

func newWorld(t *testing.T) *world { return newWorldWithMail(t, "") }

// newWorldWithMail is newWorld with e-mail on when smtpURL is set: a relay
// delivers the outbox to that server, as `ledger serve` does.
func newWorldWithMail(t *testing.T, smtpURL string) *world {
	t.Helper()
	pool := testdb.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := eventstore.New(pool)
	var opts []commands.Option
	if smtpURL != "" {
		opts = append(opts, commands.WithEmail())
	}
	cmd := commands.New(store, testdb.Keyring(t), log, opts...)
	runner, err := projections.New(pool, store, testdb.Keyring(t), log, projections.WithPollInterval(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = runner.Run(ctx)
	}()
	relayDone := make(chan struct{})
	if smtpURL != "" {
		sender, err := mail.ParseURL(smtpURL)
		if err != nil {
			t.Fatal(err)
		}
		relay, err := mail.NewRelay(pool, sender, "Acme <ledger@acme.example>", "https://ledger.example", log,
			mail.Config{PollInterval: 20 * time.Millisecond, Backoff: 20 * time.Millisecond, MaxAttempts: 3, Record: cmd.RecordEmailOutcome, Open: cmd.OpenEmail})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer close(relayDone)
			_ = relay.Run(ctx)
		}()
	} else {
		close(relayDone)
	}
	api := ledgerhttp.NewServer(ledgerhttp.Deps{
		Pool: pool, Store: store, Commands: cmd, Projections: runner, Queries: projections.NewQueries(pool, testdb.Keyring(t)),
		Log: log, BaseURL: "https://ledger.example",
	})
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		<-relayDone
	})
	boot, err := cmd.Bootstrap(context.Background(), "Acme", "Ann Admin", "ann@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, base: srv.URL, cmd: cmd, runner: runner, tenant: boot.TenantID, pool: pool}
	w.admin = user{id: boot.UserID, name: "Ann Admin", key: boot.APIKey,
		actor: domain.Actor{UserID: boot.UserID, Name: "Ann Admin", Role: domain.RoleAdmin}}
	w.bob = w.member("Bob Baker", "bob@acme.example")
	w.carol = w.member("Carol Cole", "carol@acme.example")
	return w
}

func (w *world) meta() commands.Meta {
	return commands.Meta{TenantID: w.tenant, Actor: w.admin.actor}
}

func (w *world) member(name, email string) user {
	w.t.Helper()
	ctx := context.Background()
	u, err := w.cmd.CreateUser(ctx, w.meta(), name, email, domain.RoleMember)
	if err != nil {
		w.t.Fatal(err)
	}
	k, err := w.cmd.IssueAPIKey(ctx, w.meta(), u.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return user{id: u.ID, name: name, key: k.APIKey, actor: domain.Actor{UserID: u.ID, Name: name, Role: domain.RoleMember}}
}

func (w *world) policy(p domain.Policy) {
	w.t.Helper()
	if _, err := w.cmd.ChangePolicy(context.Background(), w.meta(), p); err != nil {
		w.t.Fatal(err)
	}
}

// customer registers a customer with the given team (IDs) and answers its ID.
func (w *world) customer(first, last string, team ...string) string {
	w.t.Helper()
	email := strings.ToLower(first+"."+last) + "@client.example"
	res, err := w.cmd.RegisterCustomer(context.Background(), w.meta(),
		domain.Profile{FirstName: first, LastName: last, Email: email}, team...)
	if err != nil {
		w.t.Fatal(err)
	}
	// Pages that name customers from the read models (a review's rows) then
	// know it, as a client reading its own write with X-Min-Position would.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.runner.WaitFor(ctx, res.Position); err != nil {
		w.t.Fatal(err)
	}
	return res.ID
}

// browser is one headless Chromium with a fresh profile (its own cookie
// jar), driven over the DevTools protocol.
type browser struct {
	t   *testing.T
	ctx context.Context
	w   *world
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, c := range []string{os.Getenv("LEDGER_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	t.Fatalf("Chromium is not installed; the console's browser tests need it: %s", installHint)
	return ""
}

func newBrowser(t *testing.T, w *world, width, height int) *browser {
	t.Helper()
	// Not t.TempDir: Chromium's helpers may still be writing the profile
	// when the test ends, and TempDir fails the test if removal fails.
	profile, err := os.MkdirTemp("", "ledger-console-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(width, height),
		// The machine has no network: nothing may try to reach out.
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// Start the browser now, so a failure to launch is reported as such.
	// The viewport is emulated: headless windows have a minimum width
	// above a phone's 390 px.
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start Chromium: %v (%s)", err, installHint)
	}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		for range 20 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return &browser{t: t, ctx: ctx, w: w}
}

// run performs actions with a deadline; on failure it saves a screenshot
// and the page's HTML under testdata/output/<test>/ and names them.
func (b *browser) run(what string, actions ...chromedp.Action) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v (page saved in %s)", what, err, b.saveFailure(what))
	}
}

func (b *browser) saveFailure(what string) string {
	dir, err := filepath.Abs(filepath.Join("testdata", "output", safeName(b.t.Name())))
	if err != nil || os.MkdirAll(dir, 0o755) != nil {
		return "(could not create the output directory)"
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	var png []byte
	var html, url string
	_ = chromedp.Run(ctx, chromedp.Location(&url), chromedp.FullScreenshot(&png, 80),
		chromedp.OuterHTML("html", &html, chromedp.ByQuery))
	base := safeName(what)
	_ = os.WriteFile(filepath.Join(dir, base+".png"), png, 0o644)
	_ = os.WriteFile(filepath.Join(dir, base+".html"), []byte("<!-- "+url+" -->\n"+html), 0o644)
	b.t.Logf("failure artifacts: %s/%s.{png,html} (page %s)", dir, base, url)
	return dir
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(s string) string { return unsafeChars.ReplaceAllString(s, "_") }

// failf fails the test after saving the page.
func (b *browser) failf(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	b.t.Fatalf("%s (page saved in %s)", msg, b.saveFailure(msg[:min(len(msg), 60)]))
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.run("open "+path, chromedp.Navigate(b.w.base+path), chromedp.WaitReady("body", chromedp.ByQuery))
}

// signIn signs in through the form with u's API key.
func (b *browser) signIn(u user) {
	b.t.Helper()
	b.open("/sign-in")
	b.run("sign in as "+u.name,
		chromedp.SendKeys("#api_key", u.key, chromedp.ByID),
		chromedp.Click("#sign-in button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible("#who", chromedp.ByID),
	)
}

// text answers the text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.run("read "+sel, chromedp.WaitReady(sel, chromedp.ByQuery), chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// click clicks sel (a link or a form's button) and waits until the next
// page has loaded: the old document is marked, so a check cannot read the
// page it came from.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.run("click "+sel,
		chromedp.Evaluate(`window.__ledgerOld = true`, nil),
		chromedp.Click(sel, chromedp.ByQuery))
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var loaded bool
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		// Evaluating during the navigation fails; that is retried.
		err := chromedp.Run(ctx, chromedp.Evaluate(`window.__ledgerOld === undefined && document.readyState === "complete"`, &loaded))
		cancel()
		if err == nil && loaded {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.failf("no new page loaded after clicking %s", sel)
}

// waitText waits until sel's text contains want (pages that follow a
// command wait for its position, but some checks follow another user's).
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		err := chromedp.Run(ctx, chromedp.WaitReady(sel, chromedp.ByQuery), chromedp.Text(sel, &got, chromedp.ByQuery))
		cancel()
		if err == nil && strings.Contains(got, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.failf("%s shows %q, want it to contain %q", sel, got, want)
}

// has reports whether the page has an element matching sel, now.
func (b *browser) has(sel string) bool {
	b.t.Helper()
	var ok bool
	b.run("look for "+sel, chromedp.Evaluate(fmt.Sprintf("document.querySelector(%q) !== null", sel), &ok))
	return ok
}

// download is a file the browser downloaded: the name the server
// suggested and where Chromium saved it.
type download struct {
	name, path string
}

// download clicks sel (a link to a file) and waits until Chromium has
// saved the file it starts, as a user's browser would: downloads are
// allowed into a directory of the test's, named by their GUID, and the
// browser's own download events say when one is complete.
func (b *browser) download(sel string) download {
	b.t.Helper()
	dir, err := os.MkdirTemp("", "ledger-console-download-")
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { _ = os.RemoveAll(dir) })
	type event struct {
		guid, name string
		state      cdpbrowser.DownloadProgressState
	}
	events := make(chan event, 64)
	ctx, stop := context.WithCancel(b.ctx)
	defer stop()
	chromedp.ListenBrowser(ctx, func(ev any) {
		var e event
		switch ev := ev.(type) {
		case *cdpbrowser.EventDownloadWillBegin:
			e = event{guid: ev.GUID, name: ev.SuggestedFilename}
		case *cdpbrowser.EventDownloadProgress:
			e = event{guid: ev.GUID, state: ev.State}
		default:
			return
		}
		select {
		case events <- e:
		default:
		}
	})
	b.run("allow downloads into "+dir, chromedp.ActionFunc(func(ctx context.Context) error {
		// A browser-wide setting: it must reach the browser, not the page.
		c := chromedp.FromContext(ctx)
		return cdpbrowser.SetDownloadBehavior(cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName).
			WithDownloadPath(dir).WithEventsEnabled(true).Do(cdp.WithExecutor(ctx, c.Browser))
	}))
	b.run("click "+sel, chromedp.Click(sel, chromedp.ByQuery))
	names := map[string]string{}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-events:
			if e.name != "" {
				names[e.guid] = e.name
			}
			switch e.state {
			case cdpbrowser.DownloadProgressStateCanceled:
				b.failf("the download of %s was canceled", sel)
			case cdpbrowser.DownloadProgressStateCompleted:
				path := filepath.Join(dir, e.guid)
				if _, err := os.Stat(path); err != nil {
					b.failf("download complete but no file: %v", err)
				}
				return download{name: names[e.guid], path: path}
			}
		case <-timeout:
			b.failf("clicking %s downloaded nothing within 20 s (events for %v)", sel, names)
		}
	}
}
