package console_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/commands"
)

// TestConsoleDeleteFromProfile: an admin's Delete… on a profile asks for
// confirmation (Cancel changes nothing), then erases the customer with
// DELETE /v1/customers/{id}'s command: it leaves the table, its profile
// says it was deleted, and the audit keeps its events marked erased.
func TestConsoleDeleteFromProfile(t *testing.T) {
	w := newWorld(t)
	cust := w.customer("Erin", "Erased", w.bob.id)
	w.customer("Kim", "Kept")
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)

	b.open("/customers/" + cust)
	b.click("#delete-link")
	b.waitText("h1", "Delete Erin Erased")
	b.waitText(".warning", "cannot be undone")
	b.click("#erase-cancel")
	b.waitText("h1", "Erin Erased")
	if _, err := w.cmd.GetCustomer(context.Background(), w.tenant, cust); err != nil {
		t.Fatalf("Cancel erased the customer: %v", err)
	}

	b.click("#delete-link")
	b.click("#erase-button")
	b.waitText("#notice", "Deleted")
	b.waitText("#customers", "Kim Kept")
	if got := b.text("#customers"); strings.Contains(got, "Erin") {
		b.failf("the customer table after the deletion = %q", got)
	}
	if _, err := w.cmd.GetCustomer(context.Background(), w.tenant, cust); !errors.Is(err, commands.ErrErased) {
		t.Fatalf("after Delete, GetCustomer = %v, want ErrErased", err)
	}
	b.open("/customers/" + cust)
	b.waitText("h1", "Deleted")
	b.open("/my-clients")
	if b.has("#my-clients") && strings.Contains(b.text("#my-clients"), "Erin") {
		b.failf("My Clients still shows the erased customer")
	}
	b.open("/audit?customer_id=" + cust)
	if got := b.text("main"); strings.Contains(got, "Erin") || !strings.Contains(got, "CustomerErased") {
		b.failf("audit of the erased customer = %q", got)
	}
}

// TestConsoleBulkDelete: "Delete (erase) the customers" in the Customers
// page's bulk menu shows what would be deleted, then deletes the ticked
// customers, all or nothing, with the bulk action "delete".
func TestConsoleBulkDelete(t *testing.T) {
	w := newWorld(t)
	a := w.customer("Ann", "Apple")
	bb := w.customer("Bo", "Berry")
	w.customer("Cy", "Cherry")
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)

	b.open("/customers")
	b.waitText("#customers", "Cy Cherry")
	b.run("tick two and choose delete",
		chromedp.Click("#pick-"+a, chromedp.ByID),
		chromedp.Click("#pick-"+bb, chromedp.ByID),
		chromedp.SetValue("#bulk-action", "delete", chromedp.ByID))
	b.click("#bulk-review")
	b.waitText("h1", "Delete customers")
	b.waitText("#erase-counts", "2 customer(s) to delete")
	if _, err := w.cmd.GetCustomer(context.Background(), w.tenant, a); err != nil {
		t.Fatalf("the review wrote: %v", err)
	}
	b.click("#save")
	b.waitText("#notice", "Deleted")
	b.waitText("#customers", "Cy Cherry")
	if got := b.text("#customers"); strings.Contains(got, "Ann Apple") || strings.Contains(got, "Bo Berry") {
		b.failf("the table after the bulk delete = %q", got)
	}
}
