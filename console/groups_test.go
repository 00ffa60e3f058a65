package console_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// TestConsoleGroupsPage: the groups page creates, renames and deletes
// groups and counts their customers (the count links to the filtered
// table); a taken name is refused with the rule's message; a member sees
// the groups and counts but no form, and each form post answers 403.
func TestConsoleGroupsPage(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.customer("Ada", "Apple")
	bb := w.customer("Ben", "Berry")
	w.customer("Cy", "Cherry")
	gold, err := w.cmd.CreateGroup(ctx, w.meta(), "Gold")
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.cmd.BulkCustomers(ctx, w.meta(), commands.CustomerBulkRequest{Action: domain.CustomerActionAddToGroup,
		CustomerIDs: []string{a, bb}, GroupID: gold.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.runner.WaitFor(ctx, res.Position); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.click(`header a[href="/groups"]`)
	b.waitText("#group-"+gold.ID+" .group-count", "2")

	b.run("name a new group", chromedp.SendKeys("#group-name", "Silver", chromedp.ByID))
	b.click("#create-group-button")
	b.waitText("#notice", "Group created")
	b.waitText("#groups", "Silver")
	// A taken name is refused at the form, the name kept.
	b.run("name it Gold", chromedp.SendKeys("#group-name", "Gold", chromedp.ByID))
	b.click("#create-group-button")
	b.waitText("section #refusal", "name_taken")

	// Rename Gold to Platinum: the count and the customers stay.
	b.open("/groups")
	b.run("rename Gold", chromedp.SetValue("#rename-"+gold.ID, "Platinum", chromedp.ByID))
	b.click("#rename-save-" + gold.ID)
	b.waitText("#notice", "Group renamed")
	b.waitText("#group-"+gold.ID+" .group-name", "Platinum")
	b.waitText("#group-"+gold.ID+" .group-count", "2")
	b.click("#group-" + gold.ID + " .group-count")
	b.waitText("#total-count", "2")
	b.waitText("#customers", "Ben Berry")

	// A member: the list and counts, no form; posts are refused.
	member, _ := signInHTTP(t, w, w.bob, "/customers")
	got := member.get("/groups")
	if got.status != 200 || !strings.Contains(got.body, "Platinum") || strings.Contains(got.body, `action="/groups`) {
		t.Fatalf("a member's groups page: %d %.500s", got.status, got.body)
	}
	for path, form := range map[string]url.Values{"/groups": {"name": {"Bronze"}}, "/groups/" + gold.ID + "/rename": {"name": {"X"}},
		"/groups/" + gold.ID + "/delete": nil} {
		if got := member.do("POST", path, form); got.status != 403 {
			t.Fatalf("a member's POST %s answered %d", path, got.status)
		}
	}

	// Delete Platinum: gone from the page; its customers are not.
	b.open("/groups")
	b.run("open delete", chromedp.Click("#delete-"+gold.ID, chromedp.ByID))
	b.click("#delete-confirm-" + gold.ID)
	b.waitText("#notice", "Group deleted")
	if b.has("#group-" + gold.ID) {
		b.failf("the deleted group is still listed")
	}
	if _, err := w.cmd.GetCustomer(ctx, w.tenant, a); err != nil {
		t.Fatalf("deleting the group touched its customer: %v", err)
	}
}
