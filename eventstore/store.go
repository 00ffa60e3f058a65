package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the event store over one PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a store using pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool exposes the pool for side records that must share the store's database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Tx is a write transaction on the store, for commands that must read and
// lock before they decide (see Transact).
type Tx struct {
	tx pgx.Tx
	// lastPosition is the last event appended, announced after commit.
	lastPosition int64
}

// PgxTx returns the underlying transaction, for side records that must commit
// together with the events.
func (t *Tx) PgxTx() pgx.Tx { return t.tx }

// Transact runs fn in one READ COMMITTED transaction and commits if fn
// returns nil. Keep fn short: subscribers cannot read past an open transaction.
func (s *Store) Transact(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	var t *Tx
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		t = &Tx{tx: tx}
		return fn(ctx, t)
	})
	if err != nil {
		return translate(err)
	}
	if t.lastPosition > 0 {
		s.announce(ctx, t.lastPosition)
	}
	return nil
}

// announce wakes subscribers after a commit. It is not part of the append
// transaction on purpose: PostgreSQL serialises every notifying transaction
// on one database-wide lock held until after its commit record is flushed,
// which would put every command's fsync in single file. Here the lock is
// held by a tiny transaction that does not wait for its flush. A crash
// between the commit and this announcement loses only the wake-up;
// subscribers poll as a fallback.
func (s *Store) announce(ctx context.Context, position int64) {
	_, _ = s.pool.Exec(context.WithoutCancel(ctx), `BEGIN; SET LOCAL synchronous_commit TO OFF; SELECT pg_notify('`+
		NotifyChannel+`', '`+strconv.FormatInt(position, 10)+`'); COMMIT`)
}

// LockStream takes the stream's row lock for the rest of the transaction and
// returns its version (0 when it does not exist). An append to the stream by
// anyone else waits until this transaction ends.
func (t *Tx) LockStream(ctx context.Context, streamID string) (int64, error) {
	var v int64
	err := t.tx.QueryRow(ctx, `SELECT version FROM streams WHERE stream_id = $1 FOR UPDATE`, streamID).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("lock stream %s: %w", streamID, translate(err))
	}
	return v, nil
}

// ReadStream reads a stream inside the transaction.
func (t *Tx) ReadStream(ctx context.Context, tenantID, streamID string) ([]Event, error) {
	return readStream(ctx, t.tx, tenantID, streamID)
}

// Query runs a read inside the transaction.
func (t *Tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.tx.Query(ctx, sql, args...)
}

// ErrConflict marks failures that a retry may cure: serialization failures
// and deadlocks between concurrent writers.
var ErrConflict = errors.New("concurrent write conflict")

// translate maps driver errors to the store's sentinels at the boundary.
func translate(err error) error {
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
