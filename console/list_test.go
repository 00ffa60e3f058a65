package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/domain"
)

// TestConsoleListFilterColumnsAndPages: the Assigned-user filter ticks
// several users (Contactually's "Assigned To"), the columns are chosen and
// kept for the user who chose them (not for another user on the same
// browser), and the table pages forward and back with the total count.
func TestConsoleListFilterColumnsAndPages(t *testing.T) {
	w := newWorld(t)
	w.customer("Bo", "Bobs", w.bob.id)
	w.customer("Cara", "Carols", w.carol.id)
	w.customer("Nia", "Nobody")
	res, err := w.cmd.RegisterCustomer(context.Background(), w.meta(), domain.Profile{FirstName: "Pia", LastName: "Phone",
		Email: "pia@client.example", Phone: "+44 20 7946 0000", ExternalID: "EXT-77"}, w.bob.id)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.runner.WaitFor(context.Background(), res.Position); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers")
	b.waitText("#total-count", "4")

	// Two users ticked: their customers, not the unassigned one.
	b.run("tick Bob and Carol",
		chromedp.Click("#assigned-summary", chromedp.ByID),
		chromedp.Click(fmt.Sprintf(`#assigned-filter input[value="%s"]`, w.bob.id), chromedp.ByQuery),
		chromedp.Click(fmt.Sprintf(`#assigned-filter input[value="%s"]`, w.carol.id), chromedp.ByQuery))
	b.click(`#filters button[type=submit]`)
	for _, n := range []string{"Bo Bobs", "Cara Carols", "Pia Phone"} {
		b.waitText("#customers", n)
	}
	if got := b.text("#customers"); strings.Contains(got, "Nia Nobody") {
		b.failf("an unassigned customer passes the filter of Bob and Carol: %q", got)
	}
	b.waitText("#total-count", "3")
	b.waitText("#assigned-summary", "Bob Baker, Carol Cole")
	// No one and a user together is refused as the API refuses it.
	b.open("/customers?assigned_user=none&assigned_user=" + w.bob.id)
	b.waitText("#refusal", "no one cannot be combined")

	// Columns: phone and external ID chosen, then kept on the next visit.
	b.open("/customers")
	b.run("choose phone and external ID",
		chromedp.Click("#columns-chooser summary", chromedp.ByQuery),
		chromedp.Click("#col-phone", chromedp.ByID),
		chromedp.Click("#col-external_id", chromedp.ByID))
	b.click(`#filters button[type=submit]`)
	b.waitText("#customers thead", "Phone")
	b.waitText("#customers", "+44 20 7946 0000")
	b.open("/customers?q=pia")
	b.waitText("#customers thead", "External ID")
	b.waitText("#customers", "EXT-77")
	if b.has("#customers th.col-created") {
		b.failf("a column not chosen is shown")
	}
	// Another user on the same browser starts from the standard columns.
	b.click(`header button.link`)
	b.signIn(w.bob)
	b.open("/customers")
	b.waitText("#customers", "Pia Phone")
	if b.has("#customers th.col-phone") {
		b.failf("Bob sees the admin's chosen columns")
	}

	// Paging: 55 more customers; next shows 51–59 of 59, previous the start.
	for i := range 55 {
		w.customer(fmt.Sprintf("Page%02d", i), "Person")
	}
	b.open("/customers")
	b.waitText("#total", "1–50 of 59")
	if b.has("#prev-page") {
		b.failf("the first page offers a previous one")
	}
	b.click("#next-page")
	b.waitText("#total", "51–59 of 59")
	b.waitText("#customers", "Page54 Person")
	b.click("#prev-page")
	b.waitText("#total", "1–50 of 59")
	b.waitText("#customers", "Bo Bobs")
	if b.has("#prev-page") {
		b.failf("back on the first page, a previous one is offered")
	}
}
