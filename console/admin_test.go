package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/domain"
)

// TestConsoleUsers: an admin adds a user (a duplicate e-mail is refused on
// the form), changes a role, and deactivates Bob after previewing the
// customers he would hand to Carol; the preview without an heir shows the
// policy's refusal and offers no confirmation.
func TestConsoleUsers(t *testing.T) {
	w := newWorld(t)
	w.policy(domain.Policy{RequireAssignee: true, RequireLead: true, MembersCanSelfAssign: true})
	cust := w.customer("Hal", "Handover", w.bob.id)
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)

	b.open("/users")
	b.run("fill the new user", chromedp.SendKeys("#new-name", "Dora Dunn", chromedp.ByID),
		chromedp.SendKeys("#new-email", "dora@acme.example", chromedp.ByID))
	b.click("#create-user button")
	b.waitText("#notice", "User created")
	b.waitText("#users", "Dora Dunn")

	b.run("fill a duplicate", chromedp.SendKeys("#new-name", "Bob Again", chromedp.ByID),
		chromedp.SendKeys("#new-email", "bob@acme.example", chromedp.ByID))
	b.click("#create-user button")
	b.waitText("#refusal", "email_taken")

	b.open("/users")
	b.run("make Carol admin", chromedp.SetValue("#role-"+w.carol.id, "admin", chromedp.ByID))
	b.click(`button[aria-label="Change the role of Carol Cole"]`)
	b.waitText("#notice", "Role changed")
	b.waitText(`tr[data-user="`+w.carol.id+`"]`, "admin")

	b.click(`a[aria-label="Deactivate Bob Baker…"]`)
	b.waitText("#errors", "Hal Handover")
	var disabled bool
	b.run("confirm disabled", chromedp.JavascriptAttribute("#confirm", "disabled", &disabled, chromedp.ByQuery))
	if !disabled {
		b.failf("deactivation is offered although a policy refuses it")
	}
	b.run("choose Carol", chromedp.SetValue("#transfer_to", w.carol.id, chromedp.ByID))
	b.click("#preview")
	b.waitText("#to-be-transferred", "Hal Handover")
	if cu, _ := w.cmd.GetCustomer(context.Background(), w.tenant, cust); cu.Assignees[0].UserID != w.bob.id {
		t.Fatalf("the preview wrote: %+v", cu.Assignees)
	}
	b.click("#confirm")
	b.waitText("#notice", "User deactivated")
	b.waitText(`tr[data-user="`+w.bob.id+`"]`, "deactivated")
	cu, err := w.cmd.GetCustomer(context.Background(), w.tenant, cust)
	if err != nil {
		t.Fatal(err)
	}
	if len(cu.Assignees) != 1 || cu.Assignees[0].UserID != w.carol.id || !cu.Assignees[0].Lead {
		t.Fatalf("team after the handover = %+v, want Carol as lead", cu.Assignees)
	}
}

// TestConsolePolicy: an admin sets the policy; a member is not offered
// the page (no link in the header), and its address answers 403 with a
// page that says so.
func TestConsolePolicy(t *testing.T) {
	w := newWorld(t)
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/policy")
	b.run("limit one, leads", chromedp.SetValue("#max_assignees", "1", chromedp.ByID),
		chromedp.Click(`input[name="require_lead"]`, chromedp.ByQuery))
	b.click("#policy-save")
	b.waitText("#notice", "Policy saved")
	p, err := w.cmd.GetPolicy(context.Background(), w.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxAssignees == nil || *p.MaxAssignees != 1 || !p.RequireLead {
		t.Fatalf("policy = %+v", p)
	}

	m := newBrowser(t, w, 390, 844)
	m.signIn(w.bob)
	if m.has(`header a[href^="/policy"]`) {
		m.failf("a member's header links to the policy")
	}
	m.open("/policy")
	m.waitText("h1", "Not allowed")
	if got := m.text("#refusal"); !strings.Contains(got, "forbidden") || !strings.Contains(got, "admin") {
		m.failf("refusal = %q", got)
	}
	if m.has("#policy-save") {
		m.failf("a member is shown the policy form")
	}
}

// TestConsoleTransfer: a member changes territory: the preview lists what
// moves to Carol, and confirming hands Bob's customers over while Bob stays
// active.
func TestConsoleTransfer(t *testing.T) {
	w := newWorld(t)
	w.policy(domain.Policy{RequireLead: true, MembersCanSelfAssign: true})
	cust := w.customer("Tess", "Territory", w.bob.id)
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/users")
	b.click(`a[aria-label="Transfer the customers of Bob Baker…"]`)
	b.run("choose Carol", chromedp.SetValue("#to", w.carol.id, chromedp.ByID))
	b.click("#preview")
	b.waitText("#to-be-assigned", "Carol Cole → Tess Territory")
	b.waitText("#to-be-deassigned", "Bob Baker ← Tess Territory")
	b.click("#confirm")
	b.waitText("#notice", "Customers transferred")
	b.waitText(`tr[data-user="`+w.bob.id+`"]`, "active")
	cu, err := w.cmd.GetCustomer(context.Background(), w.tenant, cust)
	if err != nil {
		t.Fatal(err)
	}
	if len(cu.Assignees) != 1 || cu.Assignees[0].UserID != w.carol.id || !cu.Assignees[0].Lead {
		t.Fatalf("team after the transfer = %+v, want Carol as lead", cu.Assignees)
	}
}
