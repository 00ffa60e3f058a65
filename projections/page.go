package projections

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assignment-ledger/ledger/keyring"
)

// Page is one page of a list; NextCursor is empty on the last page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// ErrBadCursor is returned for a cursor this package did not issue (or
// issued for another list).
var ErrBadCursor = errors.New("invalid cursor")

// Queries answers the read side from the read models. Every method is scoped
// to one tenant: an ID of another tenant finds nothing.
type Queries struct {
	pool *pgxpool.Pool
	// keys opens the audit log's sealed event data when read.
	keys *keyring.Keyring
}

// NewQueries returns the read side over pool; keys opens sealed event data.
func NewQueries(pool *pgxpool.Pool, keys *keyring.Keyring) *Queries {
	return &Queries{pool: pool, keys: keys}
}

// queryAll runs a query and returns its rows made by scan: an empty slice,
// not nil, when there are none (the lists answer [] in JSON).
func queryAll[T any](ctx context.Context, db dbReader, scan pgx.RowToFunc[T], q string, args ...any) ([]T, error) {
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scan)
}

// pageOf makes a page of items read with a LIMIT of limit+1: an item past
// limit says a next page exists, starting after the last item kept, whose
// key makes the cursor.
func pageOf[T any](items []T, limit int, kind string, key func(T) any) Page[T] {
	if len(items) <= limit {
		return Page[T]{Items: items}
	}
	items = items[:limit]
	return Page[T]{Items: items, NextCursor: encodeCursor(kind, key(items[limit-1]))}
}

// eachItem calls fn for every item of the pages list returns, following
// their cursors: memory stays constant and no query is held open while fn
// runs. It stops at fn's first error and returns it.
func eachItem[T any](list func(cursor string) (Page[T], error), fn func(T) error) error {
	cursor := ""
	for {
		page, err := list(cursor)
		if err != nil {
			return err
		}
		for _, it := range page.Items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if page.NextCursor == "" {
			return nil
		}
		cursor = page.NextCursor
	}
}

// encodeCursor makes an opaque cursor of a list's sort key. kind keeps a
// cursor of one list from being accepted by another.
func encodeCursor(kind string, key any) string {
	b, err := json.Marshal(struct {
		K string `json:"k"`
		V any    `json:"v"`
	}{kind, key})
	if err != nil {
		panic(fmt.Sprintf("encode cursor: %v", err)) // keys are plain structs
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(kind, cursor string, key any) error {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return ErrBadCursor
	}
	var c struct {
		K string          `json:"k"`
		V json.RawMessage `json:"v"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.K != kind || json.Unmarshal(c.V, key) != nil {
		return ErrBadCursor
	}
	// A cursor is the client's to send back, so it may have been edited:
	// a key that no page could have ended on is refused here rather than
	// handed to PostgreSQL (where a malformed UUID was a 500).
	if k, ok := key.(interface{ valid() bool }); ok && !k.valid() {
		return ErrBadCursor
	}
	return nil
}

func clampLimit(limit int) int {
	if limit <= 0 {
		return 50
	}
	return limit
}

// uid parses a UUID for COPY, which encodes [16]byte directly (a string
// costs pgx a failed encode attempt per value). Malformed IDs cannot come
// out of the event store's uuid columns.
func uid(s string) [16]byte {
	if u, ok := canonicalUUID(s); ok {
		return u
	}
	u, err := uuid.Parse(s)
	if err != nil {
		panic(fmt.Sprintf("projections: malformed uuid %q from the event store", s))
	}
	return u
}

// canonicalUUID parses the canonical form, the one PostgreSQL prints and
// the domain writes: a rebuild parses millions of IDs, and uuid.Parse,
// which takes every form, was a third of making the notifications' rows.
func canonicalUUID(s string) (u [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i-- // the dash: the next pair starts right after it
			continue
		}
		hi, lo := unhex(s[i]), unhex(s[i+1])
		if hi > 15 || lo > 15 {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
	}
	return u, j == 16
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// isUUID reports whether s is a UUID in its canonical form, so a malformed
// ID from a URL finds nothing instead of failing a uuid cast.
func isUUID(s string) bool { return len(s) == 36 && uuid.Validate(s) == nil }
