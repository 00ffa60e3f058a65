package console_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// TestConsoleAssignCustomersPage: Spryker's per-user page. From Users,
// "Assign customers" opens Bob's page: the customer table with Bob's
// customers ticked; the admin ticks one more and unticks one, the review
// shows the one to be assigned and the one to be removed, and one Save
// does both. A change the rules refuse (the last assignee under require_assignee)
// is in the review's errors and Save is not offered.
func TestConsoleAssignCustomersPage(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.policy(domain.Policy{MembersCanSelfAssign: true})
	keep := w.customer("Kim", "Kept", w.bob.id)
	drop := w.customer("Dot", "Dropped", w.bob.id, w.carol.id)
	take := w.customer("Tia", "Taken")
	other := w.customer("Oli", "Other", w.carol.id)

	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/users")
	b.click("#assign-customers-" + w.bob.id)
	b.waitText("h1", "Customers of Bob Baker")
	ticked := func(id string) bool {
		var on bool
		b.run("read tick", chromedp.Evaluate(fmt.Sprintf(`document.querySelector("#pick-%s").checked`, id), &on))
		return on
	}
	if !ticked(keep) || !ticked(drop) || ticked(take) || ticked(other) {
		b.failf("Bob's customers are not the ticked ones")
	}
	b.run("tick Tia, untick Dot", chromedp.Click("#pick-"+take, chromedp.ByID), chromedp.Click("#pick-"+drop, chromedp.ByID))
	b.click("#assign-review")
	b.waitText("#to-be-assigned", "Tia Taken")
	b.waitText("#to-be-assigned .count", "1")
	b.waitText("#to-be-deassigned", "Dot Dropped")
	b.waitText("#to-be-deassigned .count", "1")
	if cu, _ := w.cmd.GetCustomer(ctx, w.tenant, take); len(cu.Assignees) != 0 {
		t.Fatal("the review wrote")
	}
	b.click("#save")
	b.waitText("#notice", "Bulk edit saved")
	b.waitText("h1", "Customers of Bob Baker")
	mine := func(id string) bool {
		cu, err := w.cmd.GetCustomer(ctx, w.tenant, id)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(cu.Assignees, func(a commands.Assignee) bool { return a.UserID == w.bob.id })
	}
	if !mine(keep) || mine(drop) || !mine(take) || mine(other) {
		t.Fatalf("after Save: keep=%v drop=%v take=%v other=%v", mine(keep), mine(drop), mine(take), mine(other))
	}
	if !ticked(take) || ticked(drop) {
		b.failf("the page after Save does not tick Bob's customers as they now are")
	}

	// Under require_assignee Bob is Kim's last assignee: unticking Kim is
	// refused in the review, and Save is not offered.
	w.policy(domain.Policy{RequireAssignee: true, MembersCanSelfAssign: true})
	b.open("/users/" + w.bob.id + "/customers?show=theirs")
	b.waitText("#total-count", "2")
	b.run("untick Kim", chromedp.Click("#pick-"+keep, chromedp.ByID))
	b.click("#assign-review")
	b.waitText("#errors", string(domain.CodeCustomerMustKeepAnAssignee))
	b.waitText("#errors", "Kim Kept")
	var disabled bool
	b.run("save disabled", chromedp.JavascriptAttribute("#save", "disabled", &disabled, chromedp.ByQuery))
	if !disabled {
		b.failf("Save is offered on a plan with errors")
	}

	// A member: 403 on the page and on its forms.
	member, _ := signInHTTP(t, w, w.bob, "/customers")
	if got := member.get("/users/" + w.bob.id + "/customers"); got.status != 403 {
		t.Fatalf("a member's GET of the page answered %d", got.status)
	}
	if got := member.do("POST", "/users/"+w.bob.id+"/customers", url.Values{"add": {other}}); got.status != 403 {
		t.Fatalf("a member's Save answered %d", got.status)
	}
	if mine(other) {
		t.Fatal("a member's refused Save changed a team")
	}
}
