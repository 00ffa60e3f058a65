package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// TestConsoleAssignmentRules: an admin creates a rule on the Assignment
// rules page, moves a second one above it, tries the rules on an
// unassigned customer (what they would do, nothing written) and assigns it
// from there; at 390 px the page does not scroll sideways; a member is
// refused; an auditor reads the list only.
func TestConsoleAssignmentRules(t *testing.T) {
	w := newWorld(t)
	cust := w.customer("Rita", "Rules")
	vip, err := w.cmd.CreateGroup(context.Background(), w.meta(), "VIP")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.runner.WaitFor(context.Background(), vip.Position); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.click("#nav-rules")
	b.waitText("h1", "Assignment rules")
	b.run("fill the rule", chromedp.SendKeys("#rule-name", "Clients round robin", chromedp.ByID),
		chromedp.SendKeys("#rule-domain", "client.example", chromedp.ByID),
		chromedp.Click(`input[name="user_ids"][value="`+w.bob.id+`"]`, chromedp.ByQuery),
		chromedp.Click(`input[name="user_ids"][value="`+w.carol.id+`"]`, chromedp.ByQuery))
	b.click("#create-rule-save")
	b.waitText("#rules", "Clients round robin")
	if got := b.text("#rules"); !strings.Contains(got, "e-mail @client.example") || !strings.Contains(got, "Bob Baker, Carol Cole") {
		b.failf("rules: %q", got)
	}
	// A rule matching a group, picked by name and shown by name.
	b.run("fill the group rule", chromedp.SendKeys("#rule-name", "VIPs to Bob", chromedp.ByID),
		chromedp.SetValue("#rule-group", vip.ID, chromedp.ByID),
		chromedp.Click(`input[name="user_ids"][value="`+w.bob.id+`"]`, chromedp.ByQuery),
		chromedp.SetValue("#rule-order", "90", chromedp.ByID))
	b.click("#create-rule-save")
	b.waitText("#rules", "VIPs to Bob")
	if got := b.text("#rules"); !strings.Contains(got, "group “VIP”") {
		b.failf("the group rule's match: %q", got)
	}
	rules, err := w.cmd.ListRules(context.Background(), w.tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Name == "VIPs to Bob" && r.Match.Group != vip.ID {
			t.Fatalf("the group rule matches group %q, want %s", r.Match.Group, vip.ID)
		}
	}
	if _, err := w.cmd.DeleteRule(context.Background(), w.meta(), ruleID(rules, "VIPs to Bob")); err != nil {
		t.Fatal(err)
	}
	// A second rule, for Carol alone, moved above the first.
	if _, err := w.cmd.CreateRule(context.Background(), w.meta(), domain.RuleBody{Name: "Carol first", Order: 50,
		Assign: domain.RuleAssign{UserIDs: []string{w.carol.id}, Strategy: domain.StrategyRoundRobin}}); err != nil {
		t.Fatal(err)
	}
	b.open("/rules")
	b.click(`tr:nth-child(2) .rule-up`)
	var names []string
	b.run("read the order", chromedp.Evaluate(`[...document.querySelectorAll('#rules .rule-name')].map(td => td.textContent)`, &names))
	if strings.Join(names, "|") != "Carol first|Clients round robin" {
		b.failf("order after moving up: %v", names)
	}
	// Try: Carol's rule comes first now; nothing is written.
	before := 0
	if err := w.pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	b.run("pick the customer", chromedp.SetValue("#try-customer", cust, chromedp.ByID))
	b.click("#try-now")
	b.waitText("#try-outcome", "would assign Carol Cole")
	after := 0
	if err := w.pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		b.failf("trying wrote %d events", after-before)
	}
	b.click("#assign-now")
	b.waitText("main", "Carol Cole")
	cu, err := w.cmd.GetCustomer(context.Background(), w.tenant, cust)
	if err != nil || len(cu.Assignees) != 1 || cu.Assignees[0].UserID != w.carol.id {
		t.Fatalf("after assign now: %+v %v", cu.Assignees, err)
	}

	m := newBrowser(t, w, 390, 844)
	m.signIn(w.admin)
	m.open("/rules")
	var sideways bool
	m.run("measure", chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth`, &sideways))
	if sideways {
		m.failf("the rules page scrolls sideways at 390 px")
	}
	mb := newBrowser(t, w, 390, 844)
	mb.signIn(w.bob)
	if mb.has("#nav-rules") {
		mb.failf("a member's header links to the rules")
	}
	mb.open("/rules")
	mb.waitText("h1", "Not allowed")
	// An auditor reads the rules and is offered no action.
	ab := newBrowser(t, w, 1280, 900)
	ab.signIn(w.auditorOf("Aldo Auditor", "aldo@acme.example"))
	ab.click("#nav-rules")
	ab.waitText("#rules", "Carol first")
	if ab.has("#create-rule") || ab.has("#try") || ab.has(".rule-up") {
		ab.failf("an auditor is offered rule actions")
	}
}

func ruleID(rules []commands.RuleView, name string) string {
	for _, r := range rules {
		if r.Name == name {
			return r.ID
		}
	}
	return ""
}
