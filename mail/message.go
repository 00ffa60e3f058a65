package mail

import (
	"fmt"
	netmail "net/mail"
	"strings"
	"time"
)

// KindMessage is the outbox kind of one recipient's copy of a message an
// admin sent to selected customers (POST /v1/customers/messages).
const KindMessage = "message"

// Message is the outbox payload of a customer message: the recipient as of
// the sending. The subject and body are the message's, kept once in the
// messages table; the relay's query joins them in (Subject, Body), so a
// retry sends the same text.
type Message struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	// Subject and Body come from the messages row, never from the stored
	// payload.
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body,omitempty"`
}

// render makes the recipient's e-mail: the admin's text as written, in
// plain text, under the outbox row's fixed Message-ID and date.
func (m Message) render(id string, from *netmail.Address, created time.Time) (outgoing, error) {
	if m.Email == "" {
		return outgoing{}, fmt.Errorf("message %s has no recipient", id)
	}
	if m.Subject == "" && m.Body == "" {
		return outgoing{}, fmt.Errorf("message %s has no text", id)
	}
	name := strings.TrimSpace(m.FirstName + " " + m.LastName)
	to := (&netmail.Address{Name: name, Address: m.Email}).String()
	msg, err := compose(id, from, to, m.Subject, created, m.Body)
	if err != nil {
		return outgoing{}, err
	}
	return outgoing{to: m.Email, msg: msg}, nil
}
