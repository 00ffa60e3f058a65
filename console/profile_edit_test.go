package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/commands"
)

// TestConsoleProfileEdit: an admin edits a customer's profile fields on
// the profile page (UpdateCustomer, as PATCH /v1/customers/{id}); a form
// left open while someone else changed the customer is refused with the
// conflict message and keeps what was typed, and saving again applies it.
func TestConsoleProfileEdit(t *testing.T) {
	w := newWorld(t)
	cust := w.customer("Pia", "Profile", w.bob.id)
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers/" + cust)
	b.run("open the form and change every field",
		chromedp.Click("#edit-profile-toggle", chromedp.ByID),
		chromedp.WaitVisible("#p-first_name", chromedp.ByID),
		chromedp.SetValue("#p-first_name", "Pia-Maria", chromedp.ByID),
		chromedp.SetValue("#p-last_name", "Profiled", chromedp.ByID),
		chromedp.SetValue("#p-email", "pia.new@client.example", chromedp.ByID),
		chromedp.SetValue("#p-phone", "+1 555 0100", chromedp.ByID),
		chromedp.SetValue("#p-title", "Dr", chromedp.ByID),
		chromedp.SetValue("#p-external_id", "P-42", chromedp.ByID))
	b.click("#profile-save")
	b.waitText("#notice", "Profile saved")
	b.waitText("h1", "Pia-Maria Profiled")
	fields := b.text("#profile-fields")
	for _, want := range []string{"pia.new@client.example", "+1 555 0100", "Dr", "P-42"} {
		if !strings.Contains(fields, want) {
			b.failf("profile after Save = %q, want %q", fields, want)
		}
	}
	b.waitText("#timeline", "CustomerUpdated")
	cu, err := w.cmd.GetCustomer(context.Background(), w.tenant, cust)
	if err != nil || cu.Email != "pia.new@client.example" || cu.Title != "Dr" || cu.ExternalID != "P-42" {
		t.Fatalf("customer after the console's edit: %+v %v", cu, err)
	}

	// A refused edit (a malformed e-mail) is shown at the form, which
	// keeps the input.
	b.run("type a bad e-mail",
		chromedp.Click("#edit-profile-toggle", chromedp.ByID),
		chromedp.SetAttributeValue("#p-email", "type", "text", chromedp.ByID), // past the browser's own check
		chromedp.SetValue("#p-email", "not-an-address", chromedp.ByID))
	b.click("#profile-save")
	b.waitText("#profile #refusal", "email")
	var typed string
	b.run("read the kept input", chromedp.Value("#p-email", &typed, chromedp.ByID))
	if typed != "not-an-address" {
		b.failf("the form lost the input: %q", typed)
	}

	// Stale form: someone else changes the phone after the page was shown.
	b.open("/customers/" + cust)
	phone := "+1 555 0199"
	if _, err := w.cmd.UpdateCustomer(context.Background(), w.meta(), cust, commands.ProfilePatch{Phone: &phone}); err != nil {
		t.Fatal(err)
	}
	b.run("edit the stale form",
		chromedp.Click("#edit-profile-toggle", chromedp.ByID),
		chromedp.SetValue("#p-title", "Prof", chromedp.ByID))
	b.click("#profile-save")
	b.waitText("#profile #refusal", "version_mismatch")
	b.waitText("#profile-conflict", "Someone changed this customer")
	b.waitText("#profile-fields", phone) // the current profile is shown
	var title string
	b.run("read the kept title", chromedp.Value("#p-title", &title, chromedp.ByID))
	if title != "Prof" {
		b.failf("the stale form's input was lost: %q", title)
	}
	cu, err = w.cmd.GetCustomer(context.Background(), w.tenant, cust)
	if err != nil || cu.Title != "Dr" {
		t.Fatalf("a stale form changed the customer: %+v %v", cu, err)
	}
	// Saving again applies the edit over the current version.
	b.click("#profile-save")
	b.waitText("#notice", "Profile saved")
	b.waitText("#profile-fields", "Prof")
	cu, err = w.cmd.GetCustomer(context.Background(), w.tenant, cust)
	if err != nil || cu.Title != "Prof" || cu.Phone != phone || cu.Email != "pia.new@client.example" {
		t.Fatalf("after saving over the other change: %+v %v (the other change's phone must stay)", cu, err)
	}
}
