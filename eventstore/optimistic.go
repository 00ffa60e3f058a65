package eventstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Head is where a stream stood when a command last saw it: its version and
// the hash of its last event.
type Head struct {
	Version  int64
	LastHash []byte
}

// codeCheckFailed is the SQLSTATE ledger_check raises (migration 0005).
const codeCheckFailed = "LC001"

// headCheck prefixes the detail of a failed compare-and-set of a stream head.
const headCheck = "head "

// ErrCheckFailed is matched by every *CheckFailedError.
var ErrCheckFailed = errors.New("append precondition failed")

// CheckFailedError says a precondition of AppendExpected was false: nothing
// was written.
type CheckFailedError struct {
	Name string
}

func (e *CheckFailedError) Error() string {
	return fmt.Sprintf("append precondition %q failed", e.Name)
}

// Is makes errors.Is(err, ErrCheckFailed) true.
func (e *CheckFailedError) Is(target error) bool { return target == ErrCheckFailed }

// Check is a precondition of AppendExpected: Query is a SELECT that returns
// one boolean, with its own parameters $1..$n (Args). It may lock what it
// reads (FOR SHARE in a subquery) to keep it true until commit.
type Check struct {
	Name  string // an identifier, reported by CheckFailedError
	Query string
	Args  []any
}

var (
	checkName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	paramRef  = regexp.MustCompile(`\$(\d+)`)
)

// AppendExpected appends req's events to its one stream, which the caller
// last saw at h, in one statement: its own transaction and one round trip.
// The statement evaluates the checks, moves the stream head from h by
// compare-and-set and inserts the events; a failed check is a
// *CheckFailedError, a head that moved on (or another tenant's stream) is
// ErrVersionMismatch, and either writes nothing. This is how a command
// decided on a cached state appends; the unique (stream_id, stream_version)
// constraint stays the last line of defence.
//
// Idempotency keys, guards, claims, side records and outbox messages need
// the transaction of Transact and are refused here.
func (s *Store) AppendExpected(ctx context.Context, req AppendRequest, h Head, checks ...Check) (AppendResult, error) {
	if req.TenantID == "" || len(req.Streams) != 1 || len(req.Streams[0].Events) == 0 {
		return AppendResult{}, errors.New("append expected: one tenant and one stream with events are required")
	}
	if req.Idempotency != nil || len(req.Guards) > 0 || len(req.Claims) > 0 || len(req.Releases) > 0 || req.Side != nil || len(req.Outbox) > 0 || len(req.Forget) > 0 {
		return AppendResult{}, errors.New("append expected: idempotency keys, guards, claims, side records and outbox messages need Transact")
	}
	w := req.Streams[0]
	if w.ExpectedVersion != h.Version {
		return AppendResult{}, &VersionMismatchError{StreamID: w.StreamID, Expected: w.ExpectedVersion, Actual: h.Version}
	}
	canonMeta, err := req.canonicalMetadata()
	if err != nil {
		return AppendResult{}, err
	}
	now := req.recordedAt()
	var rows eventRows
	version, last, err := rows.chain(req.TenantID, w, h.Version, h.LastHash, now, canonMeta)
	if err != nil {
		return AppendResult{}, err
	}

	args := append([]any{w.StreamID, req.TenantID, version, last, h.Version}, rows.args(canonMeta, now)...)
	sql, err := s.appendExpectedSQL(checks, len(args))
	if err != nil {
		return AppendResult{}, err
	}
	for _, c := range checks {
		args = append(args, c.Args...)
	}

	res := AppendResult{Versions: map[string]int64{w.StreamID: version}, Hashes: map[string][]byte{w.StreamID: last}}
	qrows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append expected: %w", translate(err))
	}
	for qrows.Next() {
		var pos int64
		var txid string
		if err := qrows.Scan(&pos, &txid); err != nil {
			qrows.Close()
			return AppendResult{}, fmt.Errorf("append expected: %w", err)
		}
		res.Position = max(res.Position, pos)
		res.TransactionID, _ = strconv.ParseUint(txid, 10, 64)
	}
	qrows.Close()
	if err := qrows.Err(); err != nil {
		return AppendResult{}, fmt.Errorf("append expected: %w", translate(err))
	}
	s.announcer.announce(res.Position)
	return res, nil
}

// appendExpectedSQL composes AppendExpected's statement for checks whose
// parameters follow the first n, once per set of checks.
func (s *Store) appendExpectedSQL(checks []Check, n int) (string, error) {
	var key strings.Builder
	for _, c := range checks {
		key.WriteString(c.Name)
		key.WriteByte(0)
		key.WriteString(c.Query)
		key.WriteByte(0)
	}
	if sql, ok := s.statements.Load(key.String()); ok {
		return sql.(string), nil
	}
	conds := make([]string, 0, len(checks))
	offset := n
	for _, c := range checks {
		if !checkName.MatchString(c.Name) {
			return "", fmt.Errorf("append expected: check name %q is not an identifier", c.Name)
		}
		q := paramRef.ReplaceAllStringFunc(c.Query, func(ref string) string {
			i, _ := strconv.Atoi(ref[1:])
			return "$" + strconv.Itoa(i+offset)
		})
		conds = append(conds, "ledger_check(("+q+"), '"+c.Name+"')")
		offset += len(c.Args)
	}
	if len(conds) == 0 {
		conds = append(conds, "true")
	}
	sql := fmt.Sprintf(qAppendExpected, strings.Join(conds, " AND "))
	s.statements.Store(key.String(), sql)
	return sql, nil
}

// qAppendExpected is AppendExpected's statement; %s is the checks, ANDed.
// Every check and the head's compare-and-set raise (ledger_check) rather
// than return false, so the statement either does everything or nothing.
// The checks are evaluated in the head update's condition, before its row
// is locked: users before customers, the order every command locks in.
const qAppendExpected = `WITH checked AS (SELECT %s AS ok),
moved AS (
    UPDATE streams SET version = $3, last_hash = $4
    WHERE stream_id = $1 AND tenant_id = $2 AND version = $5 AND (SELECT ok FROM checked)
    RETURNING 1)
INSERT INTO events (tenant_id, stream_id, stream_version, type, schema_version, data, metadata, recorded_at, prev_hash, hash)
SELECT t, s, v, ty, sv, d::jsonb, $12::jsonb, $13, p, h
FROM unnest($6::text[]::uuid[], $7::text[]::uuid[], $8::bigint[], $9::text[], $10::int[], $11::text[], $14::bytea[], $15::bytea[])
    AS u(t, s, v, ty, sv, d, p, h)
WHERE ledger_check(EXISTS (SELECT 1 FROM moved), '` + headCheck + `' || $1::text)
RETURNING position, transaction_id::text`
