package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// StreamWrite is the part of an append that goes to one stream.
type StreamWrite struct {
	StreamID   string
	StreamType string
	// ExpectedVersion is Any, NoStream, or the exact current version.
	ExpectedVersion int64
	Events          []EventData
}

// Guard asserts that a stream the command read but does not write is still at
// the version it read. The stream is share-locked until commit, so a writer to
// it (a deactivation, say) waits for this append and then sees its effect.
type Guard struct {
	StreamID string
	Version  int64
}

// Claim reserves a value (an e-mail address, an external ID) for an owner
// within a tenant. Claiming a value one already owns is a no-op.
type Claim struct {
	Kind    string
	Value   string
	OwnerID string
}

// Idempotency records an idempotency key with the append. Response builds the
// answer to store for replays; it sees the append's result (positions).
type Idempotency struct {
	Key         string
	RequestHash []byte
	Response    func(AppendResult) ([]byte, error)
}

// AppendRequest is everything one command writes, atomically.
type AppendRequest struct {
	TenantID    string
	Streams     []StreamWrite
	Guards      []Guard
	Claims      []Claim
	Releases    []Claim
	Metadata    Metadata
	Idempotency *Idempotency
	// Side writes rows that must commit with the events (keys, invitations).
	Side func(ctx context.Context, tx pgx.Tx) error
	// Now overrides the recording time (tests); zero means the clock.
	Now time.Time
}

// AppendResult describes a successful (or replayed) append.
type AppendResult struct {
	// Position of the last event appended; the read-your-writes token.
	Position      int64
	TransactionID uint64
	// Versions is each written stream's version after the append.
	Versions map[string]int64
	// Replayed is true when an idempotency key matched an earlier append;
	// Response then holds what that append stored and nothing was written.
	Replayed bool
	Response []byte
}

// Append writes req in its own transaction.
func (s *Store) Append(ctx context.Context, req AppendRequest) (AppendResult, error) {
	var res AppendResult
	err := s.Transact(ctx, func(ctx context.Context, tx *Tx) error {
		var err error
		res, err = tx.Append(ctx, req)
		if err == nil && res.Replayed {
			return errReplayed
		}
		return err
	})
	if errors.Is(err, errReplayed) {
		return res, nil
	}
	return res, err
}

// errReplayed rolls back the transaction of a replay, which wrote nothing.
var errReplayed = errors.New("replayed")

// LookupIdempotency returns the stored response for key, if any. Commands
// call it before deciding so a retry replays the first answer instead of
// running into a rule the first attempt already satisfied.
func (s *Store) LookupIdempotency(ctx context.Context, tenantID, key string, requestHash []byte) (AppendResult, bool, error) {
	var (
		hash     []byte
		response []byte
		position *int64
	)
	err := s.pool.QueryRow(ctx, qLookupIdempotency, tenantID, key).Scan(&hash, &response, &position)
	if errors.Is(err, pgx.ErrNoRows) {
		return AppendResult{}, false, nil
	}
	if err != nil {
		return AppendResult{}, false, fmt.Errorf("lookup idempotency key: %w", err)
	}
	if !bytes.Equal(hash, requestHash) {
		return AppendResult{}, false, ErrIdempotencyKeyReused
	}
	res := AppendResult{Replayed: true, Response: response}
	if position != nil {
		res.Position = *position
	}
	return res, true, nil
}

const qLookupIdempotency = `SELECT request_hash, response, position FROM idempotency_keys WHERE tenant_id = $1 AND key = $2`

// Append writes req inside the transaction. On an idempotent replay it
// writes nothing and returns Replayed; the caller should roll back.
func (t *Tx) Append(ctx context.Context, req AppendRequest) (AppendResult, error) {
	if req.TenantID == "" {
		return AppendResult{}, errors.New("append: tenant id is required")
	}
	if req.Idempotency != nil {
		tag, err := t.tx.Exec(ctx, `INSERT INTO idempotency_keys (tenant_id, key, request_hash)
			VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, req.TenantID, req.Idempotency.Key, req.Idempotency.RequestHash)
		if err != nil {
			return AppendResult{}, fmt.Errorf("record idempotency key: %w", translate(err))
		}
		if tag.RowsAffected() == 0 {
			var hash, response []byte
			var position *int64
			if err := t.tx.QueryRow(ctx, qLookupIdempotency, req.TenantID, req.Idempotency.Key).Scan(&hash, &response, &position); err != nil {
				return AppendResult{}, fmt.Errorf("read idempotency key: %w", err)
			}
			if !bytes.Equal(hash, req.Idempotency.RequestHash) {
				return AppendResult{}, ErrIdempotencyKeyReused
			}
			res := AppendResult{Replayed: true, Response: response}
			if position != nil {
				res.Position = *position
			}
			return res, nil
		}
	}

	metadata, err := json.Marshal(req.Metadata)
	if err != nil {
		return AppendResult{}, fmt.Errorf("encode metadata: %w", err)
	}
	canonMeta, err := canonicalJSON(metadata)
	if err != nil {
		return AppendResult{}, err
	}

	if err := t.checkGuards(ctx, req.Guards); err != nil {
		return AppendResult{}, err
	}
	heads, err := t.lockHeads(ctx, req.Streams)
	if err != nil {
		return AppendResult{}, err
	}
	// The clock is read only once the streams are locked, so recorded times
	// never go backwards within a stream and as-of questions have one answer.
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	// Microseconds: what timestamptz keeps, so the hash can be recomputed.
	now = now.UTC().Truncate(time.Microsecond)

	res := AppendResult{Versions: map[string]int64{}}
	var (
		tenantIDs, streamIDs, types, datas []string
		versions                           []int64
		schemas                            []int32
		prevBytes, hashBytes               [][]byte
	)
	for _, w := range req.Streams {
		h := heads[w.StreamID]
		if w.ExpectedVersion != Any && w.ExpectedVersion != h.version {
			return AppendResult{}, &VersionMismatchError{StreamID: w.StreamID, Expected: w.ExpectedVersion, Actual: h.version}
		}
		if h.exists && h.tenantID != req.TenantID {
			return AppendResult{}, fmt.Errorf("stream %s belongs to another tenant", w.StreamID)
		}
		prev, version := h.lastHash, h.version
		for _, e := range w.Events {
			version++
			schema := e.SchemaVersion
			if schema == 0 {
				schema = 1
			}
			canon, err := canonicalJSON(e.Data)
			if err != nil {
				return AppendResult{}, fmt.Errorf("event %s: %w", e.Type, err)
			}
			hash := chainHash(prev, hashInput{
				TenantID: req.TenantID, StreamID: w.StreamID, Version: version, Type: e.Type,
				SchemaVersion: schema, RecordedAtUS: now.UnixMicro(), Data: canon, Metadata: canonMeta,
			})
			tenantIDs = append(tenantIDs, req.TenantID)
			streamIDs = append(streamIDs, w.StreamID)
			versions = append(versions, version)
			types = append(types, e.Type)
			schemas = append(schemas, int32(schema))
			datas = append(datas, string(canon))
			prevBytes = append(prevBytes, prev)
			hashBytes = append(hashBytes, hash)
			prev = hash
		}
		h.version, h.lastHash = version, prev
		heads[w.StreamID] = h
		res.Versions[w.StreamID] = version
	}

	if len(streamIDs) > 0 {
		rows, err := t.tx.Query(ctx, qInsertEvents, tenantIDs, streamIDs, versions, types, schemas, datas,
			string(canonMeta), now, prevBytes, hashBytes)
		if err != nil {
			return AppendResult{}, fmt.Errorf("insert events: %w", translate(err))
		}
		for rows.Next() {
			var pos int64
			var txid string
			if err := rows.Scan(&pos, &txid); err != nil {
				rows.Close()
				return AppendResult{}, fmt.Errorf("insert events: %w", err)
			}
			if pos > res.Position {
				res.Position = pos
			}
			res.TransactionID, _ = strconv.ParseUint(txid, 10, 64)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return AppendResult{}, fmt.Errorf("insert events: %w", translate(err))
		}
		if err := t.saveHeads(ctx, req.TenantID, req.Streams, heads); err != nil {
			return AppendResult{}, err
		}
	}

	if err := t.applyClaims(ctx, req.TenantID, req.Claims, req.Releases); err != nil {
		return AppendResult{}, err
	}
	if req.Side != nil {
		if err := req.Side(ctx, t.tx); err != nil {
			return AppendResult{}, err
		}
	}
	if req.Idempotency != nil {
		var response []byte
		if req.Idempotency.Response != nil {
			if response, err = req.Idempotency.Response(res); err != nil {
				return AppendResult{}, fmt.Errorf("idempotent response: %w", err)
			}
		}
		if _, err := t.tx.Exec(ctx, `UPDATE idempotency_keys SET response = $3, position = $4
			WHERE tenant_id = $1 AND key = $2`, req.TenantID, req.Idempotency.Key, response, nullablePosition(res.Position)); err != nil {
			return AppendResult{}, fmt.Errorf("store idempotent response: %w", err)
		}
		res.Response = response
	}
	if res.Position > t.lastPosition {
		t.lastPosition = res.Position
	}
	return res, nil
}

func nullablePosition(p int64) any {
	if p == 0 {
		return nil
	}
	return p
}

const qInsertEvents = `
INSERT INTO events (tenant_id, stream_id, stream_version, type, schema_version, data, metadata, recorded_at, prev_hash, hash)
SELECT t, s, v, ty, sv, d::jsonb, $7::jsonb, $8, p, h
FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::int[], $6::text[], $9::bytea[], $10::bytea[])
    AS u(t, s, v, ty, sv, d, p, h)
RETURNING position, transaction_id::text`

type head struct {
	exists   bool
	tenantID string
	version  int64
	lastHash []byte
}

// lockHeads locks the written streams' rows in a fixed order, so two appends
// touching the same streams cannot deadlock each other.
func (t *Tx) lockHeads(ctx context.Context, writes []StreamWrite) (map[string]head, error) {
	ids := make([]string, 0, len(writes))
	seen := map[string]bool{}
	for _, w := range writes {
		if seen[w.StreamID] {
			return nil, fmt.Errorf("append: stream %s written twice in one request", w.StreamID)
		}
		seen[w.StreamID] = true
		ids = append(ids, w.StreamID)
	}
	sort.Strings(ids)
	heads := make(map[string]head, len(ids))
	for _, id := range ids {
		heads[id] = head{lastHash: genesisHash}
	}
	if len(ids) == 0 {
		return heads, nil
	}
	rows, err := t.tx.Query(ctx, `SELECT stream_id::text, tenant_id::text, version, last_hash FROM streams
		WHERE stream_id = ANY($1::uuid[]) ORDER BY stream_id FOR UPDATE`, ids)
	if err != nil {
		return nil, fmt.Errorf("lock streams: %w", translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var h head
		if err := rows.Scan(&id, &h.tenantID, &h.version, &h.lastHash); err != nil {
			return nil, fmt.Errorf("lock streams: %w", err)
		}
		h.exists = true
		heads[id] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock streams: %w", translate(err))
	}
	return heads, nil
}

func (t *Tx) saveHeads(ctx context.Context, tenantID string, writes []StreamWrite, heads map[string]head) error {
	var ids, types []string
	var versions []int64
	var hashes [][]byte
	for _, w := range writes {
		if len(w.Events) == 0 {
			continue
		}
		h := heads[w.StreamID]
		ids = append(ids, w.StreamID)
		types = append(types, w.StreamType)
		versions = append(versions, h.version)
		hashes = append(hashes, h.lastHash)
	}
	// A new stream inserted concurrently by someone else hits the primary
	// key and surfaces as a version mismatch.
	_, err := t.tx.Exec(ctx, `
INSERT INTO streams (stream_id, tenant_id, stream_type, version, last_hash)
SELECT s, $1, ty, v, h FROM unnest($2::uuid[], $3::text[], $4::bigint[], $5::bytea[]) AS u(s, ty, v, h)
ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_hash = excluded.last_hash`,
		tenantID, ids, types, versions, hashes)
	if err != nil {
		return fmt.Errorf("save stream heads: %w", translate(err))
	}
	return nil
}

func (t *Tx) checkGuards(ctx context.Context, guards []Guard) error {
	if len(guards) == 0 {
		return nil
	}
	sorted := append([]Guard(nil), guards...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].StreamID < sorted[j].StreamID })
	for _, g := range sorted {
		var v int64
		err := t.tx.QueryRow(ctx, `SELECT version FROM streams WHERE stream_id = $1 FOR SHARE`, g.StreamID).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			v = 0
		} else if err != nil {
			return fmt.Errorf("check guard %s: %w", g.StreamID, translate(err))
		}
		if v != g.Version {
			return &VersionMismatchError{StreamID: g.StreamID, Expected: g.Version, Actual: v}
		}
	}
	return nil
}

func (t *Tx) applyClaims(ctx context.Context, tenantID string, claims, releases []Claim) error {
	for _, r := range releases {
		if _, err := t.tx.Exec(ctx, `DELETE FROM unique_claims WHERE tenant_id = $1 AND kind = $2 AND value = $3 AND owner_id = $4`,
			tenantID, r.Kind, r.Value, r.OwnerID); err != nil {
			return fmt.Errorf("release %s: %w", r.Kind, translate(err))
		}
	}
	for _, c := range claims {
		tag, err := t.tx.Exec(ctx, `INSERT INTO unique_claims (tenant_id, kind, value, owner_id)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, tenantID, c.Kind, c.Value, c.OwnerID)
		if err != nil {
			return fmt.Errorf("claim %s: %w", c.Kind, translate(err))
		}
		if tag.RowsAffected() == 1 {
			continue
		}
		// A separate statement: its snapshot sees a claim committed while
		// the insert above waited for it.
		var owner string
		err = t.tx.QueryRow(ctx, `SELECT owner_id::text FROM unique_claims WHERE tenant_id = $1 AND kind = $2 AND value = $3`,
			tenantID, c.Kind, c.Value).Scan(&owner)
		if err != nil {
			return fmt.Errorf("claim %s: %w", c.Kind, translate(err))
		}
		if owner != c.OwnerID {
			return &ClaimTakenError{Kind: c.Kind, Value: c.Value, Owner: owner}
		}
	}
	return nil
}
