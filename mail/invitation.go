package mail

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"text/template"
	"time"
)

// KindInvitation is the outbox kind of an invitation e-mail.
const KindInvitation = "invitation"

// Invitation is the outbox payload of an invitation e-mail: everything the
// e-mail says, as of the invitation, so a retry sends the same message.
type Invitation struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	// Token is the invitation's secret; the link is <base URL>/invitations/<token>.
	// The relay erases it from the row once the e-mail is sent or failed.
	Token string       `json:"token"`
	Team  []TeamMember `json:"team"`
}

// TeamMember is one member of the client's team, as the e-mail names them.
type TeamMember struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Lead  bool   `json:"lead,omitempty"`
}

// outgoing is a rendered e-mail.
type outgoing struct {
	to  string
	msg []byte
}

var invitationText = template.Must(template.New("invitation").Parse(`Hello{{with .Name}} {{.}}{{end}},

You are invited to work with your team. To accept the invitation, open this link:

{{.Link}}

Your team, whom you can write to directly:
{{range .Team}}
  - {{.Name}} <{{.Email}}>{{if .Lead}} (team lead){{end}}{{end}}
`))

// render makes the invitation's e-mail. Everything in it is fixed by the
// outbox row (id, payload, created), so every attempt sends the same bytes
// under the same Message-ID: a recipient's system can recognise a repeat.
func (inv Invitation) render(id string, from *netmail.Address, baseURL string, created time.Time) (outgoing, error) {
	if inv.Token == "" {
		return outgoing{}, fmt.Errorf("invitation %s has no token", id)
	}
	name := strings.TrimSpace(inv.FirstName + " " + inv.LastName)
	var body bytes.Buffer
	err := invitationText.Execute(&body, map[string]any{
		"Name": inv.FirstName, "Link": strings.TrimRight(baseURL, "/") + "/invitations/" + inv.Token, "Team": inv.Team,
	})
	if err != nil {
		return outgoing{}, fmt.Errorf("render invitation %s: %w", id, err)
	}
	to := (&netmail.Address{Name: name, Address: inv.Email}).String()
	msg, err := compose(id, from, to, "Your invitation", created, body.String())
	if err != nil {
		return outgoing{}, err
	}
	return outgoing{to: inv.Email, msg: msg}, nil
}

// compose builds a plain-text UTF-8 message. Header values come from
// net/mail and mime, which encode what is not plain ASCII, so no value can
// break a header line.
func compose(id string, from *netmail.Address, to, subject string, date time.Time, text string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", from.String())
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&b, "Date: %s\r\n", date.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: %s\r\n", MessageID(id, from.Address))
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(text, "\n", "\r\n"))); err != nil {
		return nil, fmt.Errorf("encode message %s: %w", id, err)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("encode message %s: %w", id, err)
	}
	return b.Bytes(), nil
}

// MessageID is the Message-ID of the outbox message id sent from from:
// the same on every attempt.
func MessageID(id, from string) string {
	return "<" + id + "@" + domainOf(from) + ">"
}

// render renders an outbox row of any kind.
func render(kind, id string, payload []byte, from *netmail.Address, baseURL string, created time.Time) (outgoing, error) {
	switch kind {
	case KindInvitation:
		var inv Invitation
		if err := json.Unmarshal(payload, &inv); err != nil {
			return outgoing{}, fmt.Errorf("decode invitation %s: %w", id, err)
		}
		return inv.render(id, from, baseURL, created)
	case KindMessage:
		var m Message
		if err := json.Unmarshal(payload, &m); err != nil {
			return outgoing{}, fmt.Errorf("decode message %s: %w", id, err)
		}
		return m.render(id, from, created)
	case KindCheckpoint:
		var c Checkpoint
		if err := json.Unmarshal(payload, &c); err != nil {
			return outgoing{}, fmt.Errorf("decode checkpoint e-mail %s: %w", id, err)
		}
		return c.render(id, from, baseURL, created)
	case KindNotification:
		var n Notification
		if err := json.Unmarshal(payload, &n); err != nil {
			return outgoing{}, fmt.Errorf("decode notification e-mail %s: %w", id, err)
		}
		return n.render(id, from, baseURL, created)
	}
	return outgoing{}, fmt.Errorf("outbox message %s: unknown kind %q", id, kind)
}
