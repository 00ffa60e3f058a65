package mail

import (
	"bytes"
	"fmt"
	netmail "net/mail"
	"strings"
	"text/template"
	"time"
)

// KindNotification is the outbox kind of the e-mail copy of a user's
// notification (notify_by_email).
const KindNotification = "notification"

// Notification is the outbox payload of a notification e-mail: the
// recipient and the notification as GET /v1/users/{id}/notifications shows
// it. It carries no personal data of the customer (only its ID, for the
// link): the recipient reads who it is in the console.
type Notification struct {
	Name       string    `json:"name"`
	Email      string    `json:"email"`
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	CustomerID string    `json:"customer_id,omitempty"`
	At         time.Time `json:"at"`
}

// notificationPhrases say what each known notification type means; an
// unknown type (one added later) is e-mailed with its type name, so every
// notification is e-mailed without code per type.
var notificationPhrases = map[string]string{
	"assigned":          "You were assigned to a customer.",
	"unassigned":        "You were unassigned from a customer.",
	"made_lead":         "You were made the lead of a customer's team.",
	"handed_over":       "A customer was handed over to you.",
	"rule_found_no_one": "An assignment rule found no one to assign a new customer to.",
	"follow_up_due":     "A follow-up on a customer is due.",
}

var notificationText = template.Must(template.New("notification").Parse(`Hello {{.Name}},

{{.Phrase}}
{{if .Link}}
    {{.Link}}
{{end}}
At {{.At}}. You get this e-mail because you chose to receive your notifications by
e-mail (notify_by_email); turn it off on your user to stop them.
`))

// NotificationSubject is the e-mail's subject line for a notification type.
func NotificationSubject(typ string) string {
	return "Ledger: " + strings.ReplaceAll(typ, "_", " ")
}

func (n Notification) render(id string, from *netmail.Address, baseURL string, created time.Time) (outgoing, error) {
	if n.Email == "" || n.Type == "" {
		return outgoing{}, fmt.Errorf("notification e-mail %s has no recipient or no type", id)
	}
	phrase, ok := notificationPhrases[n.Type]
	if !ok {
		phrase = fmt.Sprintf("You have a new notification (%s).", n.Type)
	}
	link := ""
	if n.CustomerID != "" {
		link = strings.TrimRight(baseURL, "/") + "/customers/" + n.CustomerID
	}
	var body bytes.Buffer
	if err := notificationText.Execute(&body, map[string]any{"Name": n.Name, "Phrase": phrase, "Link": link,
		"At": n.At.UTC().Format(time.RFC3339)}); err != nil {
		return outgoing{}, fmt.Errorf("render notification e-mail %s: %w", id, err)
	}
	to := (&netmail.Address{Name: n.Name, Address: n.Email}).String()
	msg, err := compose(id, from, to, NotificationSubject(n.Type), created, body.String())
	if err != nil {
		return outgoing{}, err
	}
	return outgoing{to: n.Email, msg: msg}, nil
}
