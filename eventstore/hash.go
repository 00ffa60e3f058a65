package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"
)

// genesisHash is the prev_hash of a stream's first event.
var genesisHash = make([]byte, sha256.Size)

// canonicalJSON re-encodes JSON so that the bytes hashed at append time can be
// derived again from what jsonb hands back (jsonb reorders keys and drops
// whitespace; numbers keep their literal text through json.Number).
//
// The canonical form is what encoding/json makes of the document decoded
// into any: no whitespace, object keys sorted, strings escaped its way.
// Decoding into any and re-encoding every event was a sixth of the command
// unit's CPU (and about half of ledger verify's), so fastCanonical produces the
// same bytes directly for the documents the service writes and jsonb
// returns; anything it is not sure of takes the definition.
func canonicalJSON(b []byte) ([]byte, error) {
	if out, ok := fastCanonical(b); ok {
		return out, nil
	}
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

// fastCanonical is the canonical form of b when b is one JSON value (with
// whitespace around and between its tokens, as JSON allows) whose strings
// encoding/json writes as they are: no escape sequences, no control
// characters, none of the <, > and & it escapes, valid UTF-8 without
// U+2028 and U+2029. Objects with a repeated key (the decoder keeps the
// last) and documents nested deeper than maxCanonicalDepth are refused too.
// Numbers are kept as written, as json.Number keeps them.
func fastCanonical(b []byte) ([]byte, bool) {
	c := canonicalizer{b: b}
	out, ok := c.value(make([]byte, 0, len(b)), 0)
	c.space()
	return out, ok && c.i == len(b)
}

// maxCanonicalDepth bounds fastCanonical's recursion.
const maxCanonicalDepth = 64

type canonicalizer struct {
	b []byte
	i int
}

func (c *canonicalizer) space() {
	for c.i < len(c.b) && (c.b[c.i] == ' ' || c.b[c.i] == '\t' || c.b[c.i] == '\n' || c.b[c.i] == '\r') {
		c.i++
	}
}

// value appends the canonical form of the value at c.i to dst.
func (c *canonicalizer) value(dst []byte, depth int) ([]byte, bool) {
	c.space()
	if c.i >= len(c.b) || depth > maxCanonicalDepth {
		return nil, false
	}
	switch ch := c.b[c.i]; {
	case ch == '{':
		return c.object(dst, depth)
	case ch == '[':
		c.i++
		dst = append(dst, '[')
		c.space()
		if c.i < len(c.b) && c.b[c.i] == ']' {
			c.i++
			return append(dst, ']'), true
		}
		for {
			var ok bool
			if dst, ok = c.value(dst, depth+1); !ok {
				return nil, false
			}
			c.space()
			if c.i >= len(c.b) {
				return nil, false
			}
			c.i++
			switch c.b[c.i-1] {
			case ']':
				return append(dst, ']'), true
			case ',':
				dst = append(dst, ',')
			default:
				return nil, false
			}
		}
	}
	s, ok := c.scalar()
	return append(dst, s...), ok
}

// scalar returns the string, number or literal at c.i, which is its own
// canonical form.
func (c *canonicalizer) scalar() ([]byte, bool) {
	start := c.i
	switch ch := c.b[c.i]; {
	case ch == '"':
		return c.str()
	case ch == '-' || ('0' <= ch && ch <= '9'):
		if !c.number() {
			return nil, false
		}
		return c.b[start:c.i], true
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(c.b[c.i:], []byte(lit)) {
			c.i += len(lit)
			return c.b[start:c.i], true
		}
	}
	return nil, false
}

// object appends the canonical form of the object at c.i: its members
// sorted by key, each value canonical.
func (c *canonicalizer) object(dst []byte, depth int) ([]byte, bool) {
	type member struct{ key, value []byte }
	var buf [8]member
	members := buf[:0]
	c.i++ // {
	c.space()
	if c.i < len(c.b) && c.b[c.i] == '}' {
		c.i++
		return append(dst, "{}"...), true
	}
	for {
		c.space()
		key, ok := c.str()
		if !ok {
			return nil, false
		}
		c.space()
		if c.i >= len(c.b) || c.b[c.i] != ':' {
			return nil, false
		}
		c.i++
		c.space()
		var v []byte
		switch {
		case c.i >= len(c.b):
			return nil, false
		case c.b[c.i] == '{' || c.b[c.i] == '[':
			v, ok = c.value(nil, depth+1)
		default:
			v, ok = c.scalar() // its own canonical form: no copy
		}
		if !ok {
			return nil, false
		}
		members = append(members, member{key, v})
		c.space()
		if c.i >= len(c.b) {
			return nil, false
		}
		c.i++
		if c.b[c.i-1] == '}' {
			break
		}
		if c.b[c.i-1] != ',' {
			return nil, false
		}
	}
	// Keys sort as the strings they stand for: without escapes, the bytes
	// between the quotes.
	inner := func(k []byte) []byte { return k[1 : len(k)-1] }
	slices.SortFunc(members, func(x, y member) int { return bytes.Compare(inner(x.key), inner(y.key)) })
	dst = append(dst, '{')
	for k, m := range members {
		if k > 0 {
			if bytes.Equal(inner(members[k-1].key), inner(m.key)) {
				return nil, false // repeated: the decoder keeps the last one
			}
			dst = append(dst, ',')
		}
		dst = append(append(append(dst, m.key...), ':'), m.value...)
	}
	return append(dst, '}'), true
}

// str returns the string at c.i, quotes included, when encoding/json
// writes it byte for byte as it is.
func (c *canonicalizer) str() ([]byte, bool) {
	if c.i >= len(c.b) || c.b[c.i] != '"' {
		return nil, false
	}
	start, ascii := c.i, true
	for c.i++; c.i < len(c.b); c.i++ {
		switch ch := c.b[c.i]; {
		case ch == '"':
			c.i++
			s := c.b[start:c.i]
			if !ascii && (!utf8.Valid(s) || bytes.Contains(s, []byte("\u2028")) || bytes.Contains(s, []byte("\u2029"))) {
				return nil, false
			}
			return s, true
		case ch < 0x20 || ch == '\\' || ch == '<' || ch == '>' || ch == '&' || ch == 0x7f:
			return nil, false
		case ch > 0x7f:
			ascii = false
		}
	}
	return nil, false
}

// number scans a JSON number: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
func (c *canonicalizer) number() bool {
	b := c.b
	digits := func(i int) int {
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i
	}
	i := c.i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(i)
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return false
		}
		i = j
	}
	c.i = i
	return true
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
