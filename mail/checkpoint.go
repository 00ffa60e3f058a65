package mail

import (
	"bytes"
	"fmt"
	netmail "net/mail"
	"strings"
	"text/template"
	"time"
)

// KindCheckpoint is the outbox kind of the daily e-mail that gives an
// auditor the tenant's latest signed checkpoint of the ledger log: a copy
// kept outside the database, which its operator cannot take back.
const KindCheckpoint = "checkpoint"

// Checkpoint markers enclose the signed note in the e-mail's text, so an
// auditor (or a script) saves exactly the note.
const (
	CheckpointBegin = "-----BEGIN LEDGER CHECKPOINT-----"
	CheckpointEnd   = "-----END LEDGER CHECKPOINT-----"
)

// Checkpoint is the outbox payload of a checkpoint e-mail: the recipient,
// the day it is the checkpoint of, and the signed note as served by
// GET /v1/ledger/checkpoint.
type Checkpoint struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Day      string `json:"day"`
	Origin   string `json:"origin"`
	TreeSize int64  `json:"tree_size"`
	Note     string `json:"note"`
	// VerifierKey is the key the note verifies with, as
	// GET /v1/ledger/public-key served it when the e-mail was queued.
	VerifierKey string `json:"verifier_key"`
}

var checkpointText = template.Must(template.New("checkpoint").Parse(`Hello {{.Name}},

This is the daily checkpoint of the ledger log {{.Origin}} for {{.Day}}: a statement,
signed by the service, that the tenant's first {{.TreeSize}} events are exactly these. Keep
this e-mail: no one who runs the database can take it back, and any later rewrite,
removal, insertion or reordering of those events fails the check below.

To check the ledger against it, save the lines between the markers (not the
markers themselves) as a file and run, with read access to the database:

    ledger verify --checkpoint FILE --key KEY

KEY is the service's verifier key, {{.KeyURL}}; when this e-mail was sent it was

    {{.VerifierKey}}

Compare it with the copy you keep: a checkpoint is only as good as the key you check it with.

{{.Begin}}
{{.Note}}{{.End}}
`))

// render makes the auditor's e-mail.
func (c Checkpoint) render(id string, from *netmail.Address, baseURL string, created time.Time) (outgoing, error) {
	if c.Email == "" || c.Note == "" {
		return outgoing{}, fmt.Errorf("checkpoint e-mail %s has no recipient or no note", id)
	}
	var body bytes.Buffer
	err := checkpointText.Execute(&body, map[string]any{
		"Name": c.Name, "Origin": c.Origin, "Day": c.Day, "TreeSize": c.TreeSize, "VerifierKey": c.VerifierKey,
		"KeyURL": strings.TrimRight(baseURL, "/") + "/v1/ledger/public-key", "Begin": CheckpointBegin,
		"Note": c.Note, "End": CheckpointEnd,
	})
	if err != nil {
		return outgoing{}, fmt.Errorf("render checkpoint e-mail %s: %w", id, err)
	}
	to := (&netmail.Address{Name: c.Name, Address: c.Email}).String()
	msg, err := compose(id, from, to, fmt.Sprintf("Ledger checkpoint for %s: %d events", c.Day, c.TreeSize), created, body.String())
	if err != nil {
		return outgoing{}, err
	}
	return outgoing{to: c.Email, msg: msg}, nil
}
