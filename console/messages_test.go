package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/internal/smtptest"
)

// TestConsoleMessageCustomers: the Customers page's "Message" bulk action
// e-mails the ticked customers (MessageCustomers), shows the recipients
// and who was skipped and why, and the delivery status page counts the
// e-mails the relay sent. A refused message is shown at its form with the
// ticks and the text kept.
func TestConsoleMessageCustomers(t *testing.T) {
	srv := smtptest.Start(t)
	w := newWorldWithMail(t, srv.URL())
	ctx := context.Background()
	ann := w.customer("Ann", "Mailme")
	ben := w.customer("Ben", "Mailme")
	if _, err := w.cmd.BlockCustomer(ctx, w.meta(), ben); err != nil {
		t.Fatal(err)
	}
	cal, err := w.cmd.RegisterCustomer(ctx, w.meta(), domain.Profile{FirstName: "Cal", LastName: "Mailme", ExternalID: "C-1"})
	if err != nil {
		t.Fatal(err)
	}
	w.customer("Dan", "Other")
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := w.runner.WaitFor(waitCtx, cal.Position); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers?q=mailme")
	b.waitText("#customers", "Cal Mailme")
	for _, id := range []string{ann, ben, cal.ID} {
		b.run("tick "+id, chromedp.Click(fmt.Sprintf(`#pick-%s`, id), chromedp.ByQuery))
	}
	// No subject: refused at the form, ticks and body kept.
	b.run("write a body only", chromedp.SetValue("#message-body", "We open at 9.", chromedp.ByID))
	b.click("#message-send")
	b.waitText("#message #refusal", "subject")
	var body string
	var ticked bool
	b.run("read what was kept", chromedp.Value("#message-body", &body, chromedp.ByID),
		chromedp.Evaluate(fmt.Sprintf(`document.querySelector('#pick-%s').checked`, ann), &ticked))
	if body != "We open at 9." || !ticked {
		b.failf("after the refusal: body %q, Ann ticked %v", body, ticked)
	}

	b.run("write the subject", chromedp.SetValue("#message-subject", "Opening hours", chromedp.ByID))
	b.click("#message-send")
	b.waitText("h1", "Message sent")
	b.waitText("#message-recipients", "1")
	skipped := b.text("#message-skipped")
	if !strings.Contains(skipped, "Ben Mailme: blocked") || !strings.Contains(skipped, "Cal Mailme: has no e-mail address") {
		b.failf("skipped = %q", skipped)
	}
	got := srv.Wait(t, 1, 15*time.Second)
	if len(got) != 1 || got[0].To[0] != "ann.mailme@client.example" {
		t.Fatalf("e-mails: %+v", got)
	}

	// The delivery status page counts it sent once the relay says so.
	b.click("#message-status-link")
	b.waitText("h1", "Opening hours")
	for deadline := time.Now().Add(10 * time.Second); b.text("#count-sent") != "1"; {
		if time.Now().After(deadline) {
			b.failf("the message is never counted sent: %q", b.text("#message-counts"))
		}
		time.Sleep(100 * time.Millisecond)
		b.click("#refresh")
	}

	// Ann's history shows who messaged her.
	b.open("/customers/" + ann)
	b.waitText("#timeline", "CustomerMessaged")
	b.waitText("#timeline", "Ann Admin")
}

// TestConsoleMessageWithoutEmail: without e-mail configured, the message
// is refused at its form with the API's code, as invitations are.
func TestConsoleMessageWithoutEmail(t *testing.T) {
	w := newWorld(t)
	ann := w.customer("Ann", "Mailme")
	b := newBrowser(t, w, 1280, 900)
	b.signIn(w.admin)
	b.open("/customers")
	b.waitText("#customers", "Ann Mailme")
	b.run("write a message to Ann",
		chromedp.Click(`#pick-`+ann, chromedp.ByQuery),
		chromedp.SetValue("#message-subject", "Hello", chromedp.ByID),
		chromedp.SetValue("#message-body", "Hi.", chromedp.ByID))
	b.click("#message-send")
	b.waitText("#message #refusal", "email_not_configured")
}
