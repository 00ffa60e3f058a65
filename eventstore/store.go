package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the event store over one PostgreSQL database.
type Store struct {
	pool      *pgxpool.Pool
	announcer *announcer
}

// New returns a store using pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool, announcer: &announcer{pool: pool}} }

// OnAppend registers fn to be called, in this process, right after every
// commit of events through the store, with the position of its last event.
// fn must not block: subscribers use it to wake up without waiting for the
// database's notification. Calling remove unregisters fn.
func (s *Store) OnAppend(fn func(position int64)) (remove func()) { return s.announcer.onAppend(fn) }

// Pool exposes the pool for side records that must share the store's database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Tx is a write transaction on the store, for commands that must read and
// lock before they decide (see Transact).
//
// The transaction is begun lazily: BEGIN travels in the same round trip as
// the first batch sent on it (or just before the first other statement), and
// an append may carry COMMIT with its last statements (AppendRequest.Commit).
type Tx struct {
	conn *pgx.Conn
	// begun is set once BEGIN has been sent; committed once COMMIT has
	// succeeded (the transaction is over).
	begun, committed bool
	// commitSent is set once COMMIT has been sent: after a failure, the
	// transaction may have committed.
	commitSent bool
	// lastPosition is the last event appended, announced after commit.
	lastPosition int64
	// heads are the stream rows this transaction holds FOR UPDATE (or has
	// inserted), as they now stand: an append needs not read them again.
	heads map[string]head
	// found are the streams StreamVersions found, in the order found.
	found []string
}

// StreamsFound returns the streams StreamVersions found in this
// transaction, locked or not: what a command decided on. A refusal stored
// under the command's idempotency key names them, so that erasing any of
// them scrubs it.
func (t *Tx) StreamsFound() []string { return t.found }

// Transact runs fn in one READ COMMITTED transaction and commits if fn
// returns nil. Keep fn short: subscribers cannot read past an open transaction.
func (s *Store) Transact(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) (err error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return translate(err)
	}
	t := &Tx{conn: c.Conn()}
	defer func() {
		if (t.begun && !t.committed) || t.conn.PgConn().TxStatus() != 'I' {
			// Rolls back on an error and on a panic in fn alike. A failed
			// rollback leaves the connection in a transaction, and Release
			// then destroys it.
			_, _ = t.conn.Exec(ctx, "rollback")
		}
		c.Release()
	}()
	if err := fn(ctx, t); err != nil {
		return translate(err)
	}
	if t.begun && !t.committed {
		b := &pgx.Batch{}
		if err := t.sendCommit(ctx, b); err != nil {
			return translate(err)
		}
	}
	if t.lastPosition > 0 {
		s.announcer.announce(t.lastPosition)
	}
	return nil
}

// queueCommit adds COMMIT to b.
func (t *Tx) queueCommit(b *pgx.Batch) {
	t.commitSent = true
	b.Queue("commit")
}

// readCommit reads the results queueCommit added, from br, after the
// caller has read everything before them.
func (t *Tx) readCommit(br pgx.BatchResults) error {
	tag, err := br.Exec()
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	t.committed = true
	return nil
}

// sendCommit sends b (statements whose results need no reading) followed
// by COMMIT, in one round trip.
func (t *Tx) sendCommit(ctx context.Context, b *pgx.Batch) error {
	n := b.Len()
	t.queueCommit(b)
	br := t.sendBatch(ctx, b)
	for range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return err
		}
	}
	err := t.readCommit(br)
	cerr := br.Close()
	if err != nil {
		return err
	}
	if cerr != nil && !t.committed {
		return cerr
	}
	return nil
}

// sendBatch sends b in the transaction, with BEGIN in front of it if the
// transaction has not begun yet.
func (t *Tx) sendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if t.committed {
		return errBatch{errTxDone}
	}
	if t.begun {
		return t.conn.SendBatch(ctx, b)
	}
	t.begun = true
	nb := &pgx.Batch{}
	nb.Queue("begin")
	nb.QueuedQueries = append(nb.QueuedQueries, b.QueuedQueries...)
	br := t.conn.SendBatch(ctx, nb)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return errBatch{err}
	}
	return br
}

// begin sends BEGIN on its own, before a statement that is not a batch.
func (t *Tx) begin(ctx context.Context) error {
	if t.committed {
		return errTxDone
	}
	if t.begun {
		return nil
	}
	t.begun = true
	_, err := t.conn.Exec(ctx, "begin")
	return err
}

var errTxDone = errors.New("eventstore: the transaction has already committed")

// errBatch is the results of a batch that could not be sent.
type errBatch struct{ err error }

func (e errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, e.err }
func (e errBatch) Query() (pgx.Rows, error)         { return errRows(e), e.err }
func (e errBatch) QueryRow() pgx.Row                { return errRow(e) }
func (e errBatch) Close() error                     { return e.err }
func (errBatch) Tx() pgx.Tx                         { return nil }

type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }

type errRows struct{ err error }

func (errRows) Close()                                       {}
func (e errRows) Err() error                                 { return e.err }
func (errRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (errRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (errRows) Next() bool                                   { return false }
func (e errRows) Scan(...any) error                          { return e.err }
func (e errRows) Values() ([]any, error)                     { return nil, e.err }
func (errRows) RawValues() [][]byte                          { return nil }
func (errRows) Conn() *pgx.Conn                              { return nil }
func (errRows) TypeMap() *pgtype.Map                         { return nil }

// Exec runs a statement of the caller's own (a side record on a table the
// store does not own: users, API keys, invitations, data keys) in the
// transaction, so it commits or rolls back with the events.
func (t *Tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.begin(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return t.conn.Exec(ctx, sql, args...)
}

// Query runs a read of the caller's own in the transaction.
func (t *Tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.begin(ctx); err != nil {
		return errRows{err}, err
	}
	return t.conn.Query(ctx, sql, args...)
}

// QueryRow is Query for one row.
func (t *Tx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := t.begin(ctx); err != nil {
		return errRow{err}
	}
	return t.conn.QueryRow(ctx, sql, args...)
}

// LockStream takes the stream's row lock for the rest of the transaction and
// returns its version (0 when it does not exist). An append to the stream by
// anyone else waits until this transaction ends.
func (t *Tx) LockStream(ctx context.Context, streamID string) (int64, error) {
	var h head
	err := t.QueryRow(ctx, `SELECT tenant_id::text, version, last_hash FROM streams WHERE stream_id = $1 FOR UPDATE`,
		streamID).Scan(&h.tenantID, &h.version, &h.lastHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("lock stream %s: %w", streamID, translate(err))
	}
	h.exists = true
	t.rememberHead(streamID, h)
	return h.version, nil
}

func (t *Tx) rememberHead(id string, h head) {
	if t.heads == nil {
		t.heads = map[string]head{}
	}
	t.heads[id] = h
}

// SendBatch sends b in the transaction (with BEGIN in front of it when it
// is the transaction's first statement: one round trip for both).
func (t *Tx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.sendBatch(ctx, b)
}

// ReadStream reads a stream inside the transaction.
func (t *Tx) ReadStream(ctx context.Context, tenantID, streamID string) ([]Event, error) {
	return readStream(ctx, t, tenantID, streamID)
}

// ErrConflict marks failures that a retry may cure: serialization failures
// and deadlocks between concurrent writers.
var ErrConflict = errors.New("concurrent write conflict")

// ErrUnavailable marks failures of the database rather than of the request:
// it refused or dropped the connection, is starting up or shutting down, or
// did not answer in time. A retry later may succeed (the API answers 503).
var ErrUnavailable = errors.New("database unavailable")

// Translate maps driver errors to the store's sentinels (ErrConflict,
// ErrVersionMismatch, ErrUnavailable). It is the one
// place that reads SQLSTATEs and driver errors: the store applies it at its
// boundary, and callers that query the database themselves (commands,
// projections' queries, the HTTP layer) pass their errors through it.
func Translate(err error) error { return translate(err) }

// translate is Translate.
func translate(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	if unavailable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01":
			return fmt.Errorf("%w: %s", ErrConflict, pgErr.Message)
		case "23505":
			if pgErr.ConstraintName == "events_stream_id_stream_version_key" || pgErr.ConstraintName == "streams_pkey" {
				return fmt.Errorf("%w: %s", ErrVersionMismatch, pgErr.Message)
			}
		}
	}
	return err
}

// unavailable reports whether err says the database cannot serve now, as
// opposed to refusing this request.
func unavailable(err error) bool {
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		// Refused, unreachable, starting up, or not accepting connections
		// to this database: whatever the server said, nothing was asked.
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", // admin or crash shutdown, starting up
			"57014",          // query canceled: statement_timeout, or a deadline's cancel request
			"55P03",          // lock_not_available: lock_timeout
			"53300", "53400", // too many connections
			"25P03", "57P05": // idle (in transaction) session timeout
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection exception
	}
	var netErr net.Error
	return pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr)
}

// Ready reports whether the store can serve: a connection answers within
// ctx and the events and streams tables can be read (a lock held on them,
// as by a stuck migration, makes commands hang however well pings answer).
func (s *Store) Ready(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `SELECT (SELECT 1 FROM events LIMIT 1), (SELECT 1 FROM streams LIMIT 1)`); err != nil {
		return fmt.Errorf("event store not readable: %w", translate(err))
	}
	return nil
}
