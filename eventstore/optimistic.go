package eventstore

import (
	"fmt"
	"regexp"
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
var ErrCheckFailed = fmt.Errorf("append precondition failed")

// CheckFailedError says a precondition queued with Tx.Check was false: the
// transaction wrote nothing.
type CheckFailedError struct {
	Name string
}

func (e *CheckFailedError) Error() string {
	return fmt.Sprintf("append precondition %q failed", e.Name)
}

// Is makes errors.Is(err, ErrCheckFailed) true.
func (e *CheckFailedError) Is(target error) bool { return target == ErrCheckFailed }

type check struct {
	query string
	args  []any
}

var checkName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Check queues a precondition on the transaction: query is a SELECT that
// returns one boolean, and the transaction fails with a *CheckFailedError
// named name unless it is true. Checks travel at the head of the next batch
// the transaction sends, so a command that already knows what to write
// (Expect) checks and writes in one round trip. A check may lock what it
// reads (FOR SHARE in a subquery) to keep it true until commit.
func (t *Tx) Check(name, query string, args ...any) {
	if !checkName.MatchString(name) {
		panic(fmt.Sprintf("eventstore: check name %q is not an identifier", name))
	}
	t.checks = append(t.checks, check{query: "SELECT ledger_check((" + query + "), '" + name + "')", args: args})
}

// Expect tells the transaction where a stream of tenantID stood when the
// caller decided what to append to it, instead of locking and reading its
// head: the next Append to the stream moves the head only if it is still at
// h (compare-and-set, in the same round trip as the insert) and fails with
// ErrVersionMismatch otherwise. This is how a command decided on a cached
// state appends in one round trip; the unique (stream_id, stream_version)
// constraint stays the last line of defence.
func (t *Tx) Expect(tenantID, streamID string, h Head) {
	t.rememberHead(streamID, head{exists: true, tenantID: tenantID, version: h.Version, lastHash: h.LastHash, unlocked: true})
}

// qMoveHead is the compare-and-set of an expected head.
const qMoveHead = `WITH moved AS (
    UPDATE streams SET version = $3, last_hash = $4
    WHERE stream_id = $1 AND tenant_id = $2 AND version = $5
    RETURNING 1)
SELECT ledger_check(EXISTS (SELECT 1 FROM moved), '` + headCheck + `' || $1::text)`
