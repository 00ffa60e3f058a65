package console_test

import (
	nethttp "net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/assignment-ledger/ledger/domain"
)

// TestConsoleMembersSeeAssigned: under members_see "assigned" a member's
// console shows only the customers the member serves: the table, its
// search and export leave the others out, and another customer's page is
// the 404 page an unknown ID gets. An admin sees everyone; back under
// "all" the member sees the other customer again.
func TestConsoleMembersSeeAssigned(t *testing.T) {
	w := newWorld(t)
	w.policy(domain.Policy{MembersCanSelfAssign: true, MembersSee: domain.VisibilityAssigned})
	visible := w.customer("Vera", "Visible", w.bob.id)
	hidden := w.customer("Hugo", "Hidden", w.carol.id)

	m := newBrowser(t, w, 1280, 900)
	m.signIn(w.bob)
	m.open("/customers")
	m.waitText("#customers", "Vera Visible")
	if strings.Contains(m.text("#customers"), "Hugo") {
		m.failf("a member under assigned sees another member's customer in the table")
	}
	m.open("/customers?q=hugo")
	m.waitText("#customers", "No customers match")
	if strings.Contains(m.text("#customers"), "Hugo") {
		m.failf("a member's search finds another member's customer")
	}
	m.open("/customers/" + hidden)
	m.waitText("h1", "Not found")
	if strings.Contains(m.text("body"), "Hugo") {
		m.failf("the 404 page names the hidden customer")
	}
	m.open("/customers/" + visible)
	m.waitText("h1", "Vera Visible")

	// The same page for the hidden customer and for an unknown ID: same
	// status, same page (the ID aside); the export leaves it out.
	member, _ := signInHTTP(t, w, w.bob, "/customers")
	unknown := uuid.NewString()
	for _, page := range []string{"", "/follow-ups"} {
		hid, unk := member.get("/customers/"+hidden+page), member.get("/customers/"+unknown+page)
		if hid.status != nethttp.StatusNotFound || hid.status != unk.status ||
			strings.ReplaceAll(hid.body, hidden, unknown) != unk.body || strings.Contains(hid.body, "Hugo") {
			t.Errorf("hidden customer's page %q %d, unknown ID's %d; same page: %v; names Hugo: %v", page, hid.status, unk.status,
				strings.ReplaceAll(hid.body, hidden, unknown) == unk.body, strings.Contains(hid.body, "Hugo"))
		}
	}
	// Scheduling a follow-up on the hidden customer is refused as for
	// an unknown one, and the page it answers with names nobody.
	form := url.Values{"due_at": {"2031-01-02T09:00"}, "note": {"call"}, "to": {"team"}}
	hid, unk := member.do(nethttp.MethodPost, "/customers/"+hidden+"/follow-ups", form),
		member.do(nethttp.MethodPost, "/customers/"+unknown+"/follow-ups", form)
	if hid.status != nethttp.StatusNotFound || hid.status != unk.status || strings.Contains(hid.body, "Hugo") {
		t.Errorf("follow-up on the hidden customer: %d (unknown ID %d), names Hugo: %v", hid.status, unk.status, strings.Contains(hid.body, "Hugo"))
	}
	for _, format := range []string{"csv", "html", "vcf"} {
		if got := member.get("/customers/export?format=" + format); got.status != 200 || strings.Contains(got.body, "Hugo") ||
			!strings.Contains(got.body, "Vera") {
			t.Errorf("member's %s export: %d, has Hugo %v, has Vera %v", format, got.status, strings.Contains(got.body, "Hugo"), strings.Contains(got.body, "Vera"))
		}
	}

	a := newBrowser(t, w, 1280, 900)
	a.signIn(w.admin)
	a.open("/customers")
	a.waitText("#customers", "Hugo Hidden")
	a.open("/customers/" + hidden)
	a.waitText("h1", "Hugo Hidden")

	// Back to all, from the console's policy page.
	a.open("/policy")
	if !a.has("#members_see_assigned:checked") {
		a.failf("the policy page does not show members_see assigned")
	}
	a.run("untick members_see_assigned", chromedp.Click("#members_see_assigned", chromedp.ByQuery))
	a.click("#policy-save")
	a.waitText("h1", "Policy")
	if a.has("#members_see_assigned:checked") {
		a.failf("after saving, the policy page still shows members_see assigned")
	}
	m.open("/customers/" + hidden)
	m.waitText("h1", "Hugo Hidden")
	m.open("/customers")
	m.waitText("#customers", "Hugo Hidden")
}
