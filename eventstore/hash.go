package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// genesisHash is the prev_hash of a stream's first event.
var genesisHash = make([]byte, sha256.Size)

// canonicalJSON re-encodes JSON so that the bytes hashed at append time can be
// derived again from what jsonb hands back (jsonb reorders keys and drops
// whitespace; numbers keep their literal text through json.Number).
func canonicalJSON(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return out, nil
}

// hashInput is everything an event's hash covers. The global position is
// deliberately left out: it is assigned by the database after hashing.
type hashInput struct {
	TenantID      string
	StreamID      string
	Version       int64
	Type          string
	SchemaVersion int
	RecordedAtUS  int64
	Data          []byte // canonical
	Metadata      []byte // canonical
}

// chainHash computes sha256(prev_hash || canonical event bytes). Fields are
// length-prefixed so no two different events share an encoding.
func chainHash(prev []byte, in hashInput) []byte {
	h := sha256.New()
	h.Write(prev)
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	num := func(v int64) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	field([]byte(in.TenantID))
	field([]byte(in.StreamID))
	num(in.Version)
	field([]byte(in.Type))
	num(int64(in.SchemaVersion))
	num(in.RecordedAtUS)
	field(in.Data)
	field(in.Metadata)
	return h.Sum(nil)
}

// ChainHash is the hash an event gets when it is appended after prev (the
// hash of the stream's previous event; nil for a stream's first event):
// what Verify recomputes. e.Position, e.TransactionID, e.Metadata and the
// hashes are not read; metadata is the event's stored metadata JSON. It
// is for writers that bypass Append on purpose, such as the benchmark's
// COPY generator, whose stores must pass Verify like real ones.
func ChainHash(prev []byte, e Event, metadata []byte) ([]byte, error) {
	if prev == nil {
		prev = genesisHash
	}
	e.rawMetadata = metadata
	return recomputeHash(prev, e)
}
