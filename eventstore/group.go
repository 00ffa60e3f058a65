package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// The operations of a group transaction: many commands decided together and
// committed at once (commands' unit of work). They are typed and named for
// what they do; the caller queues the lock round trip's operations on one
// batch (with its own reads), decides, then appends every command's events
// with AppendCommands and, when some of them carry an idempotency key,
// stores their answers with StoreResponses, which commits.

// LockedHead is a stream head locked by QueueLockHeads.
type LockedHead struct {
	TenantID string
	Type     string
	Version  int64
}

// QueueLockHeads queues on b a statement that locks the streams among ids
// FOR UPDATE in ID order (the global order every writer locks streams in),
// and returns the function that reads their heads from the batch's
// results; streams that do not exist are absent. The transaction remembers
// the heads, so AppendCommands needs not read them again.
func (t *Tx) QueueLockHeads(b *pgx.Batch, ids []string) func(pgx.BatchResults) (map[string]LockedHead, error) {
	b.Queue(qLockTypedHeads, ids)
	return func(br pgx.BatchResults) (map[string]LockedHead, error) {
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("lock streams: %w", translate(err))
		}
		defer rows.Close()
		out := make(map[string]LockedHead, len(ids))
		for rows.Next() {
			var id string
			var lh LockedHead
			h := head{exists: true}
			if err := rows.Scan(&id, &h.tenantID, &lh.Type, &h.version, &h.lastHash); err != nil {
				return nil, fmt.Errorf("lock streams: %w", err)
			}
			t.rememberHead(id, h)
			lh.TenantID, lh.Version = h.tenantID, h.version
			out[id] = lh
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("lock streams: %w", translate(err))
		}
		return out, nil
	}
}

const qLockTypedHeads = `SELECT stream_id::text, tenant_id::text, stream_type, version, last_hash FROM streams
	WHERE stream_id = ANY($1::text[]::uuid[]) ORDER BY stream_id FOR UPDATE`

// QueueStreamVersions queues on b a plain read (no lock) of the versions of
// the streams among ids, and returns the function that reads them; streams
// that do not exist are absent.
func (t *Tx) QueueStreamVersions(b *pgx.Batch, ids []string) func(pgx.BatchResults) (map[string]int64, error) {
	b.Queue(qStreamVersions, ids)
	return func(br pgx.BatchResults) (map[string]int64, error) {
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("read stream versions: %w", translate(err))
		}
		defer rows.Close()
		out := make(map[string]int64, len(ids))
		for rows.Next() {
			var id string
			var v int64
			if err := rows.Scan(&id, &v); err != nil {
				return nil, fmt.Errorf("read stream versions: %w", err)
			}
			out[id] = v
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read stream versions: %w", translate(err))
		}
		return out, nil
	}
}

const qStreamVersions = `SELECT stream_id::text, version FROM streams WHERE stream_id = ANY($1::text[]::uuid[])`

// IdempotencyRecord is what QueueRecordIdempotency found: a key recorded by
// this transaction (New), or the answer stored by an earlier command.
type IdempotencyRecord struct {
	New      bool
	Response []byte
	Position int64
	// hash is the request hash the key is recorded with; legacy is set
	// when a plain (unkeyed) hash may match it too (a stored record).
	hash   []byte
	legacy bool
}

// Answers reports whether the record answers a request with this hash (or
// plain legacyHash, for a record stored before request hashes were keyed):
// otherwise the request reuses the key (ErrIdempotencyKeyReused). Commands
// sharing a key in one group each ask for their own request.
func (r IdempotencyRecord) Answers(requestHash, legacyHash []byte) bool {
	return bytes.Equal(r.hash, requestHash) || (r.legacy && legacyHash != nil && bytes.Equal(r.hash, legacyHash))
}

// QueueRecordIdempotency queues on b the recording of key for a command
// that has not run yet, and returns the function that reads the outcome:
// New when this transaction recorded it (its row is locked until commit, so
// a concurrent command with the same key waits and then replays), the
// stored answer when an earlier command committed it; Answers tells which
// requests it answers.
//
// A recorded key must get an answer (StoreResponses) or be discarded
// (StoreResponses' discards, or the transaction's rollback).
//
// legacyHash, when not nil, is also accepted as the request's: the hash a
// record stored before request hashes were keyed holds. A record erasure
// scrubbed is ErrReplayUnavailable.
func (t *Tx) QueueRecordIdempotency(b *pgx.Batch, tenantID, key string, requestHash, legacyHash []byte) func(pgx.BatchResults) (IdempotencyRecord, error) {
	b.Queue(qRecordIdempotency, tenantID, key, requestHash)
	// A statement of its own: its snapshot sees a key committed while the
	// insert waited for it.
	b.Queue(qLookupIdempotency, tenantID, key)
	return func(br pgx.BatchResults) (IdempotencyRecord, error) {
		tag, err := br.Exec()
		if err != nil {
			return IdempotencyRecord{}, fmt.Errorf("record idempotency key: %w", translate(err))
		}
		var hash, response []byte
		var position *int64
		if err := br.QueryRow().Scan(&hash, &response, &position); err != nil {
			return IdempotencyRecord{}, fmt.Errorf("read idempotency key: %w", translate(err))
		}
		if tag.RowsAffected() == 1 {
			return IdempotencyRecord{New: true, hash: requestHash}, nil
		}
		if scrubbed(hash) {
			return IdempotencyRecord{}, ErrReplayUnavailable
		}
		r := IdempotencyRecord{Response: response, hash: hash, legacy: legacyHash != nil}
		if position != nil {
			r.Position = *position
		}
		return r, nil
	}
}

// CommandWrite is what one command of a group appends: events to streams
// this transaction has locked, each at the exact version the command
// decided on, with the command's own metadata.
type CommandWrite struct {
	TenantID string
	Streams  []StreamWrite
	Metadata Metadata
}

// AppendCommands appends every write in one statement, in order: a stream
// written by several commands gets their events one after the other, each
// command's at the version it expected, hash-chained onto the one before.
// Every stream must have been locked in this transaction (QueueLockHeads)
// and its head must be where the first write to it expects. The heads are
// moved in the same round trip, and with commit the transaction commits in
// it too. The results are per write, in order: the position of its last
// event (0 for a write without events), its streams' new versions and
// hashes.
func (t *Tx) AppendCommands(ctx context.Context, writes []CommandWrite, at time.Time, commit bool) ([]AppendResult, error) {
	now := at.UTC().Truncate(time.Microsecond)
	heads := map[string]head{}
	var rows eventRows
	var metas []string
	owner := map[streamVersion]int{}
	results := make([]AppendResult, len(writes))
	for i, w := range writes {
		if w.TenantID == "" {
			return nil, errors.New("append commands: tenant id is required")
		}
		meta, err := json.Marshal(w.Metadata)
		if err != nil {
			return nil, fmt.Errorf("encode metadata: %w", err)
		}
		canonMeta, err := canonicalJSON(meta)
		if err != nil {
			return nil, err
		}
		results[i] = AppendResult{Versions: map[string]int64{}, Hashes: map[string][]byte{}}
		for _, s := range w.Streams {
			h, ok := heads[s.StreamID]
			if !ok {
				if h, ok = t.heads[s.StreamID]; !ok {
					return nil, fmt.Errorf("append commands: stream %s is not locked by this transaction", s.StreamID)
				}
			}
			if h.tenantID != w.TenantID {
				return nil, fmt.Errorf("stream %s belongs to another tenant", s.StreamID)
			}
			if s.ExpectedVersion != h.version {
				return nil, &VersionMismatchError{StreamID: s.StreamID, Expected: s.ExpectedVersion, Actual: h.version}
			}
			first := len(rows.streamIDs)
			if h.version, h.lastHash, err = rows.chain(w.TenantID, s, h.version, h.lastHash, now, canonMeta); err != nil {
				return nil, err
			}
			for j := first; j < len(rows.streamIDs); j++ {
				metas = append(metas, string(canonMeta))
				owner[streamVersion{rows.streamIDs[j], rows.versions[j]}] = i
			}
			heads[s.StreamID] = h
			results[i].Versions[s.StreamID] = h.version
			results[i].Hashes[s.StreamID] = h.lastHash
		}
	}
	b := &pgx.Batch{}
	if len(rows.streamIDs) > 0 {
		ids := slices.Sorted(func(yield func(string) bool) {
			for id := range heads {
				if !yield(id) {
					return
				}
			}
		})
		versions, hashes := make([]int64, len(ids)), make([][]byte, len(ids))
		for k, id := range ids {
			versions[k], hashes[k] = heads[id].version, heads[id].lastHash
		}
		b.Queue(qAppendCommands, rows.tenantIDs, rows.streamIDs, rows.versions, rows.types, rows.schemas, rows.datas, metas, now,
			rows.prevHashes, rows.hashes, ids, versions, hashes)
	}
	if commit {
		t.queueCommit(b)
	}
	if b.Len() == 0 {
		return results, nil
	}
	br := t.sendBatch(ctx, b)
	err := func() error {
		if len(rows.streamIDs) > 0 {
			qr, err := br.Query()
			if err != nil {
				return fmt.Errorf("insert events: %w", translate(err))
			}
			for qr.Next() {
				var sv streamVersion
				var pos int64
				if err := qr.Scan(&sv.id, &sv.version, &pos); err != nil {
					qr.Close()
					return fmt.Errorf("insert events: %w", err)
				}
				i := owner[sv]
				results[i].Position = max(results[i].Position, pos)
				t.lastPosition = max(t.lastPosition, pos)
			}
			qr.Close()
			if err := qr.Err(); err != nil {
				return fmt.Errorf("insert events: %w", translate(err))
			}
		}
		if commit {
			if err := t.readCommit(br); err != nil {
				return translate(err)
			}
		}
		return nil
	}()
	if cerr := br.Close(); err == nil && cerr != nil && !t.committed {
		err = fmt.Errorf("append commands: %w", translate(cerr))
	}
	if err != nil {
		return nil, err
	}
	for id, h := range heads {
		t.rememberHead(id, h)
	}
	return results, nil
}

type streamVersion struct {
	id      string
	version int64
}

// qAppendCommands inserts a group's events and moves their streams' heads
// in one statement (one bind and execution rather than two): the heads are
// locked by the transaction, so no other writer sees the step between.
const qAppendCommands = `
WITH heads AS (
    UPDATE streams SET version = u.v, last_hash = u.h
    FROM unnest($11::text[]::uuid[], $12::bigint[], $13::bytea[]) AS u(s, v, h) WHERE streams.stream_id = u.s
)
INSERT INTO events (tenant_id, stream_id, stream_version, type, schema_version, data, metadata, recorded_at, prev_hash, hash)
SELECT t, s, v, ty, sv, d::jsonb, m::jsonb, $8, p, h
FROM unnest($1::text[]::uuid[], $2::text[]::uuid[], $3::bigint[], $4::text[], $5::int[], $6::text[], $7::text[], $9::bytea[], $10::bytea[])
    AS u(t, s, v, ty, sv, d, m, p, h)
RETURNING stream_id::text, stream_version, position`

// StoredResponse is the answer a keyed command stores for its replays.
type StoredResponse struct {
	TenantID string
	Key      string
	Response []byte
	// Position is the answer's read-your-writes position (0: none).
	Position int64
	// CustomerIDs are the customers the answer names: their erasure
	// deletes it.
	CustomerIDs []string
}

// IdempotencyKey names a recorded key.
type IdempotencyKey struct {
	TenantID string
	Key      string
}

// StoreResponses stores the answers of the keyed commands whose keys this
// transaction recorded, discards the keys of those that were refused (a
// refused command stores nothing), and commits: one round trip.
func (t *Tx) StoreResponses(ctx context.Context, responses []StoredResponse, discard []IdempotencyKey) error {
	b := &pgx.Batch{}
	for _, r := range responses {
		b.Queue(qStoreResponse, r.TenantID, r.Key, r.Response, nullablePosition(r.Position), r.CustomerIDs)
	}
	for _, k := range discard {
		b.Queue(qDiscardIdempotency, k.TenantID, k.Key)
	}
	if err := t.sendCommit(ctx, b); err != nil {
		return fmt.Errorf("store responses: %w", translate(err))
	}
	return nil
}

const qDiscardIdempotency = `DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND response IS NULL`

// CommitSent reports whether COMMIT was sent in this transaction: after a
// failure, whether the transaction may have committed.
func (t *Tx) CommitSent() bool { return t.commitSent }

// QueueReadStreams queues on b a read of the streams ids, each past the
// version at the same index of after (0: the whole stream), and returns the
// function that reads them, by stream, in version order. Queued after the
// locks of a transaction's first round trip, it sees every event of the
// streams locked. The events carry what deciding needs (position, stream,
// version, type, schema, data, recorded time), not their metadata and
// hashes.
func (t *Tx) QueueReadStreams(b *pgx.Batch, ids []string, after []int64) func(pgx.BatchResults) (map[string][]Event, error) {
	b.Queue(qReadStreamsAfter, ids, after)
	return func(br pgx.BatchResults) (map[string][]Event, error) {
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("read streams: %w", translate(err))
		}
		defer rows.Close()
		out := map[string][]Event{}
		for rows.Next() {
			var e Event
			var schema int32
			if err := rows.Scan(&e.Position, &e.TenantID, &e.StreamID, &e.Version, &e.Type, &schema, &e.Data, &e.RecordedAt); err != nil {
				return nil, fmt.Errorf("read streams: %w", err)
			}
			e.SchemaVersion = int(schema)
			e.RecordedAt = e.RecordedAt.UTC()
			out[e.StreamID] = append(out[e.StreamID], e)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read streams: %w", translate(err))
		}
		return out, nil
	}
}

const qReadStreamsAfter = `SELECT e.position, e.tenant_id::text, e.stream_id::text, e.stream_version, e.type, e.schema_version, e.data, e.recorded_at
	FROM unnest($1::text[]::uuid[], $2::bigint[]) AS u(s, v)
	JOIN events e ON e.stream_id = u.s AND e.stream_version > u.v
	ORDER BY e.stream_id, e.stream_version`

// ReadStreamsAfter reads the streams ids, each past the version at the same
// index of after (nil: whole streams), as QueueReadStreams does, in its own
// round trip inside the transaction.
func (t *Tx) ReadStreamsAfter(ctx context.Context, ids []string, after []int64) (map[string][]Event, error) {
	b := &pgx.Batch{}
	read := t.QueueReadStreams(b, ids, zeroIfNil(after, len(ids)))
	br := t.sendBatch(ctx, b)
	out, err := read(br)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("read streams: %w", translate(cerr))
	}
	return out, err
}

// ReadStreamsAfter is Tx.ReadStreamsAfter outside a transaction.
func (s *Store) ReadStreamsAfter(ctx context.Context, ids []string, after []int64) (map[string][]Event, error) {
	b := &pgx.Batch{}
	read := (&Tx{}).QueueReadStreams(b, ids, zeroIfNil(after, len(ids)))
	br := s.pool.SendBatch(ctx, b)
	out, err := read(br)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("read streams: %w", translate(cerr))
	}
	return out, err
}

func zeroIfNil(after []int64, n int) []int64 {
	if after == nil {
		return make([]int64, n)
	}
	return after
}
