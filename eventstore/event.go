// Package eventstore is the PostgreSQL event store: appends with expected
// versions, idempotency keys and cross-stream claims in one transaction, a
// SHA-256 hash chain per stream, and reads in the order subscribers need.
package eventstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Expected versions with a special meaning. Any other non-negative value is
// the exact version the stream must be at.
const (
	// Any appends whatever the stream's version (creating it if needed).
	Any int64 = -1
	// NoStream requires that the stream does not exist yet.
	NoStream int64 = 0
)

// NotifyChannel is the LISTEN/NOTIFY channel an append signals on commit.
const NotifyChannel = "ledger_events"

// Actor is who caused an event.
type Actor struct {
	UserID string `json:"user_id,omitempty"`
	Name   string `json:"name,omitempty"`
}

// Metadata travels with every event. Its JSON is part of the audit contract.
type Metadata struct {
	Actor          Actor  `json:"actor"`
	CorrelationID  string `json:"correlation_id,omitempty"`
	CausationID    string `json:"causation_id,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// EventData is an event to append: its type, schema version and JSON data.
type EventData struct {
	Type          string
	SchemaVersion int
	Data          []byte
}

// Event is an event as recorded.
type Event struct {
	Position      int64
	TransactionID uint64
	TenantID      string
	StreamID      string
	Version       int64
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
	RecordedAt    time.Time
	PrevHash      []byte
	Hash          []byte

	// rawMetadata is the stored metadata as read, so verification hashes
	// exactly what is there, including fields this code does not know.
	rawMetadata []byte
}

// Cursor is a point in subscriber order, (transaction id, position).
type Cursor struct {
	TransactionID uint64
	Position      int64
}

// Less reports whether c comes before o in subscriber order.
func (c Cursor) Less(o Cursor) bool {
	if c.TransactionID != o.TransactionID {
		return c.TransactionID < o.TransactionID
	}
	return c.Position < o.Position
}

// ErrVersionMismatch is matched by every *VersionMismatchError.
var ErrVersionMismatch = errors.New("stream version mismatch")

// VersionMismatchError says a stream was not at the expected version.
type VersionMismatchError struct {
	StreamID string
	Expected int64
	Actual   int64
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("stream %s: expected version %d, found %d", e.StreamID, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrVersionMismatch) true.
func (e *VersionMismatchError) Is(target error) bool { return target == ErrVersionMismatch }

// ErrIdempotencyKeyReused means the key was first used with a different request.
var ErrIdempotencyKeyReused = errors.New("idempotency key reused with a different request")

// ErrClaimTaken is matched by every *ClaimTakenError.
var ErrClaimTaken = errors.New("unique value already claimed")

// ClaimTakenError says another owner already holds a unique value.
type ClaimTakenError struct {
	Kind  string
	Value string
	Owner string
}

func (e *ClaimTakenError) Error() string {
	return fmt.Sprintf("%s %q is already taken", e.Kind, e.Value)
}

// Is makes errors.Is(err, ErrClaimTaken) true.
func (e *ClaimTakenError) Is(target error) bool { return target == ErrClaimTaken }

// ErrNotFound is an ID that does not exist (or belongs to another tenant,
// which to a caller is the same): HTTP 404. The commands and the read
// models answer it too, so an error has one "not found" whatever layer
// found it.
var ErrNotFound = errors.New("not found")
