package console_test

import (
	"context"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestConsoleInlineAssign: Contactually's inline assign. The Assigned User
// cell of an unassigned customer is "no one" with a picker; Save assigns
// in place. With JavaScript the list is not reloaded; without it the
// small form posts and the browser comes back to the same list. A refused
// assignment (the user deactivated meanwhile) shows the rule's message.
func TestConsoleInlineAssign(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ada := w.customer("Ada", "Alone")
	ben := w.customer("Ben", "Alone")
	cy := w.customer("Cy", "Alone")
	w.customer("Dee", "Served", w.bob.id)

	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers?q=alone")
	if b.has("#row-" + ada + " td.assignees .chip") {
		b.failf("an unassigned customer shows an assignee")
	}
	// With JavaScript: in place, no new page.
	b.run("pick Bob for Ada, without reloading",
		chromedp.Evaluate(`window.__samePage = true`, nil),
		chromedp.Click("#assign-"+ada+" summary", chromedp.ByQuery),
		chromedp.SetValue("#assign-user-"+ada, w.bob.id, chromedp.ByID),
		chromedp.Click("#assign-save-"+ada, chromedp.ByID))
	b.waitText("#row-"+ada+" td.assignees", "Bob Baker")
	b.waitText("#notice", "Assigned")
	var same bool
	b.run("still the same page", chromedp.Evaluate(`window.__samePage === true`, &same))
	if !same {
		b.failf("the inline assign reloaded the list")
	}
	if cu, _ := w.cmd.GetCustomer(ctx, w.tenant, ada); len(cu.Assignees) != 1 || cu.Assignees[0].UserID != w.bob.id {
		t.Fatalf("Ada's team after the inline assign: %+v", cu.Assignees)
	}
	// A served customer offers no picker.
	if b.has("#assign-" + ada) {
		b.failf("the assigned customer still offers the picker")
	}

	// Without JavaScript: the small form posts, the same list comes back.
	nojs := newBrowser(t, w, 1280, 900)
	nojs.run("disable JavaScript", emulation.SetScriptExecutionDisabled(true))
	nojs.signIn(w.admin)
	nojs.open("/customers?q=alone")
	nojs.run("open Ben's picker and choose Carol",
		chromedp.Click("#assign-"+ben+" summary", chromedp.ByQuery),
		chromedp.SetValue("#assign-user-"+ben, w.carol.id, chromedp.ByID))
	nojs.click("#assign-save-" + ben)
	nojs.waitText("#notice", "Assigned")
	nojs.waitText("#row-"+ben+" td.assignees", "Carol Cole")
	var search string
	nojs.run("read the search", chromedp.Value("#q", &search, chromedp.ByID))
	if search != "alone" {
		nojs.failf("the list after the inline assign lost its filter: q=%q", search)
	}

	// Carol is deactivated after the list was shown: refused, with the
	// rule's message, and Cy stays unassigned.
	b.open("/customers?q=alone")
	if _, err := w.cmd.DeactivateUser(ctx, w.meta(), w.carol.id, ""); err != nil {
		t.Fatal(err)
	}
	b.run("pick Carol for Cy",
		chromedp.Click("#assign-"+cy+" summary", chromedp.ByQuery),
		chromedp.SetValue("#assign-user-"+cy, w.carol.id, chromedp.ByID),
		chromedp.Click("#assign-save-"+cy, chromedp.ByID))
	b.waitText("#assign-refusal #refusal", "Carol Cole")
	if cu, _ := w.cmd.GetCustomer(ctx, w.tenant, cy); len(cu.Assignees) != 0 {
		t.Fatalf("a refused inline assign changed the team: %+v", cu.Assignees)
	}
}
