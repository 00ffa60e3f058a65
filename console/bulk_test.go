package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/internal/smtptest"
)

// selectUsers chooses the given users in the bulk form's user list (a
// multiple select), as a user's ctrl-clicks would.
func selectUsers(ids ...string) chromedp.Action {
	js := fmt.Sprintf(`(() => { const want = %q.split(","); for (const o of document.querySelector("#bulk-user").options) { o.selected = want.includes(o.value); } return true; })()`,
		strings.Join(ids, ","))
	return chromedp.Evaluate(js, nil)
}

// TestConsoleBulkSeveralUsersBlockAndGroups: Endear's "one or more users":
// an admin adds Bob and Carol to two customers in one bulk edit (the review
// lists the four pairs), then blocks them, unblocks one and puts both in a
// group from the same bulk menu, each through its review.
func TestConsoleBulkSeveralUsersBlockAndGroups(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.customer("Ada", "Apple")
	bb := w.customer("Ben", "Berry")
	w.customer("Cy", "Cherry")
	g, err := w.cmd.CreateGroup(ctx, w.meta(), "Gold")
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers")
	tick := func() {
		b.run("tick Ada and Ben", chromedp.Click("#pick-"+a, chromedp.ByID), chromedp.Click("#pick-"+bb, chromedp.ByID))
	}
	tick()
	b.run("add Bob and Carol", chromedp.SetValue("#bulk-action", "add", chromedp.ByID), selectUsers(w.bob.id, w.carol.id))
	b.click("#bulk-review")
	b.waitText("#review-users", "Bob Baker, Carol Cole")
	b.waitText("#to-be-assigned .count", "4")
	b.click("#save")
	b.waitText("#notice", "Bulk edit saved")
	for _, id := range []string{a, bb} {
		cu, err := w.cmd.GetCustomer(ctx, w.tenant, id)
		if err != nil || len(cu.Assignees) != 2 {
			t.Fatalf("after the bulk add %s has %+v (%v)", id, cu.Assignees, err)
		}
	}

	// Block both.
	tick()
	b.run("block", chromedp.SetValue("#bulk-action", "block", chromedp.ByID))
	b.click("#bulk-review")
	b.waitText("#to-be-changed .count", "2")
	b.waitText("#to-be-changed", "Ada Apple")
	if cu, _ := w.cmd.GetCustomer(ctx, w.tenant, a); cu.Status == "blocked" {
		t.Fatal("the review blocked")
	}
	b.click("#save")
	b.waitText("#notice", "Bulk edit saved")
	b.open("/customers?status=blocked")
	b.waitText("#total-count", "2")

	// Unblock Ada only.
	b.run("tick Ada, unblock", chromedp.Click("#pick-"+a, chromedp.ByID), chromedp.SetValue("#bulk-action", "unblock", chromedp.ByID))
	b.click("#bulk-review")
	b.waitText("#to-be-changed .count", "1")
	b.click("#save")
	b.waitText("#total-count", "1")

	// A group action without a group is refused at the form; with one,
	// both go in.
	b.open("/customers")
	tick()
	b.run("add to group, no group", chromedp.SetValue("#bulk-action", "add_to_group", chromedp.ByID))
	b.click("#bulk-review")
	b.waitText("#bulk #refusal", "choose a group")
	b.run("add to Gold", chromedp.SetValue("#bulk-action", "add_to_group", chromedp.ByID),
		chromedp.SetValue("#bulk-group", g.ID, chromedp.ByID))
	b.click("#bulk-review")
	b.waitText("h1", "Review bulk action")
	b.waitText("main p", "Gold")
	b.click("#save")
	b.open("/customers?group=" + g.ID)
	b.waitText("#total-count", "2")
	// And out again.
	tick()
	b.run("remove from Gold", chromedp.SetValue("#bulk-action", "remove_from_group", chromedp.ByID),
		chromedp.SetValue("#bulk-group", g.ID, chromedp.ByID))
	b.click("#bulk-review")
	b.waitText("#to-be-changed .count", "2")
	b.click("#save")
	b.waitText("#total-count", "0")

	// A member is offered none of these actions, and is refused them.
	m := newBrowser(t, w, 1280, 900)
	m.signIn(w.bob)
	m.open("/customers")
	for _, sel := range []string{`#bulk-action option[value="block"]`, `#bulk-action option[value="add_to_group"]`, "#bulk-group", ".row-action"} {
		if m.has(sel) {
			m.failf("a member is offered %s", sel)
		}
	}
}

// TestConsoleRowMessage: each row of the table has "Send message" (for an
// admin), a page that e-mails that one customer.
func TestConsoleRowMessage(t *testing.T) {
	srv := smtptest.Start(t)
	w := newWorldWithMail(t, srv.URL())
	ann := w.customer("Ann", "Row")
	w.customer("Bea", "Row")
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers?q=row")
	b.click("#message-" + ann)
	b.waitText("h1", "Message Ann Row")
	// Refused without a subject: shown on the same page, the text kept.
	b.run("body only", chromedp.SetValue("#message-body", "Hello Ann", chromedp.ByID))
	b.click("#message-send")
	b.waitText("#message-one #refusal", "subject")
	b.run("subject", chromedp.SetValue("#message-subject", "Hi", chromedp.ByID))
	b.click("#message-send")
	b.waitText("#message-recipients", "1")
	b.click(`a[href="/customers?q=row"]`)
	b.waitText("#customers", "Bea Row")

	member, _ := signInHTTP(t, w, w.bob, "/customers")
	if got := member.get("/customers/" + ann + "/message"); got.status != 403 {
		t.Fatalf("a member's GET of a row's message page answered %d", got.status)
	}
}
