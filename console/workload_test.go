package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/domain"
)

// TestConsoleWorkload: the Workload page draws a bar per user, as long as
// their customers (the led part darker), and the unassigned count, at
// desktop width and at 390 px without scrolling sideways; a member is
// refused, and has no link to it.
func TestConsoleWorkload(t *testing.T) {
	w := newWorld(t)
	w.policy(domain.Policy{RequireLead: true, MembersCanSelfAssign: true})
	w.customer("Wanda", "One", w.bob.id)
	w.customer("Will", "Two", w.bob.id, w.carol.id)
	w.customer("Walt", "Three")
	for _, width := range []int{1280, 390} {
		b := newBrowser(t, w, width, 900)
		b.signIn(w.admin)
		b.click("#nav-workload")
		b.waitText("h1", "Workload")
		var bars []map[string]string
		b.run("read the bars", chromedp.Evaluate(`[...document.querySelectorAll('#workload-chart g.bar')].map(g => ({
			name: g.querySelector('text').textContent, customers: g.dataset.customers, leads: g.dataset.leads,
			width: g.querySelector('rect').getAttribute('width')}))`, &bars))
		byName := map[string]map[string]string{}
		for _, bar := range bars {
			byName[bar["name"]] = bar
		}
		if bob := byName["Bob Baker"]; bob["customers"] != "2" || bob["leads"] != "2" || bob["width"] != "400" {
			b.failf("Bob's bar %v", bars)
		}
		if carol := byName["Carol Cole"]; carol["customers"] != "1" || carol["leads"] != "0" || carol["width"] != "200" {
			b.failf("Carol's bar %v", bars)
		}
		if got := b.text("#unassigned"); !strings.Contains(got, "1") {
			b.failf("unassigned: %q", got)
		}
		var sideways bool
		b.run("measure", chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth`, &sideways))
		if sideways {
			b.failf("the page scrolls sideways at %d px", width)
		}
	}
	m := newBrowser(t, w, 390, 844)
	m.signIn(w.bob)
	if m.has("#nav-workload") {
		m.failf("a member's header links to the workload")
	}
	m.open("/workload")
	m.waitText("h1", "Not allowed")
}
