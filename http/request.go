package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	nethttp "net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/assignment-ledger/ledger/commands"
)

const (
	maxJSONBody = 1 << 20  // 1 MiB
	maxCSVBody  = 32 << 20 // 32 MiB: 100,000 rows of up to about 330 bytes
)

// readBody reads the whole body under a size limit after checking its media type.
func readBody(r *nethttp.Request, mediaType string, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &errInput{status: nethttp.StatusRequestEntityTooLarge, code: "body_too_large",
			detail: fmt.Sprintf("the body is larger than %d bytes", limit)}
	}
	ct := r.Header.Get("Content-Type")
	got, _, err := mime.ParseMediaType(ct)
	if err != nil || !strings.EqualFold(got, mediaType) {
		return nil, &errInput{status: nethttp.StatusUnsupportedMediaType, code: "unsupported_media_type",
			detail: fmt.Sprintf("send Content-Type: %s (got %q)", mediaType, ct)}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, badRequest("malformed_body", "", "could not read the body: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, &errInput{status: nethttp.StatusRequestEntityTooLarge, code: "body_too_large",
			detail: fmt.Sprintf("the body is larger than %d bytes", limit)}
	}
	return body, nil
}

// command reads a JSON command body and builds the command's Meta: tenant,
// actor, Idempotency-Key with a hash of the request, and If-Match.
func (s *Server) command(r *nethttp.Request, dst any) (commands.Meta, error) {
	var body []byte
	if dst != nil {
		var err error
		if body, err = readBody(r, "application/json", maxJSONBody); err != nil {
			return commands.Meta{}, err
		}
		if err := decodeJSON(body, dst); err != nil {
			return commands.Meta{}, err
		}
	} else if r.ContentLength > 0 || r.Header.Get("Content-Type") != "" {
		// Bodyless commands tolerate an empty JSON object, and refuse
		// any field (or a repeated one) as every command refuses fields
		// it does not take.
		var err error
		if body, err = readBody(r, "application/json", maxJSONBody); err != nil {
			return commands.Meta{}, err
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := decodeJSON(body, &struct{}{}); err != nil {
				return commands.Meta{}, err
			}
		}
	}
	return s.meta(r, body)
}

// commandOptionalBody is command for a command whose body may be left out:
// no body, an empty one (whatever its Content-Type) and {} are all the same.
func (s *Server) commandOptionalBody(r *nethttp.Request, dst any) (commands.Meta, error) {
	var body []byte
	if r.ContentLength > 0 || r.Header.Get("Content-Type") != "" {
		var err error
		if body, err = readBody(r, "application/json", maxJSONBody); err != nil {
			return commands.Meta{}, err
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := decodeJSON(body, dst); err != nil {
				return commands.Meta{}, err
			}
		}
	}
	return s.meta(r, body)
}

func (s *Server) meta(r *nethttp.Request, body []byte) (commands.Meta, error) {
	p := principal(r.Context())
	m := commands.Meta{TenantID: p.TenantID, Actor: p.Actor, CorrelationID: correlationID(r.Context())}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if len(key) > 255 {
			return m, badRequest("invalid_header", "Idempotency-Key", "Idempotency-Key is longer than 255 characters")
		}
		if !storableHeader(key) {
			return m, badRequest("invalid_header", "Idempotency-Key", "Idempotency-Key must be UTF-8 text without control characters")
		}
		h := sha256.New()
		fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", r.Method, r.URL.Path, r.URL.RawQuery, p.UserID)
		h.Write(body)
		m.IdempotencyKey, m.RequestHash = key, h.Sum(nil)
	}
	// If-Match: * holds whenever the resource exists, which every command
	// on one checks anyway: no version to compare.
	if im := strings.TrimSpace(r.Header.Get("If-Match")); im != "" && im != "*" {
		// One ETag or a list of them (RFC 9110 13.1.1): any may match.
		// If-Match compares strongly, octet for octet, so a weak ETag, or a
		// version not written as this service writes it ("09", "+9"),
		// never matches: a list of only those leaves IfMatch empty, which
		// no version meets.
		m.IfMatch = []int64{}
		for _, tag := range strings.Split(im, ",") {
			v, matches, err := parseETag(tag)
			if err != nil {
				return m, err
			}
			if matches {
				m.IfMatch = append(m.IfMatch, v)
			}
		}
	}
	return m, nil
}

// parseETag reads one ETag of If-Match: the version it names, and whether
// it can match at all (a strong tag, the version written in canonical
// digits as the ETag header writes it).
func parseETag(s string) (version int64, matches bool, err error) {
	s = strings.TrimSpace(s)
	weak := false
	if rest, ok := strings.CutPrefix(s, "W/"); ok {
		s, weak = rest, true
	}
	s = strings.Trim(s, `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, false, badRequest("invalid_header", "If-Match", `If-Match must be a version ETag such as "3"`)
	}
	return v, !weak && strconv.FormatInt(v, 10) == s, nil
}

// idParam reads a UUID path parameter; "me" stands for the caller.
func idParam(r *nethttp.Request, name string) (string, error) {
	return resolveID(r.Context(), chi.URLParam(r, name), name)
}

// requiredID reads a user ID from a body field that must be present.
func requiredID(ctx context.Context, raw, field string) (string, error) {
	if raw == "" {
		return "", badRequest("invalid_input", field, "%s is required", field)
	}
	return resolveID(ctx, raw, field)
}

func resolveID(ctx context.Context, raw, field string) (string, error) {
	if raw == "me" {
		return principal(ctx).UserID, nil
	}
	return parseUUID(raw, field)
}

// parseUUID reads a UUID in its canonical 36-character form: anything else
// is 400 invalid_id naming field (the console checks its IDs with it too).
func parseUUID(raw, field string) (string, error) {
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		return "", badRequest("invalid_id", field, "%s %q is not a UUID", field, raw)
	}
	return id.String(), nil
}

// limitParam reads ?limit= (default 50, 1..500).
func limitParam(r *nethttp.Request) (int, error) {
	raw := r.URL.Query().Get("limit")
	if raw == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > 500 {
		return 0, badRequest("invalid_limit", "limit", "limit must be an integer from 1 to 500")
	}
	return n, nil
}

func timeParam(r *nethttp.Request, name string) (*time.Time, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return nil, nil
	}
	t, err := parseTime(raw)
	if err != nil {
		return nil, badRequest("invalid_time", name, "%s must be an RFC 3339 time such as 2026-03-03T12:00:00Z", name)
	}
	return &t, nil
}

// parseTime reads an RFC 3339 time, in UTC. RFC 3339 (5.6) allows a
// lowercase t and z, which time.Parse refuses; no other letter can occur.
// time.Parse takes offsets of +24:00 and +23:60, which RFC 3339 does not
// (hours 00-23, minutes 00-59). A time must also be within the years
// 0000-9999 in UTC, as every stored time is written: 9999-12-31T23:59:59-05:00
// is year 10000 once in UTC, and could not be recorded.
func parseTime(raw string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(raw))
	if err != nil {
		return time.Time{}, err
	}
	if n := len(raw); !strings.HasSuffix(strings.ToUpper(raw), "Z") && n >= 6 {
		if raw[n-5:n-3] > "23" || raw[n-2:] > "59" {
			return time.Time{}, fmt.Errorf("time %q: offset out of range", raw)
		}
	}
	t = t.UTC()
	if t.Year() < 0 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("time %q: outside the years 0000-9999 in UTC", raw)
	}
	return t, nil
}

func writeJSON(w nethttp.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeCommand answers a successful command with its position token.
func writeCommand(w nethttp.ResponseWriter, status int, position int64, v any) {
	setPosition(w, position)
	writeJSON(w, status, v)
}

// setPosition sets the read-your-writes token every successful command
// answers with: 0 when it changed nothing (X-Min-Position 0 waits for
// nothing).
func setPosition(w nethttp.ResponseWriter, position int64) {
	w.Header().Set("X-Ledger-Position", strconv.FormatInt(max(position, 0), 10))
}

// page is the list envelope of the contract.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// negotiate chooses among offers (media types, the default first) the one
// the Accept header prefers (RFC 9110 12.5.1): each offer takes the quality
// of the most specific media range that matches it (type/subtype, type/*,
// */*), and the highest quality wins, the earlier offer on a tie. Without
// an Accept header, or when it accepts no offer, it is the default: the API
// answers its default representation rather than 406.
func negotiate(r *nethttp.Request, offers ...string) string {
	header := r.Header.Get("Accept")
	if strings.TrimSpace(header) == "" {
		return offers[0]
	}
	type mediaRange struct {
		typ, sub string
		q        float64
	}
	var ranges []mediaRange
	for _, part := range strings.Split(header, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil || q < 0 || q > 1 {
				continue
			}
		}
		typ, sub, _ := strings.Cut(mt, "/")
		ranges = append(ranges, mediaRange{typ, sub, q})
	}
	best, bestQ := offers[0], 0.0
	for _, offer := range offers {
		typ, sub, _ := strings.Cut(offer, "/")
		q, specificity := 0.0, -1
		for _, m := range ranges {
			s := -1
			switch {
			case strings.EqualFold(m.typ, typ) && strings.EqualFold(m.sub, sub):
				s = 2
			case strings.EqualFold(m.typ, typ) && m.sub == "*":
				s = 1
			case m.typ == "*" && m.sub == "*":
				s = 0
			}
			if s > specificity {
				q, specificity = m.q, s
			}
		}
		if q > bestQ {
			best, bestQ = offer, q
		}
	}
	return best
}

// encodeCursor makes an opaque cursor of a list's sort key.
func encodeCursor(key any) string {
	raw, _ := json.Marshal(key)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// decodeCursor reads a cursor made by encodeCursor; anything else is a 400.
func decodeCursor(cursor string, key any) error {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err == nil {
		err = json.Unmarshal(raw, key)
	}
	// A cursor's text goes to PostgreSQL as a query argument: one holding a
	// NUL byte (or invalid UTF-8, which encoding/json replaces) was a 500
	// from the query (found by hostile testing, on the users' list).
	if _, bad := badText(reflect.ValueOf(key), ""); err != nil || bad || !utf8.Valid(raw) {
		return badRequest("invalid_cursor", "cursor", "the cursor is not one this list issued")
	}
	return nil
}

// pageOf pages a list computed whole (an as-of answer, a team) with limit and
// cursor; the cursor is the offset, opaque to clients.
func pageOf[T any](r *nethttp.Request, items []T) (page[T], error) {
	limit, err := limitParam(r)
	if err != nil {
		return page[T]{}, err
	}
	var offset int
	if raw := r.URL.Query().Get("cursor"); raw != "" {
		if err := decodeCursor(raw, &offset); err != nil || offset < 0 || offset > len(items) {
			return page[T]{}, badRequest("invalid_cursor", "cursor", "the cursor is not one this list issued")
		}
	}
	pg := page[T]{Items: nonNil(items[offset:])}
	if len(pg.Items) > limit {
		pg.Items = pg.Items[:limit]
		pg.NextCursor = encodeCursor(offset + limit)
	}
	return pg, nil
}
