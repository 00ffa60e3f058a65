package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

const eventColumns = `position, transaction_id::text, tenant_id::text, stream_id::text, stream_version, type,
	schema_version, data, metadata, recorded_at, prev_hash, hash`

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func scanEvent(row pgx.Row) (Event, error) {
	var e Event
	var txid string
	var meta []byte
	var schema int32
	if err := row.Scan(&e.Position, &txid, &e.TenantID, &e.StreamID, &e.Version, &e.Type, &schema,
		&e.Data, &meta, &e.RecordedAt, &e.PrevHash, &e.Hash); err != nil {
		return Event{}, err
	}
	e.SchemaVersion = int(schema)
	e.rawMetadata = meta
	e.RecordedAt = e.RecordedAt.UTC()
	var err error
	if e.TransactionID, err = strconv.ParseUint(txid, 10, 64); err != nil {
		return Event{}, fmt.Errorf("parse transaction id %q: %w", txid, err)
	}
	if err := json.Unmarshal(meta, &e.Metadata); err != nil {
		return Event{}, fmt.Errorf("decode metadata of event %d: %w", e.Position, err)
	}
	return e, nil
}

func collect(rows pgx.Rows, err error) ([]Event, error) {
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, translate(rows.Err())
}

func readStream(ctx context.Context, q querier, tenantID, streamID string) ([]Event, error) {
	// Filter by stream alone so the (stream_id, stream_version) index is
	// used; with a tenant predicate the planner may scan the whole tenant.
	events, err := collect(q.Query(ctx, `SELECT `+eventColumns+` FROM events
		WHERE stream_id = $1 ORDER BY stream_version`, streamID))
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", streamID, err)
	}
	return ownedBy(tenantID, events), nil
}

// ownedBy drops events of other tenants: to a caller, another tenant's
// stream does not exist.
func ownedBy(tenantID string, events []Event) []Event {
	out := events[:0]
	for _, e := range events {
		if e.TenantID == tenantID {
			out = append(out, e)
		}
	}
	return out
}

// ReadStream returns the tenant's stream in version order (empty when the
// stream does not exist or belongs to another tenant).
func (s *Store) ReadStream(ctx context.Context, tenantID, streamID string) ([]Event, error) {
	return readStream(ctx, s.pool, tenantID, streamID)
}

// ReadStreams reads several streams of one tenant in one query, grouped by
// stream in version order.
func (s *Store) ReadStreams(ctx context.Context, tenantID string, streamIDs []string) (map[string][]Event, error) {
	events, err := collect(s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
		WHERE stream_id = ANY($1::text[]::uuid[]) ORDER BY stream_id, stream_version`, streamIDs))
	if err != nil {
		return nil, fmt.Errorf("read streams: %w", err)
	}
	out := make(map[string][]Event, len(streamIDs))
	for _, e := range ownedBy(tenantID, events) {
		out[e.StreamID] = append(out[e.StreamID], e)
	}
	return out, nil
}

// ReadStreams reads several streams inside the transaction.
func (t *Tx) ReadStreams(ctx context.Context, tenantID string, streamIDs []string) (map[string][]Event, error) {
	events, err := collect(t.Query(ctx, `SELECT `+eventColumns+` FROM events
		WHERE stream_id = ANY($1::text[]::uuid[]) ORDER BY stream_id, stream_version`, streamIDs))
	if err != nil {
		return nil, fmt.Errorf("read streams: %w", err)
	}
	out := make(map[string][]Event, len(streamIDs))
	for _, e := range ownedBy(tenantID, events) {
		out[e.StreamID] = append(out[e.StreamID], e)
	}
	return out, nil
}

// ReadAll returns up to limit events after cursor in subscriber order,
// (transaction_id, position), and only from transactions older than every
// transaction still running: a transaction that commits late has a smaller
// id than events already visible, and reading past it would skip it forever.
func (s *Store) ReadAll(ctx context.Context, after Cursor, limit int) ([]Event, error) {
	events, err := collect(s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
		WHERE (transaction_id, position) > ($1::text::xid8, $2)
		  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY events.transaction_id, position LIMIT $3`,
		strconv.FormatUint(after.TransactionID, 10), after.Position, limit))
	if err != nil {
		return nil, fmt.Errorf("read all: %w", err)
	}
	return events, nil
}

// EventCursor returns the subscriber-order cursor of the event at position.
func (s *Store) EventCursor(ctx context.Context, position int64) (Cursor, error) {
	var txid string
	err := s.pool.QueryRow(ctx, `SELECT transaction_id::text FROM events WHERE position = $1`, position).Scan(&txid)
	if errors.Is(err, pgx.ErrNoRows) {
		return Cursor{}, ErrNotFound
	}
	if err != nil {
		return Cursor{}, fmt.Errorf("event cursor: %w", err)
	}
	id, err := strconv.ParseUint(txid, 10, 64)
	if err != nil {
		return Cursor{}, fmt.Errorf("event cursor: %w", err)
	}
	return Cursor{TransactionID: id, Position: position}, nil
}

// StreamVersion returns a stream's current version (0 when absent).
func (s *Store) StreamVersion(ctx context.Context, streamID string) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT version FROM streams WHERE stream_id = $1`, streamID).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream version: %w", err)
	}
	return v, nil
}

// Lock is how StreamVersions locks the stream rows it reads, until the
// transaction ends.
type Lock int

const (
	// NoLock reads the versions as they are.
	NoLock Lock = iota
	// LockShare holds off appends (a writer waits for the transaction)
	// while letting other readers share them.
	LockShare
	// LockUpdate takes the rows as a writer does: one holder at a time.
	LockUpdate
)

var lockClause = map[Lock]string{NoLock: "", LockShare: " FOR SHARE", LockUpdate: " FOR UPDATE"}

const qTenantStreams = `SELECT stream_id::text, version, last_hash FROM streams
	WHERE tenant_id = $1 AND stream_type = $2 AND stream_id = ANY($3::text[]::uuid[])
	ORDER BY stream_id`

// StreamVersions returns the versions of the tenant's streams of type
// streamType among ids, in ID order (the order every writer locks them
// in), locked as lock says; unknown IDs, and other tenants' streams, are
// absent. Heads locked for update are remembered: an append to them needs
// not lock them again.
func (t *Tx) StreamVersions(ctx context.Context, tenantID, streamType string, ids []string, lock Lock) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := t.Query(ctx, qTenantStreams+lockClause[lock], tenantID, streamType, ids)
	if err != nil {
		return nil, fmt.Errorf("lock streams: %w", translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		h := head{exists: true, tenantID: tenantID}
		if err := rows.Scan(&id, &h.version, &h.lastHash); err != nil {
			return nil, fmt.Errorf("lock streams: %w", err)
		}
		if lock == LockUpdate {
			t.rememberHead(id, h)
		}
		t.found = append(t.found, id)
		out[id] = h.version
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock streams: %w", translate(err))
	}
	return out, nil
}

// StreamVersions is Tx.StreamVersions outside a transaction, without locks.
func (s *Store) StreamVersions(ctx context.Context, tenantID, streamType string, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, qTenantStreams, tenantID, streamType, ids)
	if err != nil {
		return nil, fmt.Errorf("read streams: %w", translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var v int64
		var last []byte
		if err := rows.Scan(&id, &v, &last); err != nil {
			return nil, fmt.Errorf("read streams: %w", err)
		}
		out[id] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read streams: %w", translate(err))
	}
	return out, nil
}

// LastPosition is the position of the tenant's last committed event (0
// when it has none).
func (s *Store) LastPosition(ctx context.Context, tenantID string) (int64, error) {
	var pos int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM events WHERE tenant_id = $1`, tenantID).Scan(&pos); err != nil {
		return 0, fmt.Errorf("last position: %w", translate(err))
	}
	return pos, nil
}

// qStreamsWithEventsAfter names the tenant's streams with an event of one
// of the types past a point in subscriber order.
const qStreamsWithEventsAfter = `SELECT DISTINCT stream_id::text FROM events
	WHERE tenant_id = $1 AND type = ANY($2::text[]) AND (transaction_id, position) > ($3::text::xid8, $4)`

// StreamsWithEventsAfter names the tenant's streams that have an event of
// one of types past after (subscriber order), read in the transaction: what
// a read model whose checkpoint is after has not applied yet.
func (t *Tx) StreamsWithEventsAfter(ctx context.Context, tenantID string, types []string, after Cursor) ([]string, error) {
	rows, err := t.Query(ctx, qStreamsWithEventsAfter, tenantID, types, strconv.FormatUint(after.TransactionID, 10), after.Position)
	if err != nil {
		return nil, fmt.Errorf("streams with events after %v: %w", after, translate(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("streams with events after %v: %w", after, translate(err))
	}
	return ids, nil
}
