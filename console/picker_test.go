package console_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestConsoleTeamPickerSearch: with more users than a picker lists whole,
// the team pickers (new customer, invite, the profile's team) search the
// users server-side: as one types with JavaScript, with the Find button
// without it; the form's other fields and ticks survive a Find, and Find
// runs no command.
func TestConsoleTeamPickerSearch(t *testing.T) {
	w := newWorld(t)
	var zed []user
	for i := range 30 {
		zed = append(zed, w.member(fmt.Sprintf("Zed Number%02d", i), fmt.Sprintf("zed%02d@acme.example", i)))
	}
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)

	// New customer, with JavaScript: the search answers as one types.
	b.open("/customers/new")
	if b.has(`#picker-team .picker-offered input[type=checkbox]`) {
		b.failf("a picker over many users lists them all")
	}
	b.run("type Carol", chromedp.SendKeys("#team-q", "carol", chromedp.ByID))
	b.waitText("#picker-team .picker-offered", "Carol Cole")
	b.run("tick Carol, type a name and an e-mail",
		chromedp.Click(fmt.Sprintf(`#picker-team input[value="%s"]`, w.carol.id), chromedp.ByQuery),
		chromedp.SendKeys("#first_name", "Nina", chromedp.ByID),
		chromedp.SendKeys("#email", "nina@client.example", chromedp.ByID))
	// Another search keeps Carol ticked.
	b.run("search Zed", chromedp.Evaluate(`document.querySelector("#team-q").value = ""`, nil), chromedp.SendKeys("#team-q", "number07", chromedp.ByID))
	b.waitText("#picker-team .picker-offered", "Zed Number07")
	b.waitText("#picker-team .picker-chosen", "Carol Cole")
	b.click("#create-customer")
	b.waitText("#notice", "Customer created")
	b.waitText("#team", "Carol Cole")
	var members int
	b.run("count the team", chromedp.Evaluate(`document.querySelectorAll("#team li[data-user]").length`, &members))
	if members != 1 {
		b.failf("the new customer's team has %d members, want Carol alone", members)
	}

	// Invite, without JavaScript: Find shows the answers, keeps the form.
	nojs := newBrowser(t, w, 1280, 900)
	nojs.run("disable JavaScript", emulation.SetScriptExecutionDisabled(true))
	nojs.signIn(w.admin)
	nojs.open("/invite")
	nojs.run("type the client and a search",
		chromedp.SendKeys("#first_name", "Ivo", chromedp.ByID),
		chromedp.SendKeys("#email", "ivo@client.example", chromedp.ByID),
		chromedp.SendKeys("#team-q", "zed12@", chromedp.ByID))
	nojs.click("#team-find")
	nojs.waitText("#picker-team .picker-offered", "Zed Number12")
	var first string
	nojs.run("the form is kept", chromedp.Value("#first_name", &first, chromedp.ByID))
	if first != "Ivo" {
		nojs.failf("Find lost the typed name: %q", first)
	}
	if nojs.has("#invited") {
		nojs.failf("Find invited the client")
	}
	nojs.run("tick Zed 12", chromedp.Click(fmt.Sprintf(`#picker-team input[value="%s"]`, zed[12].id), chromedp.ByQuery))
	nojs.click("#invite-send")
	nojs.waitText("#invited", "Ivo")
	var href string
	var ok bool
	nojs.run("read the new client's link", chromedp.AttributeValue("#invited h2 a", "href", &href, &ok, chromedp.ByQuery))
	id := strings.TrimPrefix(strings.SplitN(href, "?", 2)[0], "/customers/")
	cu, err := w.cmd.GetCustomer(t.Context(), w.tenant, id)
	if err != nil || len(cu.Assignees) != 1 || cu.Assignees[0].UserID != zed[12].id {
		t.Fatalf("the invited client's team: %+v (%v)", cu.Assignees, err)
	}

	// The profile's team, without JavaScript: Find, tick, Save.
	nojs.open("/customers/" + id)
	nojs.run("search Bob", chromedp.SendKeys("#user_ids-q", "bob", chromedp.ByID))
	nojs.click("#user_ids-find")
	nojs.waitText("#picker-user_ids .picker-offered", "Bob Baker")
	nojs.waitText("#picker-user_ids .picker-chosen", "Zed Number12")
	nojs.run("tick Bob", chromedp.Click(fmt.Sprintf(`#picker-user_ids input[value="%s"]`, w.bob.id), chromedp.ByQuery))
	nojs.click("#team-save")
	nojs.waitText("#notice", "Team saved")
	nojs.waitText("#team", "Bob Baker")
	nojs.waitText("#team", "Zed Number12")

	// The live search's answers: names for a member, e-mails only for
	// those who read the directory.
	member, _ := signInHTTP(t, w, w.bob, "/customers")
	admin, _ := signInHTTP(t, w, w.admin, "/customers")
	for _, c := range []struct {
		who       *httpUser
		wantEmail bool
	}{{member, false}, {admin, true}} {
		got := c.who.get("/users/search?q=number03")
		var found []struct{ ID, Name, Email string }
		if err := json.Unmarshal([]byte(got.body), &found); err != nil || got.status != 200 {
			t.Fatalf("search as %s: %d %q (%v)", c.who.u.name, got.status, got.body, err)
		}
		if len(found) != 1 || found[0].ID != zed[3].id || (found[0].Email != "") != c.wantEmail {
			t.Fatalf("search as %s found %+v", c.who.u.name, found)
		}
	}
}
