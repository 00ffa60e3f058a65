package keyring

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Sealed records: a customer's personal data kept outside its events (an
// e-mail's outbox payload, a command's stored idempotent answer) is sealed
// with the customer's data key too, so that erasure, which destroys the
// key, shreds every copy the database, its WAL and its backups hold, dead
// row versions included, and not only the live rows it deletes.
//
// A sealed record is the JSON object {"sealed_for": customer ID, "sealed":
// base64 of nonce‖ciphertext}; a reader may add fields of its own beside
// them (the relay merges a message's subject and body in).

// Purposes of sealed records: each seals under its own associated data, so
// a record of one kind cannot be passed off as another.
const (
	PurposeOutbox = "outbox"
	PurposeAnswer = "idempotent answer"
)

// SealedRecord is the stored form of a sealed record.
type SealedRecord struct {
	CustomerID string `json:"sealed_for"`
	Sealed     string `json:"sealed"`
}

// ErrErasedRecord means a sealed record's customer has no key any more: it
// was erased, and the record is shredded.
var ErrErasedRecord = errors.New("the record's customer was erased; its personal data is shredded")

// HasKey reports whether dk is a customer's open key (the zero DataKey, a
// customer without one, has none).
func (dk DataKey) HasKey() bool { return dk.aead != nil }

// SealRecord seals plain (any bytes, typically JSON) for purpose with the
// customer's key and returns the record's JSON.
func (dk DataKey) SealRecord(purpose string, plain []byte) ([]byte, error) {
	if dk.aead == nil {
		return nil, fmt.Errorf("seal %s: no data key", purpose)
	}
	nonce := random(dk.aead.NonceSize())
	ct := dk.aead.Seal(nonce, nonce, plain, recordAD(purpose, dk.CustomerID))
	out, err := json.Marshal(SealedRecord{CustomerID: dk.CustomerID, Sealed: base64.StdEncoding.EncodeToString(ct)})
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", purpose, err)
	}
	return out, nil
}

// ParseSealedRecord reads record as a sealed record; ok is false for
// anything else (a record stored in clear).
func ParseSealedRecord(record []byte) (SealedRecord, bool) {
	var r SealedRecord
	if len(record) == 0 || record[0] != '{' || json.Unmarshal(record, &r) != nil || r.CustomerID == "" || r.Sealed == "" {
		return SealedRecord{}, false
	}
	return r, true
}

// OpenRecord opens r, sealed for purpose, with its customer's key dk; the
// zero DataKey (the customer was erased) is ErrErasedRecord.
func (dk DataKey) OpenRecord(purpose string, r SealedRecord) ([]byte, error) {
	if dk.aead == nil {
		return nil, fmt.Errorf("open %s of customer %s: %w", purpose, r.CustomerID, ErrErasedRecord)
	}
	if r.CustomerID != dk.CustomerID {
		return nil, fmt.Errorf("open %s: the record is customer %s's, not %s's", purpose, r.CustomerID, dk.CustomerID)
	}
	ct, err := base64.StdEncoding.DecodeString(r.Sealed)
	ns := dk.aead.NonceSize()
	if err != nil || len(ct) < ns {
		return nil, fmt.Errorf("open %s of customer %s: malformed record", purpose, r.CustomerID)
	}
	plain, err := dk.aead.Open(nil, ct[:ns], ct[ns:], recordAD(purpose, r.CustomerID))
	if err != nil {
		return nil, fmt.Errorf("open %s of customer %s: %w", purpose, r.CustomerID, err)
	}
	return plain, nil
}

func recordAD(purpose, customerID string) []byte {
	return []byte("ledger sealed record\x00" + purpose + "\x00" + customerID)
}

// RequestMAC is what an idempotency record stores of a request: an HMAC,
// under a key derived from the KEK, of the request's hash. The plain
// SHA-256 of a body holding personal data is a fingerprint anyone with a
// copy of the table (a dump, a backup, a dead row version) could confirm a
// guessed person against; the keyed one needs the KEK.
func (k *Keyring) RequestMAC(requestHash []byte) []byte {
	m := hmac.New(sha256.New, k.req)
	m.Write(requestHash)
	return m.Sum(nil)
}
