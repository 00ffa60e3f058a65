package console_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/xuri/excelize/v2"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/domain"
)

// TestConsoleMyClientsToggle: a member's "+ My Clients" on a profile puts
// the customer on their My Clients page (Endear), and the button turns
// into "✓ My Clients", which takes it off again.
func TestConsoleMyClientsToggle(t *testing.T) {
	w := newWorld(t)
	cust := w.customer("Mia", "Moss")
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.bob)

	b.open("/customers/" + cust)
	if got := b.text("#mine-button"); !strings.Contains(got, "+ My Clients") {
		b.failf("button = %q, want + My Clients", got)
	}
	// The title says what the button shows, and what pressing it does.
	title := func() string {
		var s string
		var ok bool
		b.run("read the title", chromedp.AttributeValue("#mine-button", "title", &s, &ok, chromedp.ByQuery))
		return s
	}
	if got := title(); !strings.HasPrefix(got, "Not in My Clients") || !strings.Contains(got, "add") {
		b.failf("+ My Clients has the title %q", got)
	}
	b.click("#mine-button")
	b.waitText("#mine-button", "✓ My Clients")
	b.waitText("#team", "Bob Baker")
	if got := title(); !strings.HasPrefix(got, "In My Clients") || !strings.Contains(got, "remove") {
		b.failf("✓ My Clients has the title %q", got)
	}

	b.click(`a[href="/my-clients"]`)
	b.waitText("#my-clients", "Mia Moss")

	b.open("/customers/" + cust)
	b.click("#mine-button")
	b.waitText("#mine-button", "+ My Clients")
	b.open("/my-clients")
	b.waitText("#my-clients", "No clients yet")
}

// TestConsoleProfileToggles: an admin ticks two users in the assigned-user
// toggles and saves once (SetTeam); the team, the customer list's Assigned
// User column and the history show them.
func TestConsoleProfileToggles(t *testing.T) {
	w := newWorld(t)
	w.policy(domain.Policy{RequireLead: true, MembersCanSelfAssign: true})
	cust := w.customer("Tom", "Tide")
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers/" + cust)
	b.run("tick Bob and Carol",
		chromedp.Click(fmt.Sprintf(`#team-form input[value="%s"]`, w.bob.id), chromedp.ByQuery),
		chromedp.Click(fmt.Sprintf(`#team-form input[value="%s"]`, w.carol.id), chromedp.ByQuery))
	b.click("#team-save")
	b.waitText("#notice", "Team saved")
	team := b.text("#team")
	if !strings.Contains(team, "Bob Baker") || !strings.Contains(team, "Carol Cole") {
		b.failf("team after Save = %q", team)
	}
	// The first ticked (in the list's order) leads under require_lead.
	b.waitText(`#team li[data-user="`+w.bob.id+`"]`, "lead")
	b.waitText("#timeline", "UserAssigned")

	b.open("/customers?q=tide")
	b.waitText("#customers", "Bob Baker")
	b.waitText("#customers", "Carol Cole")
}

// TestConsoleBulkReassign: Spryker's one-owner reassignment. Under
// max_assignees 1 an admin ticks two of Bob's three customers, chooses
// "Make the only assigned user: Carol", checks the review tabs (Carol to be
// assigned, Bob to be deassigned, on exactly those two) and saves.
func TestConsoleBulkReassign(t *testing.T) {
	w := newWorld(t)
	one := 1
	w.policy(domain.Policy{MaxAssignees: &one, MembersCanSelfAssign: true})
	a := w.customer("Ada", "Apple", w.bob.id)
	bb := w.customer("Ben", "Berry", w.bob.id)
	w.customer("Cy", "Cherry", w.bob.id)
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)

	b.open("/customers?assigned_user=" + w.bob.id)
	b.waitText("#customers", "Cy Cherry")
	b.run("tick two and choose set Carol",
		chromedp.Click("#pick-"+a, chromedp.ByID),
		chromedp.Click("#pick-"+bb, chromedp.ByID),
		chromedp.SetValue("#bulk-action", "set", chromedp.ByID),
		chromedp.SetValue("#bulk-user", w.carol.id, chromedp.ByID))
	b.click("#bulk-review")
	b.waitText("h1", "Review bulk edit")
	assigned, deassigned := b.text("#to-be-assigned"), b.text("#to-be-deassigned")
	for _, want := range []string{"Ada Apple", "Ben Berry", "Carol Cole", "2"} {
		if !strings.Contains(assigned, want) {
			b.failf("to be assigned = %q, missing %q", assigned, want)
		}
	}
	for _, want := range []string{"Ada Apple", "Ben Berry", "Bob Baker", "2"} {
		if !strings.Contains(deassigned, want) {
			b.failf("to be deassigned = %q, missing %q", deassigned, want)
		}
	}
	if strings.Contains(assigned+deassigned, "Cy Cherry") {
		b.failf("an unticked customer is in the plan: %q / %q", assigned, deassigned)
	}
	// Nothing is written before Save.
	if cu, _ := w.cmd.GetCustomer(context.Background(), w.tenant, a); len(cu.Assignees) != 1 || cu.Assignees[0].UserID != w.bob.id {
		t.Fatalf("the review wrote: %+v", cu.Assignees)
	}
	b.click("#save")
	b.waitText("#notice", "Bulk edit saved")
	// Back on the filtered table (Bob's customers): only Cy is left.
	b.waitText("#customers", "Cy Cherry")
	if got := b.text("#customers"); strings.Contains(got, "Ada Apple") {
		b.failf("Bob's customers after the reassignment = %q", got)
	}
	b.open("/customers?assigned_user=" + w.carol.id)
	b.waitText("#customers", "Ada Apple")
	b.waitText("#customers", "Ben Berry")
}

// TestConsoleBulkRefusalShown: a bulk add over the limit is reviewed with
// its errors, and Save is not offered.
func TestConsoleBulkRefusalShown(t *testing.T) {
	w := newWorld(t)
	one := 1
	w.policy(domain.Policy{MaxAssignees: &one, MembersCanSelfAssign: true})
	a := w.customer("Ada", "Apple", w.bob.id)
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers")
	b.run("tick and choose add Carol",
		chromedp.Click("#pick-"+a, chromedp.ByID),
		chromedp.SetValue("#bulk-action", "add", chromedp.ByID),
		chromedp.SetValue("#bulk-user", w.carol.id, chromedp.ByID))
	b.click("#bulk-review")
	b.waitText("#errors", "max_assignees_reached")
	var disabled bool
	b.run("save disabled", chromedp.JavascriptAttribute("#save", "disabled", &disabled, chromedp.ByQuery))
	if !disabled {
		b.failf("Save is offered on a plan with errors")
	}
	// Without a ticked customer the form's refusal is shown on the table.
	b.open("/customers")
	b.run("choose a user only", chromedp.SetValue("#bulk-user", w.carol.id, chromedp.ByID))
	b.click("#bulk-review")
	b.waitText("#bulk #refusal", "tick at least one customer")
}

// TestConsoleLoneLead: the client portal's rule. Bob, the lone lead, cannot
// be removed (the rule's message is shown at the team), and becomes
// removable once Carol is added and made lead.
func TestConsoleLoneLead(t *testing.T) {
	w := newWorld(t)
	w.policy(domain.Policy{RequireLead: true, MembersCanSelfAssign: true})
	cust := w.customer("Lea", "Lone", w.bob.id)
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers/" + cust)
	b.waitText("#team", "lead")
	b.click(`#team button[aria-label="Remove Bob Baker"]`)
	b.waitText("#members #refusal", "lead_cannot_be_removed")
	b.waitText("#team", "Bob Baker")

	b.run("tick Carol too", chromedp.Click(fmt.Sprintf(`#team-form input[value="%s"]`, w.carol.id), chromedp.ByQuery))
	b.click("#team-save")
	b.waitText("#team", "Carol Cole")
	b.click(`#team button[aria-label="Make Carol Cole team lead"]`)
	b.waitText("#notice", "Team lead changed")
	b.waitText(`#team li[data-user="`+w.carol.id+`"]`, "lead")
	b.click(`#team button[aria-label="Remove Bob Baker"]`)
	b.waitText("#notice", "Team member removed")
	if b.has(`#team li[data-user="` + w.bob.id + `"]`) {
		b.failf("Bob is still on the team after Remove")
	}
}

// TestConsoleNotificationCounter: the header's unread count rises when an
// admin assigns the member (Contactually's counter), and falls when the
// member reads them.
func TestConsoleNotificationCounter(t *testing.T) {
	w := newWorld(t)
	cust := w.customer("Ned", "Notify")
	bob := newBrowser(t, w, 1280, 900)
	bob.signIn(w.bob)
	bob.waitText("#unread-count", "0")

	admin := newBrowser(t, w, 1280, 900)
	admin.signIn(w.admin)
	admin.open("/customers/" + cust)
	admin.run("tick Bob", chromedp.Click(fmt.Sprintf(`#team-form input[value="%s"]`, w.bob.id), chromedp.ByQuery))
	admin.click("#team-save")
	admin.waitText("#notice", "Team saved")

	// Bob's next page shows the count (the projection may lag a moment).
	deadline := time.Now().Add(10 * time.Second)
	for {
		bob.open("/customers")
		if bob.text("#unread-count") == "1" {
			break
		}
		if time.Now().After(deadline) {
			bob.failf("unread count = %q, want 1", bob.text("#unread-count"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	bob.click("#nav-notifications")
	bob.waitText("#notifications", "You were assigned to Ned Notify")
	bob.click("#mark-read button")
	bob.waitText("#unread-count", "0")
}

// TestConsoleAsOf: the history's as-of picker shows the team as it stood
// at an earlier moment, not as it is now.
func TestConsoleAsOf(t *testing.T) {
	w := newWorld(t)
	cust := w.customer("Otto", "Old", w.bob.id)
	// The picker has one-second resolution: let a whole second pass on
	// each side of the moment picked.
	time.Sleep(1100 * time.Millisecond)
	then := time.Now().UTC().Truncate(time.Second)
	time.Sleep(1100 * time.Millisecond)
	if _, err := w.cmd.SetTeam(context.Background(), w.meta(), cust, []string{w.carol.id}, ""); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers/" + cust)
	b.waitText("#team", "Carol Cole")
	// Set by script once the input is there: SetValue's node could go stale
	// on a loaded machine ("could not set value on node").
	var picked string
	b.run("pick the earlier moment",
		chromedp.WaitVisible("#as_of", chromedp.ByID),
		chromedp.Evaluate(`(() => { const e = document.getElementById('as_of'); e.value = '`+
			then.Format("2006-01-02T15:04:05")+`'; return e.value; })()`, &picked))
	if picked == "" {
		b.failf("the picker took no value")
	}
	b.click("#asof-show")
	b.waitText("#team-then", "Bob Baker")
	if got := b.text("#team-then"); strings.Contains(got, "Carol Cole") {
		b.failf("team then = %q, Carol joined later", got)
	}
	if got := b.text("#team"); !strings.Contains(got, "Carol Cole") {
		b.failf("the current team changed with the picker: %q", got)
	}
}

// TestConsoleBulkAllMatching: "every customer matching the filter" selects
// by the API's filter selection, not only the ticked rows: all of Bob's
// customers are reviewed and moved to Carol, and no one else's.
func TestConsoleBulkAllMatching(t *testing.T) {
	w := newWorld(t)
	for _, n := range []string{"Ann", "Bea", "Cat"} {
		w.customer(n, "Bobson", w.bob.id)
	}
	w.customer("Dan", "Else", w.carol.id)
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers?assigned_user=" + w.bob.id)
	b.waitText("#customers", "Cat Bobson")
	b.run("all matching, set Carol",
		chromedp.Click("#all-matching", chromedp.ByID),
		chromedp.SetValue("#bulk-action", "set", chromedp.ByID),
		chromedp.SetValue("#bulk-user", w.carol.id, chromedp.ByID))
	b.click("#bulk-review")
	b.waitText("h1", "Review bulk edit")
	b.waitText("#to-be-assigned .count", "3")
	b.waitText("#to-be-deassigned .count", "3")
	if got := b.text("#to-be-assigned"); strings.Contains(got, "Dan Else") {
		b.failf("a customer outside the filter is selected: %q", got)
	}
	b.click("#save")
	b.waitText("#notice", "Bulk edit saved")
	b.waitText("#customers", "No customers match")
	b.open("/customers?assigned_user=" + w.carol.id)
	for _, n := range []string{"Ann Bobson", "Bea Bobson", "Cat Bobson", "Dan Else"} {
		b.waitText("#customers", n)
	}
}

// TestConsolePagingAndLead: the table pages by the API's keyset cursor
// (Next page keeps the filter and shows the rest, no repeats), and the
// toggles' Lead choice is passed to SetTeam.
func TestConsolePagingAndLead(t *testing.T) {
	w := newWorld(t)
	w.policy(domain.Policy{RequireLead: true, MembersCanSelfAssign: true})
	var last string
	for i := range 55 {
		last = w.customer(fmt.Sprintf("Page%02d", i), "Person", w.bob.id)
	}
	w.customer("Not", "Bobs")
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers?assigned_user=" + w.bob.id)
	count := func() int {
		var n int
		b.run("count rows", chromedp.Evaluate(`document.querySelectorAll('#customers tbody input[name=customer_ids]').length`, &n))
		return n
	}
	if n := count(); n != 50 {
		b.failf("first page has %d rows, want 50", n)
	}
	b.click("#next-page")
	if n := count(); n != 5 {
		b.failf("second page has %d rows, want 5", n)
	}
	if got := b.text("#customers"); strings.Contains(got, "Not Bobs") {
		b.failf("the next page lost the filter: %q", got)
	}
	if b.has("#next-page") {
		b.failf("the last page offers a next one")
	}

	b.open("/customers/" + last)
	b.run("tick Carol and make her lead",
		chromedp.Click(fmt.Sprintf(`#team-form input[value="%s"]`, w.carol.id), chromedp.ByQuery),
		chromedp.SetValue("#team-lead", w.carol.id, chromedp.ByID))
	b.click("#team-save")
	b.waitText("#notice", "Team saved")
	b.waitText(`#team li[data-user="`+w.carol.id+`"]`, "lead")
}

// TestConsoleGroupFilterAllMatchingAndXLSX: Calendesk's list, on the
// console: filter the table by a group, bulk edit "every customer matching"
// that filter (the group's customers only, checked on the review step),
// and download the filtered list as XLSX from the export menu.
func TestConsoleGroupFilterAllMatchingAndXLSX(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	var vip []string
	for _, n := range []string{"Ann", "Bea", "Cat"} {
		vip = append(vip, w.customer(n, "Vip", w.bob.id))
	}
	w.customer("Dan", "Plain", w.bob.id)
	g, err := w.cmd.CreateGroup(ctx, w.meta(), "VIP")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.cmd.BulkCustomers(ctx, w.meta(), commands.CustomerBulkRequest{
		Action: domain.CustomerActionAddToGroup, CustomerIDs: vip, GroupID: g.ID}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers")
	b.waitText("#customers", "Dan Plain")
	b.run("filter by the group", chromedp.SetValue("#group", g.ID, chromedp.ByID))
	b.click(`#filters button[type=submit]`)
	b.waitText("#customers", "Cat Vip")
	if got := b.text("#customers"); strings.Contains(got, "Dan Plain") {
		b.failf("the group filter let another customer through: %q", got)
	}
	b.run("all matching, add Carol",
		chromedp.Click("#all-matching", chromedp.ByID),
		chromedp.SetValue("#bulk-action", "add", chromedp.ByID),
		chromedp.SetValue("#bulk-user", w.carol.id, chromedp.ByID))
	b.click("#bulk-review")
	b.waitText("h1", "Review bulk edit")
	b.waitText("#to-be-assigned .count", "3")
	if got := b.text("#to-be-assigned"); strings.Contains(got, "Dan Plain") {
		b.failf("a customer outside the group is selected: %q", got)
	}
	b.click("#save")
	b.waitText("#notice", "Bulk edit saved")

	// The export menu's XLSX item carries the group filter, and the
	// browser downloads the file it names as a user's would: downloads go
	// to a directory of the test's, and the test waits for Chromium to
	// report the download complete.
	b.open("/customers?group=" + g.ID)
	b.waitText("#customers", "Ann Vip")
	dl := b.download("#export-xlsx")
	if !regexp.MustCompile(`^customers-\d{8}\.xlsx$`).MatchString(dl.name) {
		b.failf("the download is named %q, want customers-YYYYMMDD.xlsx", dl.name)
	}
	x, err := excelize.OpenFile(dl.path)
	if err != nil {
		t.Fatalf("open the downloaded XLSX: %v", err)
	}
	defer x.Close()
	rows, err := x.GetRows("Customers")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rows[1:] {
		names = append(names, r[1]+" "+r[2])
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"Ann Vip", "Bea Vip", "Cat Vip"}) {
		t.Fatalf("xlsx rows: %v", names)
	}
	// Ann's row, read by the header's column names.
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, r := range rows[1:] {
		if r[col["first_name"]] != "Ann" {
			continue
		}
		cell := func(name string) string {
			if i, ok := col[name]; ok && i < len(r) {
				return r[i]
			}
			return ""
		}
		if cell("id") != vip[0] || cell("email") != "ann.vip@client.example" || cell("status") != "active" ||
			!strings.Contains(cell("assignees"), "Bob Baker") || !strings.Contains(cell("assignees"), "Carol Cole") ||
			cell("groups") != "VIP" {
			t.Fatalf("Ann's row in the downloaded XLSX: %q (header %q)", r, rows[0])
		}
	}
}

// TestConsoleProfileGroups: an admin adds a customer to a group and removes
// it on the profile; the table's group filter follows; a member's attempt
// is refused with the rule's message at the groups form.
func TestConsoleProfileGroups(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	cust := w.customer("Gil", "Grouped", w.bob.id)
	g, err := w.cmd.CreateGroup(ctx, w.meta(), "Gold")
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers/" + cust)
	b.waitText("#group-list", "In no group")
	b.run("choose the group", chromedp.SetValue("#group-id", g.ID, chromedp.ByID))
	b.click("#add-group-button")
	b.waitText("#notice", "Groups updated")
	b.waitText("#group-list", "Gold")
	b.open("/customers?group=" + g.ID)
	b.waitText("#customers", "Gil Grouped")

	// A member sees the groups but is offered no change to them.
	m := newBrowser(t, w, 1280, 900)
	m.signIn(w.bob)
	m.open("/customers/" + cust)
	m.waitText("#group-list", "Gold")
	if m.has(".remove-group") || m.has("#add-group") {
		m.failf("a member is offered to change the groups")
	}

	b.open("/customers/" + cust)
	b.click(".remove-group")
	b.waitText("#notice", "Groups updated")
	b.waitText("#group-list", "In no group")
}
