// Package keyring keeps the personal data in customer events readable only
// while the customer exists: crypto-shredding. Each customer has a random
// 256-bit data key; the personal fields of its profile events are sealed
// with it (AES-256-GCM) into schema version 2, and the key is stored in
// customer_keys wrapped with a key-encryption key (KEK) that never enters
// the database. Erasure destroys the wrapped key: the events keep their
// bytes (and hashes) and become unreadable.
//
// The keyring is the one place events are sealed and opened; every reader
// (commands, projections, history, audit) hands it the stored data and the
// wrapped key read beside it (WrappedKeySQL).
package keyring

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/assignment-ledger/ledger/eventstore"
)

// SealedSchema is the schema version of a sealed profile event:
// {"customer_id", "pii"} with pii the base64 of nonce‖ciphertext of the
// version 1 data's other fields.
const SealedSchema = 2

// SealedPartlySchema is the schema version of a sealed event that keeps
// the fields its type names in publicFields in clear beside customer_id:
// {"customer_id", those fields, "pii"}. Erasure then leaves what is not
// personal readable (a follow-up's ID, due time, recipients and author),
// for the history and the auditors. FollowUpScheduled events written
// before it are version 2 and stay so.
const SealedPartlySchema = 3

// publicFields are the fields of a sensitive event type that are not
// personal data, kept in clear when it is sealed (SealedPartlySchema).
var publicFields = map[string][]string{
	"FollowUpScheduled": {"follow_up_id", "due_at", "to", "created_by"},
}

// Sealed reports whether an event of this type and schema version is
// stored sealed, and is opened with its customer's key.
func Sealed(eventType string, schema int) bool {
	return (schema == SealedSchema || schema == SealedPartlySchema) && Sensitive(eventType)
}

// KeySize is the size of the KEK and of every data key.
const KeySize = 32

// Sensitive reports whether events of this type carry a customer's
// personal fields, and so are stored sealed.
func Sensitive(eventType string) bool {
	switch eventType {
	case "CustomerRegistered", "ClientInvited", "CustomerUpdated":
		return true
	case "FollowUpScheduled":
		// Its note is free text about the customer: shredded with it.
		return true
	}
	return false
}

// ErrWrongKEK means a wrapped key does not open with the configured KEK:
// the service runs with another KEK than the one that wrapped the keys.
var ErrWrongKEK = errors.New("a customer data key does not open with this KEK (is LEDGER_KEK the one the keys were wrapped with?)")

// Keyring seals and opens customer events. It holds the KEK and a MAC key
// derived from it for uniqueness claims; it has no mutable state.
type Keyring struct {
	kek cipher.AEAD
	mac []byte
	// req keys the idempotency records' request hashes (RequestMAC).
	req []byte
}

// New returns a keyring over a 32-byte KEK.
func New(kek []byte) (*Keyring, error) {
	if len(kek) != KeySize {
		return nil, fmt.Errorf("keyring: the KEK must be %d bytes, got %d", KeySize, len(kek))
	}
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, kek)
	m.Write([]byte("ledger unique claims v1"))
	r := hmac.New(sha256.New, kek)
	r.Write([]byte("ledger idempotency requests v1"))
	return &Keyring{kek: aead, mac: m.Sum(nil), req: r.Sum(nil)}, nil
}

// ParseKEK reads a KEK written as standard or URL-safe base64.
func ParseKEK(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("the KEK must be %d bytes of base64, got %d bytes", KeySize, len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("the KEK is not base64 (make one with: head -c 32 /dev/urandom | base64)")
}

// NewKEK returns a fresh random KEK in base64, for `make run` and tests.
func NewKEK() string {
	return base64.StdEncoding.EncodeToString(random(KeySize))
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return cipher.NewGCM(block)
}

func random(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return b
}

// ClaimPrefix begins every ClaimValue, telling it from a plaintext value.
const ClaimPrefix = "hmac:"

// ClaimValue is what unique_claims stores for a customer's e-mail or
// external ID: an HMAC of the (normalised) value under a key derived from
// the KEK, so the table is a uniqueness index that never holds the value.
func (k *Keyring) ClaimValue(kind, value string) string {
	m := hmac.New(sha256.New, k.mac)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return ClaimPrefix + hex.EncodeToString(m.Sum(nil))
}

// DataKey is one customer's data key, open, with its wrapped form.
type DataKey struct {
	CustomerID string
	Wrapped    []byte
	aead       cipher.AEAD
}

// NewDataKey makes a fresh data key for a new customer. Its wrapped form
// must be stored (Store) in the transaction that appends the customer's
// first event.
func (k *Keyring) NewDataKey(customerID string) (DataKey, error) {
	raw := random(KeySize)
	aead, err := newAEAD(raw)
	if err != nil {
		return DataKey{}, err
	}
	nonce := random(k.kek.NonceSize())
	wrapped := k.kek.Seal(nonce, nonce, raw, wrapAD(customerID))
	return DataKey{CustomerID: customerID, Wrapped: wrapped, aead: aead}, nil
}

// Unwrap opens a stored wrapped key.
func (k *Keyring) Unwrap(customerID string, wrapped []byte) (DataKey, error) {
	ns := k.kek.NonceSize()
	if len(wrapped) < ns {
		return DataKey{}, fmt.Errorf("customer %s: %w", customerID, ErrWrongKEK)
	}
	raw, err := k.kek.Open(nil, wrapped[:ns], wrapped[ns:], wrapAD(customerID))
	if err != nil {
		return DataKey{}, fmt.Errorf("customer %s: %w", customerID, ErrWrongKEK)
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return DataKey{}, err
	}
	return DataKey{CustomerID: customerID, Wrapped: wrapped, aead: aead}, nil
}

func wrapAD(customerID string) []byte { return []byte("ledger data key\x00" + customerID) }

// sealed is a sealed event's data: customer_id and pii, and in version 3
// the type's public fields (clear).
type sealed struct {
	CustomerID string `json:"customer_id"`
	PII        string `json:"pii"`
	clear      map[string]json.RawMessage
}

// parseSealed reads a sealed event's data of the given schema version.
func parseSealed(eventType string, schema int, data []byte) (sealed, error) {
	var s sealed
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("open %s: %w", eventType, err)
	}
	if schema == SealedPartlySchema {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(data, &fields); err != nil {
			return s, fmt.Errorf("open %s: %w", eventType, err)
		}
		s.clear = map[string]json.RawMessage{}
		for _, f := range publicFields[eventType] {
			if v, ok := fields[f]; ok {
				s.clear[f] = v
			}
		}
	}
	return s, nil
}

// Seal turns the version 1 data of a sensitive event of this customer into
// a sealed version: customer_id in clear, and the type's public fields
// (version 3, when it has any), every other field sealed. Events of other
// types are returned as they are.
func (dk DataKey) Seal(eventType string, schema int, data []byte) (int, []byte, error) {
	if !Sensitive(eventType) || schema != 1 {
		return schema, data, nil
	}
	if dk.aead == nil {
		return 0, nil, fmt.Errorf("seal %s: no data key", eventType)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return 0, nil, fmt.Errorf("seal %s: %w", eventType, err)
	}
	var id string
	if err := json.Unmarshal(fields["customer_id"], &id); err != nil || id != dk.CustomerID {
		return 0, nil, fmt.Errorf("seal %s: the event is not customer %s's", eventType, dk.CustomerID)
	}
	delete(fields, "customer_id")
	out := map[string]any{"customer_id": id}
	for _, f := range publicFields[eventType] {
		if v, ok := fields[f]; ok {
			out[f] = v
			delete(fields, f)
		}
	}
	plain, err := json.Marshal(fields)
	if err != nil {
		return 0, nil, fmt.Errorf("seal %s: %w", eventType, err)
	}
	nonce := random(dk.aead.NonceSize())
	out["pii"] = base64.StdEncoding.EncodeToString(dk.aead.Seal(nonce, nonce, plain, []byte(id)))
	b, err := json.Marshal(out)
	if err != nil {
		return 0, nil, fmt.Errorf("seal %s: %w", eventType, err)
	}
	if len(publicFields[eventType]) > 0 {
		return SealedPartlySchema, b, nil
	}
	return SealedSchema, b, nil
}

// Open returns an event's data as version 1 JSON, the shape the domain
// decodes and auditors read. A sealed event is opened with wrapped, its
// customer's key as read beside it (WrappedKeySQL); with no key (the
// customer was erased) it opens to {"customer_id", "erased": true} and
// erased is true. Other events are returned as they are.
func (k *Keyring) Open(eventType string, schema int, data, wrapped []byte) (int, []byte, bool, error) {
	if !Sealed(eventType, schema) {
		return schema, data, false, nil
	}
	s, err := parseSealed(eventType, schema, data)
	if err != nil {
		return 0, nil, false, err
	}
	var dk DataKey
	if wrapped != nil {
		var err error
		if dk, err = k.Unwrap(s.CustomerID, wrapped); err != nil {
			return 0, nil, false, err
		}
	}
	return dk.open(eventType, s)
}

// Open is Keyring.Open with the customer's key opened already; the zero
// DataKey opens an erased customer's events.
func (dk DataKey) Open(eventType string, schema int, data []byte) (int, []byte, bool, error) {
	if !Sealed(eventType, schema) {
		return schema, data, false, nil
	}
	s, err := parseSealed(eventType, schema, data)
	if err != nil {
		return 0, nil, false, err
	}
	return dk.open(eventType, s)
}

func (dk DataKey) open(eventType string, s sealed) (int, []byte, bool, error) {
	if dk.aead == nil {
		out, err := erasedData(s)
		return 1, out, true, err
	}
	if s.CustomerID != dk.CustomerID {
		return 0, nil, false, fmt.Errorf("open %s: the event is customer %s's, not %s's", eventType, s.CustomerID, dk.CustomerID)
	}
	ct, err := base64.StdEncoding.DecodeString(s.PII)
	ns := dk.aead.NonceSize()
	if err != nil || len(ct) < ns {
		return 0, nil, false, fmt.Errorf("open %s of customer %s: malformed pii", eventType, s.CustomerID)
	}
	plain, err := dk.aead.Open(nil, ct[:ns], ct[ns:], []byte(s.CustomerID))
	if err != nil {
		return 0, nil, false, fmt.Errorf("open %s of customer %s: %w", eventType, s.CustomerID, err)
	}
	// plain is the JSON object Seal marshalled, without customer_id, and
	// authenticated: put customer_id back in front rather than decode and
	// encode the object again (most of a rebuild's cost of opening).
	if len(plain) < 2 || plain[0] != '{' {
		return 0, nil, false, fmt.Errorf("open %s of customer %s: malformed pii", eventType, s.CustomerID)
	}
	id, err := json.Marshal(s.CustomerID)
	if err != nil {
		return 0, nil, false, err
	}
	out := make([]byte, 0, len(plain)+len(id)+16)
	out = append(append(append(out, `{"customer_id":`...), id...), ',')
	for _, f := range publicFields[eventType] {
		if v, ok := s.clear[f]; ok {
			k, _ := json.Marshal(f)
			out = append(append(append(append(out, k...), ':'), v...), ',')
		}
	}
	if string(plain) == "{}" {
		out[len(out)-1] = '}'
		return 1, out, false, nil
	}
	return 1, append(out, plain[1:]...), false, nil
}

// OpenStream opens, in place, the events of one stream as the event store
// read them (a customer's: its key is read once), for the readers of a
// whole stream (history). erased reports whether the stream holds
// CustomerErased.
func (k *Keyring) OpenStream(ctx context.Context, q Querier, streamID string, events []eventstore.Event) (erased bool, err error) {
	var keys map[string]DataKey
	for i := range events {
		e := &events[i]
		erased = erased || e.Type == "CustomerErased"
		if !Sealed(e.Type, e.SchemaVersion) {
			continue
		}
		if keys == nil {
			if keys, err = k.Load(ctx, q, []string{streamID}); err != nil {
				return false, err
			}
		}
		schema, data, _, err := keys[streamID].Open(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return false, fmt.Errorf("event %d: %w", e.Position, err)
		}
		e.SchemaVersion, e.Data = schema, data
	}
	return erased, nil
}

// ErasedData is what an erased customer's sealed profile event opens to:
// its ID and the flag, nothing personal.
func ErasedData(customerID string) ([]byte, error) {
	return erasedData(sealed{CustomerID: customerID})
}

// erasedData is what s opens to once its customer is erased: the ID, the
// public fields of a version 3 event and the flag.
func erasedData(s sealed) ([]byte, error) {
	out := map[string]any{"customer_id": s.CustomerID, "erased": true}
	for f, v := range s.clear {
		out[f] = v
	}
	return json.Marshal(out)
}

// WrappedKeySQL is the column a reader of events (aliased e) selects
// beside data to hand Open: the customer's wrapped key for a sealed event,
// NULL for any other (no lookup) or once the customer is erased.
const WrappedKeySQL = `CASE WHEN e.schema_version IN (2, 3) THEN (SELECT k.wrapped_key FROM customer_keys k WHERE k.customer_id = e.stream_id) END`

// Execer runs statements: a pgx.Tx, a pool, or the event store's Tx facade.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Querier reads: a pgx.Tx or a pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Store inserts new customers' wrapped keys.
func Store(ctx context.Context, q Execer, tenantID string, keys []DataKey) error {
	if len(keys) == 0 {
		return nil
	}
	ids := make([]string, len(keys))
	wrapped := make([][]byte, len(keys))
	for i, dk := range keys {
		ids[i], wrapped[i] = dk.CustomerID, dk.Wrapped
	}
	if _, err := q.Exec(ctx, qStoreKeys, tenantID, ids, wrapped); err != nil {
		return fmt.Errorf("store customer keys: %w", err)
	}
	return nil
}

const qStoreKeys = `INSERT INTO customer_keys (tenant_id, customer_id, wrapped_key)
SELECT $1, id, k FROM unnest($2::text[]::uuid[], $3::bytea[]) AS t(id, k)`

// Destroy erases customers' keys: the wrapped key becomes NULL and erased_at
// records when, so a tombstone tells "erased" from "never had a key".
func Destroy(ctx context.Context, q Execer, tenantID string, customerIDs []string) error {
	if len(customerIDs) == 0 {
		return nil
	}
	if _, err := q.Exec(ctx, qDestroyKeys, tenantID, customerIDs); err != nil {
		return fmt.Errorf("destroy customer keys: %w", err)
	}
	return nil
}

// qDestroyKeys leaves a tombstone also for a customer that never had a key
// (one of plaintext version 1 events), so encrypt-legacy seals its events
// with a key it throws away.
const qDestroyKeys = `INSERT INTO customer_keys (tenant_id, customer_id, wrapped_key, erased_at)
SELECT $1, id, NULL, now() FROM unnest($2::text[]::uuid[]) AS t(id)
ON CONFLICT (customer_id) DO UPDATE SET wrapped_key = NULL, erased_at = coalesce(customer_keys.erased_at, now())
WHERE customer_keys.tenant_id = excluded.tenant_id`

// Load reads the live keys of customers; erased and unknown customers are
// absent.
func (k *Keyring) Load(ctx context.Context, q Querier, customerIDs []string) (map[string]DataKey, error) {
	out := map[string]DataKey{}
	if len(customerIDs) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, qLoadKeys, customerIDs)
	if err != nil {
		return nil, fmt.Errorf("load customer keys: %w", err)
	}
	return k.collectKeys(rows)
}

func (k *Keyring) collectKeys(rows pgx.Rows) (map[string]DataKey, error) {
	out := map[string]DataKey{}
	defer rows.Close()
	for rows.Next() {
		var id string
		var wrapped []byte
		if err := rows.Scan(&id, &wrapped); err != nil {
			return nil, fmt.Errorf("load customer keys: %w", err)
		}
		dk, err := k.Unwrap(id, wrapped)
		if err != nil {
			return nil, err
		}
		out[id] = dk
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load customer keys: %w", err)
	}
	return out, nil
}

// QueueLoad is Load queued on b, to travel in a round trip with other
// statements; the function returned reads its result from the batch's
// results.
func (k *Keyring) QueueLoad(b *pgx.Batch, customerIDs []string) func(pgx.BatchResults) (map[string]DataKey, error) {
	b.Queue(qLoadKeys, customerIDs)
	return func(br pgx.BatchResults) (map[string]DataKey, error) {
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("load customer keys: %w", err)
		}
		return k.collectKeys(rows)
	}
}

const qLoadKeys = `SELECT customer_id::text, wrapped_key FROM customer_keys
WHERE customer_id = ANY($1::text[]::uuid[]) AND wrapped_key IS NOT NULL`

// Equal reports whether two keyrings share a KEK (tests).
func (k *Keyring) Equal(o *Keyring) bool { return bytes.Equal(k.mac, o.mac) }
