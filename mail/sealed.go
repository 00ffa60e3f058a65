package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/assignment-ledger/ledger/eventstore"
)

// Sealed payloads. The commands seal an e-mail's payload (the recipient's
// name and address, an invitation's token and team) with the customer's
// data key, so the outbox keeps no personal data in clear, dead row
// versions included: erasure destroys the key. The stored payload is then
// {"sealed_for": customer ID, "sealed": ciphertext}, and the relay's query
// may add fields beside them (a message's subject and body).

// sealedFields are the fields of a sealed payload that Config.Open reads.
var sealedFields = []string{"sealed_for", "sealed"}

// open returns row's payload ready to render: as it is when not sealed;
// else opened with Config.Open and merged with the fields stored beside the
// sealed ones.
func (r *Relay) open(ctx context.Context, row eventstore.DueOutbox) ([]byte, error) {
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(row.Payload, &outer); err != nil {
		return nil, &PermanentError{Err: fmt.Errorf("outbox message %s: payload: %w", row.ID, err)}
	}
	if _, sealed := outer["sealed"]; !sealed {
		return row.Payload, nil
	}
	if r.cfg.Open == nil {
		return nil, &PermanentError{Err: fmt.Errorf("outbox message %s: sealed payload and no keyring to open it", row.ID)}
	}
	plain, err := r.cfg.Open(ctx, row.TenantID, row.CustomerID, row.Payload)
	if err != nil {
		var perm *PermanentError
		if errors.As(err, &perm) {
			return nil, err
		}
		return nil, fmt.Errorf("outbox message %s: open payload: %w", row.ID, err)
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(plain, &inner); err != nil {
		return nil, &PermanentError{Err: fmt.Errorf("outbox message %s: opened payload: %w", row.ID, err)}
	}
	for _, f := range sealedFields {
		delete(outer, f)
	}
	for k, v := range outer {
		inner[k] = v
	}
	out, err := json.Marshal(inner)
	if err != nil {
		return nil, &PermanentError{Err: fmt.Errorf("outbox message %s: %w", row.ID, err)}
	}
	return out, nil
}
