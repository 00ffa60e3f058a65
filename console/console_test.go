package console_test

import (
	"context"
	"io"
	nethttp "net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestConsoleSignIn: a wrong key is refused on the form, the right one
// opens the customers with the user's name in the header, behind an
// HttpOnly SameSite=Strict cookie, and signing out ends the session.
func TestConsoleSignIn(t *testing.T) {
	w := newWorld(t)
	b := newBrowser(t, w, 1280, 900)

	b.open("/customers")
	b.run("sent to sign in", chromedp.WaitVisible("#api_key", chromedp.ByID))
	// By keyboard: the field has focus on load, Enter submits.
	b.run("wrong key", chromedp.SendKeys("#api_key", "not-a-key"+kb.Enter, chromedp.ByID),
		chromedp.WaitVisible("#refusal", chromedp.ByID))
	if got := b.text("#refusal"); !strings.Contains(got, "Unknown API key") {
		b.failf("refusal = %q", got)
	}

	b.signIn(w.admin)
	if got := b.text("h1"); got != "Customers" {
		b.failf("after sign-in the page is %q, want Customers (sign-in returns to next=)", got)
	}
	if got := b.text("#who"); !strings.Contains(got, "Ann Admin") {
		b.failf("header shows %q", got)
	}
	var cookies []*network.Cookie
	b.run("cookies", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().Do(ctx)
		return err
	}))
	var found bool
	for _, c := range cookies {
		if c.Name == "ledger_session" {
			found = true
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
				t.Errorf("session cookie HttpOnly=%v SameSite=%v, want HttpOnly and Strict", c.HTTPOnly, c.SameSite)
			}
		}
	}
	if !found {
		t.Fatalf("no ledger_session cookie among %d", len(cookies))
	}

	b.click("form[action='/sign-out'] button")
	b.waitText("#notice", "signed out")
	b.open("/customers")
	b.run("signed out for good", chromedp.WaitVisible("#api_key", chromedp.ByID))
}

// TestConsoleCSRF: a POST without the session's token changes nothing and
// is refused, even with the session cookie (what a cross-site form would
// send under SameSite=Lax browsers' top-level POST exceptions).
func TestConsoleCSRF(t *testing.T) {
	w := newWorld(t)
	cust := w.customer("Nora", "North")
	jar, _ := cookiejar.New(nil)
	cl := &nethttp.Client{Jar: jar}
	// Sign in by hand: fetch the form for its token, post it back.
	resp, err := cl.Get(w.base + "/sign-in")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := between(string(body), `name="csrf" value="`, `"`)
	resp, err = cl.PostForm(w.base+"/sign-in", url.Values{"csrf": {tok}, "api_key": {w.admin.key}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "Ann Admin") {
		t.Fatalf("hand sign-in failed: %d", resp.StatusCode)
	}
	for _, form := range []url.Values{
		{"mine": {"add"}},
		{"mine": {"add"}, "csrf": {"forged"}},
		{"mine": {"add"}, "csrf": {tok}}, // the sign-in token is not the session's
	} {
		resp, err = cl.PostForm(w.base+"/customers/"+cust+"/mine", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != nethttp.StatusForbidden {
			t.Errorf("POST with csrf=%q answered %d, want 403", form.Get("csrf"), resp.StatusCode)
		}
	}
	// A form from another origin is refused even with the right token.
	real := between(string(page), `name="csrf" value="`, `"`)
	req, _ := nethttp.NewRequest("POST", w.base+"/customers/"+cust+"/mine", strings.NewReader(url.Values{"mine": {"add"}, "csrf": {real}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err = cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != nethttp.StatusForbidden {
		t.Errorf("cross-origin POST answered %d, want 403", resp.StatusCode)
	}
	cu, err := w.cmd.GetCustomer(context.Background(), w.tenant, cust)
	if err != nil {
		t.Fatal(err)
	}
	if len(cu.Assignees) != 0 {
		t.Fatalf("a refused POST assigned %v", cu.Assignees)
	}

	// Signing out ends the session on the server: the old cookie, sent
	// again, no longer signs anyone in.
	u, _ := url.Parse(w.base)
	old := jar.Cookies(u)
	resp, err = cl.PostForm(w.base+"/sign-out", url.Values{"csrf": {real}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ = nethttp.NewRequest("GET", w.base+"/customers", nil)
	for _, c := range old {
		req.AddCookie(c)
	}
	resp, err = (&nethttp.Client{CheckRedirect: func(*nethttp.Request, []*nethttp.Request) error { return nethttp.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != nethttp.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/sign-in") {
		t.Fatalf("the signed-out cookie answered %d %s, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}
