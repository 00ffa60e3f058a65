package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

func TestNewMessageTextRefusesWhatCannotBeSent(t *testing.T) {
	cases := []struct {
		subject, body, field string
	}{
		{"", "hi", "subject"},
		{"  ", "hi", "subject"},
		{"Hello", " \n ", "body"},
		{"Hello\r\nBcc: x@example.com", "hi", "subject"},
		{"Hel\x00lo", "hi", "subject"},
		{"Hello", "h\x00i", "body"},
		{"Hello", "h\x07i", "body"},
		{"Hello", "bad \xff utf-8", "body"},
		{strings.Repeat("s", domain.MaxMessageSubject+1), "hi", "subject"},
		{"Hello", strings.Repeat("b", domain.MaxMessageBody+1), "body"},
	}
	for _, tc := range cases {
		_, err := domain.NewMessageText(tc.subject, tc.body)
		var v *domain.ValidationError
		if !errors.As(err, &v) || v.Field != tc.field {
			t.Errorf("NewMessageText(%q, %q…) = %v, want a ValidationError on %s", tc.subject, tc.body[:min(len(tc.body), 10)], err, tc.field)
		}
	}
	m, err := domain.NewMessageText("  Opening hours ", "Dear client,\n\n\tWe open at 9.\r\n")
	if err != nil || m.Subject != "Opening hours" || m.Body != "Dear client,\n\n\tWe open at 9." {
		t.Fatalf("valid message: %+v %v", m, err)
	}
	if _, err := domain.NewMessageText(strings.Repeat("é", domain.MaxMessageSubject), "ok"); err != nil {
		t.Fatalf("a subject of %d two-byte characters: %v", domain.MaxMessageSubject, err)
	}
}

func TestMessageCustomerSkipsBlockedAndAddressless(t *testing.T) {
	active := domain.Customer{ID: "c1", Status: domain.CustomerStatusActive, Profile: domain.Profile{Email: "a@example.com"}}
	e, reason := domain.MessageCustomer(active, "m1", "e1")
	if reason != "" || e != (domain.CustomerMessaged{CustomerID: "c1", MessageID: "m1", EmailID: "e1"}) {
		t.Fatalf("active customer: %v %q", e, reason)
	}
	blocked := active
	blocked.Status = domain.CustomerStatusBlocked
	if e, reason := domain.MessageCustomer(blocked, "m1", "e1"); e != nil || reason != domain.SkipBlocked {
		t.Fatalf("blocked customer: %v %q", e, reason)
	}
	none := active
	none.Profile.Email = ""
	if e, reason := domain.MessageCustomer(none, "m1", "e1"); e != nil || reason != domain.SkipNoEmail {
		t.Fatalf("customer without e-mail: %v %q", e, reason)
	}
	invited := active
	invited.Status = domain.CustomerStatusInvited
	if _, reason := domain.MessageCustomer(invited, "m1", "e1"); reason != "" {
		t.Fatalf("invited customer skipped: %q", reason)
	}
}
