package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestConsoleAuditCustomerByName: the audit's customer filter picks the
// customer by name or e-mail, not by a pasted UUID: one match filters at
// once; several are offered to choose from (no row until then); none says
// so. An edited search drops the earlier choice, and the export carries
// the chosen customer.
func TestConsoleAuditCustomerByName(t *testing.T) {
	w := newWorld(t)
	w.customer("Ada", "Apple", w.bob.id)
	avocado := w.customer("Ada", "Avocado", w.carol.id)
	ben := w.customer("Ben", "Berry", w.bob.id)
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)

	b.open("/audit")
	b.run("search berry", chromedp.SendKeys("#customer_q", "berry", chromedp.ByID))
	b.click("#audit-filter")
	b.waitText("#audit", "Ben Berry")
	onlyAbout := func(name string) {
		var cells []string
		b.run("read the customer column", chromedp.Evaluate(
			`[...document.querySelectorAll("#audit tbody tr td:nth-child(5)")].map(td => td.textContent.trim())`, &cells))
		if len(cells) == 0 {
			b.failf("no rows")
		}
		for _, c := range cells {
			if c != name {
				b.failf("a row about %q in the log filtered by %s", c, name)
			}
		}
	}
	onlyAbout("Ben Berry")
	var csv string
	b.run("fetch the export", chromedp.Evaluate(`fetch(document.querySelector('#audit-csv').href).then(r => r.text())`, &csv,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if !strings.Contains(csv, ben) || strings.Contains(csv, avocado) {
		b.failf("the export is not Ben's log: %q", csv)
	}

	// Two Adas: a choice, and no row until it is made.
	b.run("search ada", chromedp.Evaluate(`document.querySelector("#customer_q").value = "ada"`, nil))
	b.click("#audit-filter")
	b.waitText("#customer-note", "Several customers match")
	b.waitText("#audit", "No events match")
	b.run("choose Ada Avocado", chromedp.SetValue("#customer_id", avocado, chromedp.ByID))
	b.click("#audit-filter")
	b.waitText("#audit", "Ada Avocado")
	onlyAbout("Ada Avocado")

	// An edited search drops the choice it no longer matches.
	b.run("search berry again", chromedp.Evaluate(`document.querySelector("#customer_q").value = "berry"`, nil))
	b.click("#audit-filter")
	b.waitText("#audit", "Ben Berry")
	onlyAbout("Ben Berry")

	b.run("search nobody", chromedp.Evaluate(`document.querySelector("#customer_q").value = "zzz"`, nil))
	b.click("#audit-filter")
	b.waitText("#customer-note", "No customer matches")
	b.waitText("#audit", "No events match")

	// A link by ID (an erased customer has no name to search) still works,
	// and shows the name when there is one.
	b.open("/audit?customer_id=" + ben)
	onlyAbout("Ben Berry")
	var q string
	b.run("read the search", chromedp.Value("#customer_q", &q, chromedp.ByID))
	if q != "Ben Berry" {
		b.failf("the filter by ID shows %q in the search", q)
	}
}
