package console_test

import (
	nethttp "net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/domain"
)

// TestConsoleImport: a CSV with a bad row is checked (nothing written, the
// row named), then a good one is checked and imported without choosing it
// again; the new clients are on the customer table with their team.
func TestConsoleImport(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	good := filepath.Join(dir, "good.csv")
	if err := os.WriteFile(bad, []byte("Email,First Name,Team\nivy@client.example,Ivy,bob@acme.example\n,NoMail,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte("Email,First Name,Last Name,Team\nivy@client.example,Ivy,Import,bob@acme.example\njon@client.example,Jon,Import,carol@acme.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/import")
	b.run("choose the bad file", chromedp.SetUploadFiles("#file", []string{bad}, chromedp.ByID))
	b.click("#import-check")
	b.waitText("#report", "Row 2")
	if b.has("#import-now") {
		b.failf("a file with bad rows is offered for import")
	}
	b.run("choose the good file", chromedp.SetUploadFiles("#file", []string{good}, chromedp.ByID))
	b.click("#import-check")
	b.waitText("#report", "2 to create")
	b.click("#import-now")
	b.waitText("#notice", "Import done")
	// Done is worded as done: "2 created", not "2 to create".
	if got := b.text("#report-counts"); !strings.Contains(got, "2 created") || strings.Contains(got, "to create") {
		b.failf("the import's report says %q", got)
	}
	b.click(`#report a`)
	b.waitText("#customers", "Ivy Import")
	b.waitText("#customers", "Carol Cole")
}

// TestConsoleInviteAndAudit: an admin invites a client with a team and
// gets the link once; the audit, filtered by type, lists the invitation.
func TestConsoleInviteAndAudit(t *testing.T) {
	w := newWorld(t)
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/invite")
	b.run("fill the invitation",
		chromedp.SendKeys("#first_name", "Vera", chromedp.ByID),
		chromedp.SendKeys("#last_name", "Visitor", chromedp.ByID),
		chromedp.SendKeys("#email", "vera@client.example", chromedp.ByID),
		chromedp.Click(`#invite input[value="`+w.bob.id+`"]`, chromedp.ByQuery))
	b.click("#invite-send")
	b.waitText("#invited", "Vera Visitor")
	var link string
	b.run("read the link", chromedp.Value("#invitation-link", &link, chromedp.ByID))
	if !strings.HasPrefix(link, "https://ledger.example/invitations/") {
		b.failf("invitation link = %q", link)
	}
	// The header's links carry the invitation's position: the audit waits
	// for it.
	b.click(`header a[href^="/audit"]`)
	b.waitText("#audit", "ClientInvited")
	b.run("filter by type", chromedp.SetValue("#type", "ClientInvited", chromedp.ByID))
	b.click("#audit-filter")
	b.waitText("#audit", "ClientInvited")
	if got := b.text("#audit"); strings.Contains(got, "UserCreated") {
		b.failf("the type filter let other events through: %q", got)
	}
	b.open("/audit?type=UserAssigned&user_id=" + w.bob.id)
	b.waitText("#audit", "Bob Baker")
	// The export carries the filters: every UserAssigned about Bob, as CSV.
	var csv string
	b.run("fetch the audit export", chromedp.Evaluate(
		`fetch(document.querySelector('#audit-csv').href).then(r => r.text())`, &csv,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if !strings.HasPrefix(csv, "position,type,at") || !strings.Contains(csv, ",UserAssigned,") ||
		strings.Contains(csv, ",ClientInvited,") {
		b.failf("audit export = %q", csv)
	}

	// The same e-mail again is refused on the form.
	b.open("/invite")
	b.run("fill it again", chromedp.SendKeys("#email", "vera@client.example", chromedp.ByID))
	b.click("#invite-send")
	b.waitText("#refusal", "taken")

	// Members do not read the audit, as in the API.
	m := newBrowser(t, w, 1280, 900)
	m.signIn(w.carol)
	m.open("/audit")
	m.waitText("#refusal", "forbidden")
	m.open("/audit/export?format=csv")
	m.waitText("body", "only an admin")
}

// TestConsoleExportAndBlock: the table's Export CSV carries its filters
// (the API's export), and Block/Unblock on a profile run the commands; a
// member's Block is refused with the rule's message.
func TestConsoleExportAndBlock(t *testing.T) {
	w := newWorld(t)
	cust := w.customer("Eve", "Export", w.bob.id)
	w.customer("Other", "Person")
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers?assigned_user=" + w.bob.id)
	var csv string
	b.run("fetch the export", chromedp.Evaluate(
		`fetch(document.querySelector('#export-csv').href).then(r => r.text())`, &csv,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if !strings.Contains(csv, "Eve") || strings.Contains(csv, "Other") || !strings.HasPrefix(csv, "id,first_name") {
		b.failf("export = %q", csv)
	}

	b.open("/customers/" + cust)
	b.click("#block-button")
	b.waitText("#notice", "Customer blocked")
	b.waitText(".profile", "blocked")
	b.click("#block-button")
	b.waitText("#notice", "Customer unblocked")

	// A member is not offered Block; the address answers 403 all the same.
	m := newBrowser(t, w, 1280, 900)
	m.signIn(w.bob)
	m.open("/customers/" + cust)
	m.waitText("h1", "Eve Export")
	if m.has("#block-button") || m.has("#delete-link") {
		m.failf("a member is offered Block or Delete")
	}
	member, _ := signInHTTP(t, w, w.bob, "/customers")
	if got := member.do("POST", "/customers/"+cust+"/block", url.Values{"block": {"block"}}); got.status != nethttp.StatusForbidden ||
		!strings.Contains(got.body, "only an admin may do this") {
		t.Fatalf("a member's Block answered %d: %.300s", got.status, got.body)
	}
}

// TestConsoleNewCustomer: the newcomer's path after `make run`: sign in,
// create a customer (under require_assignee a customer without a team is
// refused on the form, team_required), then assign it on the profile.
func TestConsoleNewCustomer(t *testing.T) {
	w := newWorld(t)
	w.policy(domain.Policy{RequireAssignee: true, MembersCanSelfAssign: true})
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.click("#new-customer-link")
	b.run("fill the customer", chromedp.SendKeys("#first_name", "Nina", chromedp.ByID),
		chromedp.SendKeys("#last_name", "New", chromedp.ByID),
		chromedp.SendKeys("#email", "nina@client.example", chromedp.ByID))
	b.click("#create-customer")
	b.waitText("#refusal", "team_required")
	b.run("tick Bob", chromedp.Click(`#new-customer input[value="`+w.bob.id+`"]`, chromedp.ByQuery))
	b.click("#create-customer")
	b.waitText("#notice", "Customer created")
	b.waitText("h1", "Nina New")
	b.waitText("#team", "Bob Baker")
	b.run("tick Carol", chromedp.Click(`#team-form input[value="`+w.carol.id+`"]`, chromedp.ByQuery))
	b.click("#team-save")
	b.waitText("#team", "Carol Cole")
}

// TestConsoleInviteByEmailWithoutEmail: ticking "e-mail the client" on a
// server without e-mail is refused on the form (email_not_configured) and
// invites no one; the import's invite option likewise.
func TestConsoleInviteByEmailWithoutEmail(t *testing.T) {
	w := newWorld(t)
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/invite")
	b.run("fill the invitation",
		chromedp.SendKeys("#email", "mailed@client.example", chromedp.ByID),
		chromedp.Click("#send-email", chromedp.ByID))
	b.click("#invite-send")
	b.waitText("#refusal", "email_not_configured")
	b.open("/customers?q=mailed")
	b.waitText("#customers", "No customers match")

	file := filepath.Join(t.TempDir(), "invite.csv")
	if err := os.WriteFile(file, []byte("Email,First Name\nimported@client.example,Imp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.open("/import")
	b.run("import with invitations",
		chromedp.SetUploadFiles("#file", []string{file}, chromedp.ByID),
		chromedp.Click("#import-invite", chromedp.ByID))
	b.click("#import-direct")
	b.waitText("#refusal", "email_not_configured")
}
