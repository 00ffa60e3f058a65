package ledgerlog

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/keyring"
)

// An audit export with proofs (GET /v1/audit?proofs=true, NDJSON) is a
// header line, the checkpoint the proofs are against, then one line per
// event of the checkpoint's tree. VerifyExport checks one with no database.

// ExportHeader is the first line: the checkpoint, and whether the export
// is of the whole log up to it (no filter), so that no leaf may be missing.
type ExportHeader struct {
	Signed
	Complete bool `json:"complete"`
}

// ExportLine is one event of an export with proofs.
type ExportLine struct {
	Position      int64           `json:"position"`
	StreamID      string          `json:"stream_id"`
	Version       int64           `json:"version"`
	Type          string          `json:"type"`
	At            time.Time       `json:"at"`
	Actor         json.RawMessage `json:"actor,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	Data          json.RawMessage `json:"data"`
	Erased        bool            `json:"erased,omitempty"`
	LeafIndex     int64           `json:"leaf_index"`
	// Hash is the event's stored hash, base64; Hashed the exact bytes it
	// is the SHA-256 of (see ParseHashed), base64.
	Hash   string `json:"hash"`
	Hashed string `json:"hashed"`
	// Inclusion proves leaf LeafIndex in the checkpoint's tree.
	Inclusion []string `json:"inclusion"`
}

// HashedEvent is what an event's hash covers: the stream's previous hash
// and the event's fields, each length-prefixed (big-endian uint64) or a
// big-endian int64: tenant, stream, version, type, schema version,
// recorded-at (microseconds since the epoch), data and metadata (canonical
// JSON).
type HashedEvent struct {
	Prev           []byte
	TenantID       string
	StreamID       string
	Version        int64
	Type           string
	SchemaVersion  int64
	RecordedAtUS   int64
	Data, Metadata []byte
}

var errHashedShort = errors.New("hashed bytes end early")

// ParseHashed reads an event's hashed bytes.
func ParseHashed(b []byte) (HashedEvent, error) {
	var h HashedEvent
	if len(b) < sha256.Size {
		return h, errHashedShort
	}
	h.Prev, b = b[:sha256.Size], b[sha256.Size:]
	num := func() (int64, error) {
		if len(b) < 8 {
			return 0, errHashedShort
		}
		v := int64(binary.BigEndian.Uint64(b))
		b = b[8:]
		return v, nil
	}
	field := func() ([]byte, error) {
		n, err := num()
		if err != nil {
			return nil, err
		}
		if n < 0 || n > int64(len(b)) {
			return nil, errHashedShort
		}
		f := b[:n]
		b = b[n:]
		return f, nil
	}
	var err error
	var tenant, stream, typ []byte
	if tenant, err = field(); err == nil {
		if stream, err = field(); err == nil {
			if h.Version, err = num(); err == nil {
				if typ, err = field(); err == nil {
					if h.SchemaVersion, err = num(); err == nil {
						if h.RecordedAtUS, err = num(); err == nil {
							if h.Data, err = field(); err == nil {
								h.Metadata, err = field()
							}
						}
					}
				}
			}
		}
	}
	if err != nil {
		return h, err
	}
	if len(b) != 0 {
		return h, errors.New("hashed bytes run on past the metadata")
	}
	h.TenantID, h.StreamID, h.Type = string(tenant), string(stream), string(typ)
	return h, nil
}

// ExportReport says what an intact export held.
type ExportReport struct {
	Origin   string
	TreeSize int64
	Events   int
	// Sealed counts the events whose personal fields are sealed in the
	// hashed bytes: checked on their IDs only.
	Sealed int
	// Complete is set when the export holds every leaf of its tree, as
	// counted here (whatever its header says; a complete export missing
	// one fails).
	Complete bool
}

// ExportError names the line of an export that does not verify.
type ExportError struct {
	Line     int
	Position int64
	Reason   string
}

func (e *ExportError) Error() string {
	switch {
	case e.Position != 0:
		return fmt.Sprintf("line %d (event position %d): %s", e.Line, e.Position, e.Reason)
	case e.Line != 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return e.Reason
}

// VerifyExport checks an audit export with proofs against the verifier
// key: the checkpoint's signature; for every event, that its hash is the
// SHA-256 of its hashed bytes, that its leaf is in the checkpoint's tree,
// and that its readable fields say what the hashed bytes say (sealed
// events on their customer ID); for a complete export, that every leaf of
// the tree is there exactly once.
func VerifyExport(r io.Reader, vkey string) (ExportReport, error) {
	var rep ExportReport
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return rep, err
		}
		return rep, &ExportError{Line: 1, Reason: "empty export: want the checkpoint line first"}
	}
	var head ExportHeader
	if err := json.Unmarshal(sc.Bytes(), &head); err != nil || head.Note == "" {
		return rep, &ExportError{Line: 1, Reason: "the first line is not a checkpoint"}
	}
	cp, err := Open([]byte(head.Note), vkey)
	if err != nil {
		return rep, &ExportError{Line: 1, Reason: err.Error()}
	}
	tenant, err := TenantOf(cp.Origin)
	if err != nil {
		return rep, &ExportError{Line: 1, Reason: err.Error()}
	}
	// The header's own fields are only a readable copy of the signed note.
	if head.Origin != cp.Origin || head.TreeSize != cp.Size || head.RootHash != base64.StdEncoding.EncodeToString(cp.Root[:]) {
		return rep, &ExportError{Line: 1, Reason: fmt.Sprintf("the header says origin %q, tree size %d, root hash %s; its signed checkpoint %q, %d, %s",
			head.Origin, head.TreeSize, head.RootHash, cp.Origin, cp.Size, base64.StdEncoding.EncodeToString(cp.Root[:]))}
	}
	rep.Origin, rep.TreeSize = cp.Origin, cp.Size
	// The export lists events by position and leaves follow commit order,
	// which differ when transactions overlap: lines may come in any order,
	// but no leaf twice (seen: one bit a leaf of the signed tree).
	seen := make([]uint64, (cp.Size+63)/64)
	for n := 2; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		// A name repeated in an object would show readers that keep the
		// first value something else than this check reads (the last).
		if !jsontext.Value(sc.Bytes()).IsValid() {
			return rep, &ExportError{Line: n, Reason: "not an event line: invalid JSON or a name repeated in an object"}
		}
		var l ExportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return rep, &ExportError{Line: n, Reason: "not an event line: " + err.Error()}
		}
		bad := func(format string, args ...any) error {
			return &ExportError{Line: n, Position: l.Position, Reason: fmt.Sprintf(format, args...)}
		}
		hash, err1 := base64.StdEncoding.DecodeString(l.Hash)
		hashed, err2 := base64.StdEncoding.DecodeString(l.Hashed)
		if err1 != nil || err2 != nil {
			return rep, bad("hash or hashed is not base64")
		}
		if sum := sha256.Sum256(hashed); !bytes.Equal(sum[:], hash) {
			return rep, bad("its hash is not the SHA-256 of its hashed bytes")
		}
		if l.LeafIndex < 0 || l.LeafIndex >= cp.Size {
			return rep, bad("leaf index %d is outside the checkpoint's tree of %d", l.LeafIndex, cp.Size)
		}
		if w, bit := l.LeafIndex/64, uint64(1)<<(l.LeafIndex%64); seen[w]&bit != 0 {
			return rep, bad("leaf index %d appears on an earlier line too", l.LeafIndex)
		} else {
			seen[w] |= bit
		}
		proof := make(tlog.RecordProof, len(l.Inclusion))
		for i, s := range l.Inclusion {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil || len(b) != tlog.HashSize {
				return rep, bad("inclusion proof hash %d is not a base64 SHA-256", i)
			}
			proof[i] = tlog.Hash(b)
		}
		if err := tlog.CheckRecord(proof, cp.Size, cp.Root, l.LeafIndex, tlog.RecordHash(hash)); err != nil {
			return rep, bad("not leaf %d of the checkpoint's tree: %v", l.LeafIndex, err)
		}
		h, err := ParseHashed(hashed)
		if err != nil {
			return rep, bad("hashed bytes: %v", err)
		}
		switch {
		case h.TenantID != tenant:
			return rep, bad("the hashed event is the tenant %s's, the checkpoint tenant %s's", h.TenantID, tenant)
		case h.StreamID != l.StreamID || h.Version != l.Version || h.Type != l.Type:
			return rep, bad("says %s version %d of stream %s, the hashed bytes %s version %d of stream %s",
				l.Type, l.Version, l.StreamID, h.Type, h.Version, h.StreamID)
		case h.RecordedAtUS != l.At.UnixMicro():
			return rep, bad("says it was recorded at %s, the hashed bytes at %s", l.At.UTC().Format(time.RFC3339Nano),
				time.UnixMicro(h.RecordedAtUS).UTC().Format(time.RFC3339Nano))
		}
		if reason := sameMetadata(h.Metadata, l); reason != "" {
			return rep, bad("%s", reason)
		}
		if keyring.Sealed(h.Type, int(h.SchemaVersion)) {
			// Personal fields sealed: what the sealed event keeps in clear
			// (the customer ID, and a version 3 event's public fields) is
			// in both.
			if field, ok := sameClearFields(h.Data, l.Data); !ok {
				return rep, bad("its %s is not the sealed event's", field)
			}
			// The rest is sealed: it can only be fields a sealed event of
			// the type has, whose values no hash lets anyone check.
			if field, ok := onlyFieldsOf(h.Type, l.Data); !ok {
				return rep, bad("its data has %s, which no %s event has", field, h.Type)
			}
			rep.Sealed++
		} else if !sameJSON(h.Data, l.Data) {
			return rep, bad("its data is not the data its hash covers")
		}
		rep.Events++
	}
	if err := sc.Err(); err != nil {
		return rep, err
	}
	missing := int64(-1) // the first leaf no line holds
	for i := int64(0); i < cp.Size; i++ {
		if seen[i/64]&(1<<(i%64)) == 0 {
			missing = i
			break
		}
	}
	if head.Complete && missing >= 0 {
		return rep, &ExportError{Reason: fmt.Sprintf("leaf %d of the checkpoint's %d is missing from a complete export", missing, cp.Size)}
	}
	// Counted, not taken from the unsigned header: a range that covers the
	// whole log is complete too.
	rep.Complete = missing < 0
	return rep, nil
}

// hashedMetadata is the part of an event's metadata an export line shows.
type hashedMetadata struct {
	Actor struct {
		UserID string `json:"user_id"`
		Name   string `json:"name"`
	} `json:"actor"`
	CorrelationID string `json:"correlation_id"`
}

// sameMetadata says how the line's actor and correlation ID differ from
// the metadata its hash covers ("" when they do not): who caused an event
// is what an audit proves, so it is checked like the data.
func sameMetadata(metadata []byte, l ExportLine) string {
	var h, shown hashedMetadata
	if err := json.Unmarshal(metadata, &h); err != nil {
		return "its hashed metadata is not JSON: " + err.Error()
	}
	if len(l.Actor) > 0 && json.Unmarshal(l.Actor, &shown.Actor) != nil {
		return "its actor is not an object of user_id and name"
	}
	if shown.Actor != h.Actor {
		return fmt.Sprintf("says its actor is %q (%s), the hashed metadata %q (%s)", shown.Actor.Name, shown.Actor.UserID, h.Actor.Name, h.Actor.UserID)
	}
	if l.CorrelationID != h.CorrelationID {
		return fmt.Sprintf("says its correlation ID is %q, the hashed metadata %q", l.CorrelationID, h.CorrelationID)
	}
	return ""
}

// sameClearFields reports whether every field a sealed event's data keeps
// in clear (all but "pii") has the same value in the exported data; field
// names the first that differs. The customer ID must be there.
func sameClearFields(sealedData, exported []byte) (field string, ok bool) {
	var hs, ls map[string]json.RawMessage
	if json.Unmarshal(sealedData, &hs) != nil || json.Unmarshal(exported, &ls) != nil {
		return "data", false
	}
	if _, ok := hs["customer_id"]; !ok {
		return "customer_id", false
	}
	for _, f := range slices.Sorted(maps.Keys(hs)) {
		if f != "pii" && !sameJSON(hs[f], ls[f]) {
			return f, false
		}
	}
	return "", true
}

// onlyFieldsOf reports whether every field of data is one an event of the
// type has (or erased, the flag of an erased customer's); field names the
// first that is not.
func onlyFieldsOf(eventType string, data []byte) (field string, ok bool) {
	names, ok := domain.FieldNames(eventType)
	if !ok {
		return "type " + eventType, false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		return "data", false
	}
	for _, f := range slices.Sorted(maps.Keys(fields)) {
		if f != "erased" && !slices.Contains(names, f) {
			return strconv.Quote(f), false
		}
	}
	return "", true
}

func sameJSON(a, b []byte) bool {
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
