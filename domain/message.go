package domain

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a message to customers. The subject is one header line; the
// body is plain text, sent to up to 10,000 recipients, so it is bounded
// too (its one copy is kept with the message).
const (
	MaxMessageSubject = 200
	MaxMessageBody    = 20_000
)

// Reasons a selected customer is not sent a message (the answer's
// "skipped" list).
const (
	SkipBlocked = "blocked"
	// SkipErased is a customer that was erased: it has no address left.
	SkipErased  = "erased"
	SkipNoEmail = "no_email"
	SkipUnknown = "not_found"
)

// MessageText is a validated message: a one-line subject and a body,
// both trimmed of surrounding blank space.
type MessageText struct {
	Subject string
	Body    string
}

// NewMessageText checks an admin's message. The subject must be one line
// (a line break would let it spill into other headers) without control
// characters; the body may hold line breaks and tabs but no other control
// characters. Both must be valid UTF-8 without NUL bytes (PostgreSQL
// cannot store those).
func NewMessageText(subject, body string) (MessageText, error) {
	if err := checkLine("subject", subject); err != nil {
		return MessageText{}, err
	}
	subject, body = strings.TrimSpace(subject), strings.TrimSpace(body)
	if err := checkText("subject", subject, MaxMessageSubject, false); err != nil {
		return MessageText{}, err
	}
	if err := checkText("body", body, MaxMessageBody, true); err != nil {
		return MessageText{}, err
	}
	return MessageText{Subject: subject, Body: body}, nil
}

func checkText(field, s string, maxRunes int, multiline bool) error {
	switch {
	case s == "":
		return &ValidationError{Field: field, Detail: "must not be empty"}
	case !utf8.ValidString(s):
		return &ValidationError{Field: field, Detail: "is not valid UTF-8"}
	case utf8.RuneCountInString(s) > maxRunes:
		return &ValidationError{Field: field, Detail: fmt.Sprintf("is longer than %d characters", maxRunes)}
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\r' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) {
			return controlError(field, r, multiline)
		}
	}
	return nil
}

// RequireRecipients refuses a message whose selection of n IDs found no
// customer of the tenant (found is how many it did): it would record a
// message to nobody. Customers that are found but skipped (blocked, erased,
// without e-mail) are listed in the answer instead, as the contract asks.
func RequireRecipients(found, n int) error {
	if found == 0 {
		return ruleErr(CodeNoRecipients, "none of the %d selected customer IDs is a customer of this tenant; nothing was sent", n)
	}
	return nil
}

// MessageSkipReason says why c is not sent a message, or "" when it is: a
// blocked customer is not contacted, and an erased one or one without an
// e-mail address cannot be.
func MessageSkipReason(c Customer) string {
	switch {
	case c.Erased:
		return SkipErased
	case c.Status == CustomerStatusBlocked:
		return SkipBlocked
	case strings.TrimSpace(c.Profile.Email) == "":
		return SkipNoEmail
	}
	return ""
}

// MessageCustomer decides the event that records messageID sent to c
// (whose e-mail is emailID), or the reason it is skipped.
func MessageCustomer(c Customer, messageID, emailID string) (Event, string) {
	if reason := MessageSkipReason(c); reason != "" {
		return nil, reason
	}
	return CustomerMessaged{CustomerID: c.ID, MessageID: messageID, EmailID: emailID}, ""
}
