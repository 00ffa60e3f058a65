package commands

import (
	"context"
	"fmt"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/keyring"
	"github.com/assignment-ledger/ledger/mail"
)

// Personal data a command keeps outside the events is sealed with the
// customer's data key (keyring.SealRecord), as its profile events are:
// the stored idempotent answers that render a customer (its profile is in
// them) and the outbox payloads of e-mails to a customer. Erasure deletes
// or scrubs those rows, but PostgreSQL keeps a deleted or updated row's
// old version in the table's file until VACUUM reuses the space, and in
// its WAL and backups for longer: sealed, those copies are shredded with
// the key. A customer without a key (plaintext events written before
// sealing existed, until `ledger encrypt-legacy`) has its records in clear,
// like its events.

// sealAnswer seals a stored answer that renders customer dk.CustomerID;
// without a key it is stored as it is.
func sealAnswer(dk keyring.DataKey, answer []byte) ([]byte, error) {
	if !dk.HasKey() {
		return answer, nil
	}
	return dk.SealRecord(keyring.PurposeAnswer, answer)
}

// answerKey is the key an idempotent answer rendering customerID is sealed
// with, read in the command's transaction (none without a key to store).
func (c *Commands) answerKey(ctx context.Context, q keyring.Querier, idem *eventstore.Idempotency, customerID string) (keyring.DataKey, error) {
	if idem == nil {
		return keyring.DataKey{}, nil
	}
	keys, err := c.keys.Load(ctx, q, []string{customerID})
	if err != nil {
		return keyring.DataKey{}, err
	}
	return keys[customerID], nil
}

// openAnswer opens a stored answer sealed by sealAnswer; any other is
// returned as it is. One whose customer has no key any more (erased since;
// erasure scrubs such records, so only a race gets here) cannot be
// replayed: eventstore.ErrReplayUnavailable.
func (c *Commands) openAnswer(ctx context.Context, answer []byte) ([]byte, error) {
	r, ok := keyring.ParseSealedRecord(answer)
	if !ok {
		return answer, nil
	}
	keys, err := c.keys.Load(ctx, c.store.Pool(), []string{r.CustomerID})
	if err != nil {
		return nil, err
	}
	dk, ok := keys[r.CustomerID]
	if !ok {
		return nil, eventstore.ErrReplayUnavailable
	}
	plain, err := dk.OpenRecord(keyring.PurposeAnswer, r)
	if err != nil {
		return nil, fmt.Errorf("stored answer: %w", err)
	}
	return plain, nil
}

// sealEmail seals an outbox payload to customer dk.CustomerID; without a
// key it is stored as it is.
func sealEmail(dk keyring.DataKey, payload []byte) ([]byte, error) {
	if !dk.HasKey() {
		return payload, nil
	}
	return dk.SealRecord(keyring.PurposeOutbox, payload)
}

// OpenEmail is the relay's mail.Config.Open: it opens an outbox payload
// sealed by sealEmail with its customer's key. A customer without a key
// any more (erased: erasure deletes its outbox rows, so only a race gets
// here) or a payload that does not open fails the e-mail for good.
func (c *Commands) OpenEmail(ctx context.Context, tenantID, customerID string, payload []byte) ([]byte, error) {
	r, ok := keyring.ParseSealedRecord(payload)
	if !ok || r.CustomerID != customerID {
		return nil, &mail.PermanentError{Err: fmt.Errorf("e-mail to customer %s: not a payload sealed for it", customerID)}
	}
	keys, err := c.keys.Load(ctx, c.store.Pool(), []string{r.CustomerID})
	if err != nil {
		return nil, err
	}
	dk, ok := keys[r.CustomerID]
	if !ok {
		return nil, &mail.PermanentError{Err: fmt.Errorf("e-mail to customer %s: %w", customerID, keyring.ErrErasedRecord)}
	}
	plain, err := dk.OpenRecord(keyring.PurposeOutbox, r)
	if err != nil {
		return nil, &mail.PermanentError{Err: err}
	}
	return plain, nil
}
