package console_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/commands"
)

// noSidewaysScroll fails unless the page fits the viewport's width.
func (b *browser) noSidewaysScroll(page string) {
	b.t.Helper()
	var wide bool
	b.run("measure "+page, chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth`, &wide))
	if wide {
		b.failf("%s scrolls sideways", page)
	}
}

// TestConsoleFollowUps: a team member schedules a follow-up from the
// customer's follow-ups page (linked from the profile); a refused one keeps
// the form; "My follow-ups" shows it overdue first and the header counts
// it; Done clears both. At 390 px neither page scrolls sideways.
func TestConsoleFollowUps(t *testing.T) {
	w := newWorld(t)
	cust := w.customer("Fran", "Follow", w.bob.id)
	later := w.customer("Gus", "Later", w.bob.id)
	ctx := context.Background()
	res, err := w.cmd.ScheduleFollowUp(ctx, commands.Meta{TenantID: w.tenant, Actor: w.bob.actor}, later,
		commands.FollowUpRequest{DueAt: time.Now().Add(72 * time.Hour), Note: "next week"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := w.runner.WaitFor(wctx, res.Position); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, w, 390, 844)
	b.signIn(w.bob)
	b.waitText("#follow-ups-count", "0")
	b.open("/customers/" + cust)
	b.click("#follow-ups-link")
	b.waitText("h1", "Follow-ups of Fran Follow")
	b.noSidewaysScroll("the customer's follow-ups")

	// No due time: refused at the form, the note kept.
	b.run("write a note only", chromedp.SetValue("#note", "Call about\nthe renewal", chromedp.ByID),
		chromedp.Evaluate(`document.querySelector('#due_at').removeAttribute('required')`, nil))
	b.click("#follow-up-save")
	b.waitText("#follow-up-refusal #refusal", "date and time")
	var note string
	b.run("read the kept note", chromedp.Value("#note", &note, chromedp.ByID))
	if note != "Call about\nthe renewal" {
		b.failf("note after the refusal: %q", note)
	}

	// Due an hour ago: overdue at once.
	due := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")
	b.run("set the due time", chromedp.SetValue("#due_at", due, chromedp.ByID))
	b.click("#follow-up-save")
	b.waitText("#notice", "Follow-up saved")
	b.waitText("#customer-follow-ups", "Call about")
	b.waitText("#follow-ups-count", "1")

	// The customer table's "Follow-ups due" column counts it on its row,
	// and nothing on the row whose follow-up is next week's.
	b.open("/customers?cols=1&col=followups")
	b.waitText("#row-"+cust+" .col-followups", "1")
	if got := strings.TrimSpace(b.text("#row-" + later + " .col-followups")); got != "" {
		b.failf("follow-ups due of a customer whose follow-up is not due: %q", got)
	}

	b.click("#nav-follow-ups")
	b.waitText("h1", "My follow-ups")
	b.noSidewaysScroll("My follow-ups")
	if got := b.text("#overdue"); !strings.Contains(got, "Fran Follow") || strings.Contains(got, "Gus Later") {
		b.failf("overdue section: %q", got)
	}
	if got := b.text("#upcoming"); !strings.Contains(got, "Gus Later") {
		b.failf("upcoming section: %q", got)
	}
	var order string
	b.run("read the sections' order", chromedp.Evaluate(`[...document.querySelectorAll('main section')].map(s => s.id).join(',')`, &order))
	if order != "overdue,today,upcoming" {
		b.failf("sections in order %q, want overdue first", order)
	}
	b.click("#overdue button[value=complete]")
	b.waitText("#notice", "Follow-up saved")
	b.waitText("#overdue", "None.")
	b.waitText("#follow-ups-count", "0")
}

// TestConsoleViews: "save this filter as a view" from the customer list,
// the views picker opens the list with the view's filter, a member cannot
// share one (the checkbox is an admin's), and the owner deletes it.
func TestConsoleViews(t *testing.T) {
	w := newWorld(t)
	blocked := w.customer("Hana", "Blocked")
	if _, err := w.cmd.BlockCustomer(context.Background(), w.meta(), blocked); err != nil {
		t.Fatal(err)
	}
	w.customer("Ivo", "Active")

	b := newBrowser(t, w, 390, 844)
	b.signIn(w.bob)
	b.open("/customers?status=blocked")
	b.waitText("#customers", "Hana Blocked")
	if b.has("#view-shared") {
		b.failf("a member is offered to share a view")
	}
	b.run("name the view", chromedp.SetValue("#view-name", "Blocked ones", chromedp.ByID))
	b.click("#save-view-button")
	b.waitText("#notice", "View saved")
	b.waitText("#views", "Blocked ones")
	b.noSidewaysScroll("Views")
	b.click("#views a[id^=open-]")
	b.waitText("#customers", "Hana Blocked")
	if got := b.text("#customers"); strings.Contains(got, "Ivo Active") {
		b.failf("the view's list shows a customer outside its filter: %q", got)
	}
	b.noSidewaysScroll("the customer list")
	// The picker on the customer table opens it too.
	b.open("/customers")
	b.waitText("#customers", "Ivo Active")
	b.waitText("#view-picker", "Blocked ones")
	b.click("#open-view")
	b.waitText("#customers", "Hana Blocked")
	if got := b.text("#customers"); strings.Contains(got, "Ivo Active") {
		b.failf("the picked view shows a customer outside its filter: %q", got)
	}

	// Carol does not see Bob's private view; an admin shares one.
	c := newBrowser(t, w, 1280, 900)
	c.signIn(w.carol)
	c.open("/views")
	c.waitText("#views", "No views yet")
	a := newBrowser(t, w, 1280, 900)
	a.signIn(w.admin)
	a.open("/customers")
	a.run("name a shared view", chromedp.SetValue("#view-name", "Everyone", chromedp.ByID), chromedp.Click("#view-shared", chromedp.ByID))
	a.click("#save-view-button")
	a.waitText("#views", "Everyone")
	c.open("/views")
	c.waitText("#views", "Everyone")
	if c.has("#views button[id^=delete-]") {
		c.failf("a member may delete a shared view")
	}

	b.open("/views")
	b.waitText("#views", "Blocked ones")
	b.click("#views li:first-child button[id^=delete-]")
	b.waitText("#notice", "View deleted")
	if got := b.text("#views"); strings.Contains(got, "Blocked ones") {
		b.failf("deleted view still listed: %q", got)
	}
}
