package console_test

import (
	"fmt"
	nethttp "net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/domain"
)

// adminLinks are the header's links to the admin pages.
var adminLinks = []string{"/users", "/audit", "/import", "/invite", "/policy"}

// TestConsoleMembersSeeOnlyWhatTheyMay: a member's header has no admin
// links, the table offers only adding or removing themselves, the profile
// no admin control (Block, Delete, Edit, groups, Make lead, Replace, the
// team toggles, Remove on others); each admin page's address answers 403
// with a page that says so. Without self-assignment a member is offered no
// change at all. An admin sees everything.
func TestConsoleMembersSeeOnlyWhatTheyMay(t *testing.T) {
	w := newWorld(t)
	w.policy(domain.Policy{MembersCanSelfAssign: true})
	cust := w.customer("Meg", "Member", w.bob.id, w.carol.id)
	if _, err := w.cmd.CreateGroup(t.Context(), w.meta(), "Gold"); err != nil {
		t.Fatal(err)
	}
	m := newBrowser(t, w, 1280, 900)
	m.signIn(w.bob)
	for _, l := range adminLinks {
		if m.has(fmt.Sprintf(`header a[href^="%s"]`, l)) {
			m.failf("a member's header links to %s", l)
		}
	}
	m.open("/customers")
	m.waitText("#customers", "Meg Member")
	for _, sel := range []string{"#new-customer-link", `#bulk-action option[value="delete"]`, `#bulk-action option[value="set"]`,
		"#message", fmt.Sprintf(`#bulk-user option[value="%s"]`, w.carol.id)} {
		if m.has(sel) {
			m.failf("a member's customer table offers %s", sel)
		}
	}
	if !m.has(fmt.Sprintf(`#bulk-user option[value="%s"]`, w.bob.id)) {
		m.failf("a member cannot bulk add or remove themselves")
	}
	m.open("/customers/" + cust)
	m.waitText("#team", "Carol Cole")
	for _, sel := range []string{"#block-button", "#delete-link", "#edit-profile", "#add-group", "#team-form",
		`#team button[aria-label="Make Carol Cole team lead"]`, `#team button[aria-label="Replace Bob Baker"]`,
		`#team button[aria-label="Remove Carol Cole"]`} {
		if m.has(sel) {
			m.failf("a member's profile offers %s", sel)
		}
	}
	if !m.has("#mine-button") || !m.has(`#team button[aria-label="Remove Bob Baker"]`) {
		m.failf("a member is not offered to take themselves off the team")
	}

	// Each admin page's address: 403, and a page saying why.
	paths := append([]string{"/customers/" + cust + "/delete", "/users/" + w.carol.id + "/transfer",
		"/users/" + w.carol.id + "/deactivate", "/customers/new", "/import/template.csv"}, adminLinks...)
	member, _ := signInHTTP(t, w, w.bob, "/customers")
	for _, p := range paths {
		got := member.get(p)
		// The pages an auditor reads too say so ("only an admin or an
		// auditor may read this").
		if got.status != nethttp.StatusForbidden || !strings.Contains(got.body, "only an admin") ||
			!strings.Contains(got.body, "Not allowed") {
			t.Errorf("GET %s as a member answered %d: %.300s", p, got.status, got.body)
		}
	}
	m.open("/users")
	m.waitText("h1", "Not allowed")
	m.waitText("#refusal", "only an admin or an auditor may read this")
	if m.has("#users") {
		m.failf("the 403 page shows the users")
	}

	// Without self-assignment a member may change nothing here.
	w.policy(domain.Policy{})
	m.open("/customers/" + cust)
	m.waitText("#team", "Carol Cole")
	if m.has("#mine-button") || m.has(`#team button[aria-label="Remove Bob Baker"]`) {
		m.failf("a member who may not self-assign is offered My Clients or Remove")
	}
	m.open("/customers")
	if m.has("#bulk") || m.has("#pick-"+cust) {
		m.failf("a member who may not self-assign is offered bulk edits")
	}

	a := newBrowser(t, w, 1280, 900)
	a.signIn(w.admin)
	for _, l := range adminLinks {
		if !a.has(fmt.Sprintf(`header a[href^="%s"]`, l)) {
			a.failf("an admin's header has no link to %s", l)
		}
	}
	a.open("/customers/" + cust)
	for _, sel := range []string{"#block-button", "#delete-link", "#edit-profile", "#add-group", "#team-form", "#mine-button"} {
		if !a.has(sel) {
			a.failf("an admin's profile does not offer %s", sel)
		}
	}
}

var uuidInText = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// TestConsoleRefusalsNamePeople: a refusal names the people and customers
// it is about, as the page does, never by UUID; after a refused Save of
// the team toggles the user's ticks and chosen lead are kept.
func TestConsoleRefusalsNamePeople(t *testing.T) {
	w := newWorld(t)
	one := 1
	w.policy(domain.Policy{RequireLead: true, MaxAssignees: &one, MembersCanSelfAssign: true})
	cust := w.customer("Lou", "Lone", w.bob.id)
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers/" + cust)
	b.click(`#team button[aria-label="Remove Bob Baker"]`)
	b.waitText("#members #refusal", "lead_cannot_be_removed")
	got := b.text("#members #refusal")
	if !strings.Contains(got, "Bob Baker") || !strings.Contains(got, "Lou Lone") || uuidInText.MatchString(got) {
		b.failf("the refusal names %q, want Bob Baker and Lou Lone, no IDs", got)
	}

	// Two users under max_assignees 1: refused, and the toggles stay as
	// ticked (Bob and Carol), the lead as chosen (Carol).
	b.open("/customers/" + cust)
	b.run("tick Carol too, make her lead",
		chromedp.Click(fmt.Sprintf(`#team-form input[value="%s"]`, w.carol.id), chromedp.ByQuery),
		chromedp.SetValue("#team-lead", w.carol.id, chromedp.ByID))
	b.click("#team-save")
	b.waitText("#team-form #refusal", "max_assignees_reached")
	if got := b.text("#team-form #refusal"); !strings.Contains(got, "Lou Lone") || uuidInText.MatchString(got) {
		b.failf("the refusal names %q, want Lou Lone, no IDs", got)
	}
	var bob, carol bool
	var lead string
	b.run("read the toggles",
		chromedp.JavascriptAttribute(fmt.Sprintf(`#team-form input[value="%s"]`, w.bob.id), "checked", &bob, chromedp.ByQuery),
		chromedp.JavascriptAttribute(fmt.Sprintf(`#team-form input[value="%s"]`, w.carol.id), "checked", &carol, chromedp.ByQuery),
		chromedp.Value("#team-lead", &lead, chromedp.ByID))
	if !bob || !carol || lead != w.carol.id {
		b.failf("after the refusal Bob ticked=%v, Carol ticked=%v, lead=%q; want both ticked and Carol lead", bob, carol, lead)
	}

	// A bulk review's errors are worded with names too.
	b.open("/customers")
	b.run("tick and choose add Carol",
		chromedp.Click("#pick-"+cust, chromedp.ByID),
		chromedp.SetValue("#bulk-action", "add", chromedp.ByID),
		chromedp.SetValue("#bulk-user", w.carol.id, chromedp.ByID))
	b.click("#bulk-review")
	b.waitText("#errors", "max_assignees_reached")
	if got := b.text("#errors"); uuidInText.MatchString(got) {
		b.failf("the review's errors show IDs: %q", got)
	}
}
