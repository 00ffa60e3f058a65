package console_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/internal/smtptest"
)

// notPages are the console's GET routes that answer no HTML page: files
// to download and the pickers' JSON.
var notPages = map[string]bool{
	"/customers/export": true, "/audit/export": true, "/import/template.csv": true, "/users/search": true,
}

// TestConsoleNoSidewaysScrollAt390: at a phone's 390 px no console page is
// wider than the viewport (document.scrollingElement.scrollWidth <=
// clientWidth): every page the router serves (walked, so a new page is
// checked without editing this test; a route with an ID it cannot fill
// fails it), signed in as an admin and as a member, plus the pages that
// follow a form (the reviews, the message sent, an invitation, a Find),
// and the customer table with every optional column shown.
func TestConsoleNoSidewaysScrollAt390(t *testing.T) {
	srv := smtptest.Start(t)
	w := newWorldWithMail(t, srv.URL())
	ctx := context.Background()
	w.policy(domain.Policy{MembersCanSelfAssign: true})
	long := "Maximilian-Alexander Vandenberghe-Oppenheimer"
	res, err := w.cmd.RegisterCustomer(ctx, w.meta(), domain.Profile{FirstName: long, LastName: long,
		Email: "maximilian.alexander.vandenberghe-oppenheimer@a-very-long-client-domain.example", Phone: "+44 20 7946 0000 ext 12345",
		ExternalID: "EXTERNAL-ID-0123456789-ABCDEFGHIJ", Title: "Chief Executive Officer for Europe, the Middle East and Africa"}, w.bob.id, w.carol.id)
	if err != nil {
		t.Fatal(err)
	}
	cust := res.ID
	other := w.customer("Una", "Unassigned")
	g, err := w.cmd.CreateGroup(ctx, w.meta(), "A group with a rather long name for a phone")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.cmd.BulkCustomers(ctx, w.meta(), commands.CustomerBulkRequest{Action: domain.CustomerActionAddToGroup,
		CustomerIDs: []string{cust}, GroupID: g.ID}); err != nil {
		t.Fatal(err)
	}
	msg, err := w.cmd.MessageCustomers(ctx, w.meta(), commands.MessageRequest{CustomerIDs: []string{cust}, Subject: "Hello", Body: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.runner.WaitFor(ctx, msg.Position); err != nil {
		t.Fatal(err)
	}
	fill := map[string]string{"/customers/{id}": cust, "/users/{id}": w.bob.id, "/messages/{id}": msg.ID, "/groups/{id}": g.ID}

	var paths []string
	for _, route := range consolePages(t) {
		method, pattern, _ := strings.Cut(route, " ")
		if method != "GET" || notPages[pattern] {
			continue
		}
		path := pattern
		for prefix, id := range fill {
			if strings.HasPrefix(path, prefix) {
				path = strings.Replace(path, "{id}", id, 1)
			}
		}
		if strings.Contains(path, "{") {
			t.Fatalf("the 390 px test cannot fill %s: add its ID to fill", pattern)
		}
		paths = append(paths, path)
	}
	paths = append(paths, "/customers?cols=1&col=phone&col=external_id&col=title&col=created&col=groups&col=followups",
		"/customers/"+cust+"?as_of=2030-01-01T00:00:00", "/users/"+w.bob.id+"/deactivate?transfer_to="+w.carol.id,
		"/users/"+w.bob.id+"/transfer?to="+w.carol.id, "/audit?customer_q=a")

	check := func(b *browser, who, what string) {
		t.Helper()
		var m struct {
			Scroll, Client int
			Widest         string
		}
		b.run("measure "+what, chromedp.Evaluate(`(() => {
			const s = document.scrollingElement, vw = s.clientWidth;
			let widest = "";
			for (const el of document.querySelectorAll("body *")) {
				const r = el.getBoundingClientRect();
				if (r.right > vw + 0.5 && !el.closest(".table-wrap")) { widest = el.tagName + (el.id ? "#" + el.id : "") + "." + el.className + " right=" + Math.round(r.right); break; }
			}
			return {scroll: s.scrollWidth, client: vw, widest: widest};
		})()`, &m))
		if m.Scroll > m.Client {
			b.failf("as %s, %s scrolls sideways at 390 px: %d px wide in %d (first too wide: %s)", who, what, m.Scroll, m.Client, m.Widest)
		}
	}
	checked := 0
	for _, u := range []user{w.admin, w.bob} {
		b := newBrowser(t, w, 390, 844)
		b.signIn(u)
		for _, p := range paths {
			b.open(p)
			check(b, u.name, p)
			checked++
		}
	}

	// Pages that follow a form.
	csvFile := filepath.Join(t.TempDir(), "clients.csv")
	if err := os.WriteFile(csvFile, []byte("Email,First Name,Team\nivy.with.a.long.address@a-very-long-client-domain.example,Ivy,nobody-at-all@acme.example\n,NoMail,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, w, 390, 844)
	b.signIn(w.admin)
	follow := []struct {
		name string
		do   func()
	}{
		{"the bulk review", func() {
			b.open("/customers")
			b.run("tick and set Carol", chromedp.Click("#pick-"+cust, chromedp.ByID), chromedp.SetValue("#bulk-action", "set", chromedp.ByID),
				selectUsers(w.carol.id))
			b.click("#bulk-review")
		}},
		{"the block review", func() {
			b.open("/customers")
			b.run("tick and block", chromedp.Click("#pick-"+cust, chromedp.ByID), chromedp.SetValue("#bulk-action", "block", chromedp.ByID))
			b.click("#bulk-review")
		}},
		{"the bulk delete confirmation", func() {
			b.open("/customers")
			b.run("tick and delete", chromedp.Click("#pick-"+cust, chromedp.ByID), chromedp.SetValue("#bulk-action", "delete", chromedp.ByID))
			b.click("#bulk-review")
		}},
		{"a refused bulk edit", func() {
			b.open("/customers")
			b.click("#bulk-review")
		}},
		{"the per-user review", func() {
			b.open("/users/" + w.bob.id + "/customers")
			b.run("tick Una", chromedp.Click("#pick-"+other, chromedp.ByID))
			b.click("#assign-review")
		}},
		{"the message sent", func() {
			b.open("/customers/" + cust + "/message")
			b.run("write", chromedp.SendKeys("#message-subject", "Hi", chromedp.ByID), chromedp.SendKeys("#message-body", "Hello", chromedp.ByID))
			b.click("#message-send")
		}},
		{"an invitation", func() {
			b.open("/invite")
			b.run("fill", chromedp.SendKeys("#email", "ivy.with.a.long.address@a-very-long-client-domain.example", chromedp.ByID))
			b.click("#invite-send")
		}},
		{"a Find in a picker", func() {
			b.open("/customers/new")
			// The Find button of a browser without JavaScript (with it,
			// the search answers as one types and the button is hidden).
			b.run("search", chromedp.SendKeys("#team-q", "o", chromedp.ByID),
				chromedp.Evaluate(`document.querySelector("#team-find").hidden = false`, nil))
			b.click("#team-find")
		}},
		{"the import check with bad rows", func() {
			b.open("/import")
			b.run("choose a file", chromedp.SetUploadFiles("#file", []string{csvFile}, chromedp.ByID))
			b.click("#import-check")
		}},
	}
	for _, f := range follow {
		f.do()
		check(b, w.admin.name, f.name)
		checked++
	}
	t.Logf("%d pages checked at 390 px", checked)
}
