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
	// Names are customers the stored answer names besides those whose
	// streams the append writes (a bulk answer's unchanged ones): the
	// erasure of any of them scrubs the record too.
	Names []string
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
	// Outbox are messages to deliver once the events commit (e-mails),
	// written in the same transaction.
	Outbox []OutboxMessage
	// Forget are customers being erased: the side records that name them
	// (invitations, outbox rows) are deleted in the same transaction, and
	// the idempotency records whose stored answer names them (except this
	// append's own) scrubbed, their keys kept used (ErrReplayUnavailable).
	// Their claims go with Releases.
	Forget []string
	// Now overrides the recording time (tests); zero means the clock.
	Now time.Time
	// Commit commits the transaction with the append (its last statements
	// and COMMIT share a round trip). Only for the last thing a transaction
	// function does: it must return right after, and Transact then has
	// nothing left to commit. A replayed or failed append does not commit.
	Commit bool
}

// AppendResult describes a successful (or replayed) append.
type AppendResult struct {
	// Position of the last event appended; the read-your-writes token.
	Position      int64
	TransactionID uint64
	// Versions is each written stream's version after the append.
	Versions map[string]int64
	// Hashes is each written stream's last hash after the append: with
	// Versions, the Head a later Tx.Expect may start from.
	Hashes map[string][]byte
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
		req.Commit = true
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
// running into a rule the first attempt already satisfied. A key erasure
// scrubbed is ErrReplayUnavailable.
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
	if scrubbed(hash) {
		return AppendResult{}, false, ErrReplayUnavailable
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
//
// It takes at most three round trips, fewer when it can: one to record the
// idempotency key, check the guards and lock the stream heads the
// transaction does not hold yet (QueueLockHeads, LockStream); one to insert
// the events, move the heads and apply the claims; one to store the
// idempotent response. COMMIT rides on the last one when req.Commit is set.
func (t *Tx) Append(ctx context.Context, req AppendRequest) (AppendResult, error) {
	if req.TenantID == "" {
		return AppendResult{}, errors.New("append: tenant id is required")
	}
	ids, err := streamIDsOf(req.Streams)
	if err != nil {
		return AppendResult{}, err
	}
	canonMeta, err := req.canonicalMetadata()
	if err != nil {
		return AppendResult{}, err
	}

	// Heads this transaction holds already; the others are locked below.
	heads := make(map[string]head, len(ids))
	var missing []string
	for _, id := range ids {
		if h, ok := t.heads[id]; ok {
			heads[id] = h
		} else {
			heads[id] = head{lastHash: genesisHash}
			missing = append(missing, id)
		}
	}
	// The idempotency key is recorded before anything is checked, so a
	// replay wins over a version mismatch. It can wait for the write round
	// trip only when nothing is left to check in between.
	idemFirst := req.Idempotency != nil &&
		(len(missing) > 0 || len(req.Guards) > 0 || mismatch(req.TenantID, req.Streams, heads) != nil)
	if idemFirst || len(missing) > 0 || len(req.Guards) > 0 {
		b := &pgx.Batch{}
		if idemFirst {
			queueIdempotency(b, req)
		}
		guards := sortedGuards(req.Guards)
		for _, g := range guards {
			b.Queue(qGuard, g.StreamID)
		}
		if len(missing) > 0 {
			b.Queue(qLockHeads, missing)
		}
		br := t.sendBatch(ctx, b)
		res, replayed, err := t.readLocks(br, req, idemFirst, guards, missing, heads)
		if cerr := br.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("lock streams: %w", translate(cerr))
		}
		if err != nil || replayed {
			return res, err
		}
	}
	if err := mismatch(req.TenantID, req.Streams, heads); err != nil {
		return AppendResult{}, err
	}

	// The clock is read only once the streams are locked, so recorded times
	// never go backwards within a stream and as-of questions have one answer.
	now := req.recordedAt()

	res := AppendResult{Versions: map[string]int64{}, Hashes: map[string][]byte{}}
	var rows eventRows
	for _, w := range req.Streams {
		h := heads[w.StreamID]
		h.version, h.lastHash, err = rows.chain(req.TenantID, w, h.version, h.lastHash, now, canonMeta)
		if err != nil {
			return AppendResult{}, err
		}
		heads[w.StreamID] = h
		res.Versions[w.StreamID] = h.version
		res.Hashes[w.StreamID] = h.lastHash
	}
	streamIDs := rows.streamIDs

	// The write round trip. Its statements fail (and abort the transaction)
	// rather than return something to check, except the idempotency key and
	// the claims: COMMIT may follow them only without those.
	b := &pgx.Batch{}
	idemLate := req.Idempotency != nil && !idemFirst
	if idemLate {
		queueIdempotency(b, req)
	}
	saveHeads := false
	if len(streamIDs) > 0 {
		b.Queue(qInsertEvents, rows.args(canonMeta, now)...)
		saveHeads = queueSaveHeads(b, req.TenantID, req.Streams, heads)
	}
	if len(req.Outbox) > 0 {
		b.Queue(qInsertOutbox, outboxArgs(req.TenantID, req.Outbox, now)...)
	}
	for _, r := range req.Releases {
		b.Queue(qRelease, req.TenantID, r.Kind, r.Value, r.OwnerID)
	}
	if len(req.Forget) > 0 {
		ownKey := ""
		if req.Idempotency != nil {
			ownKey = req.Idempotency.Key
		}
		b.Queue(qForget, req.TenantID, req.Forget, ownKey)
	}
	for _, c := range req.Claims {
		b.Queue(qClaim, req.TenantID, c.Kind, c.Value, c.OwnerID)
		// A separate statement: its snapshot sees a claim committed while
		// the insert above waited for it.
		b.Queue(qClaimOwner, req.TenantID, c.Kind, c.Value)
	}
	commitNow := req.Commit && req.Idempotency == nil && len(req.Claims) == 0
	if b.Len() == 0 && !commitNow {
		b = nil
	}
	if b != nil {
		if commitNow {
			t.queueCommit(b)
		}
		br := t.sendBatch(ctx, b)
		var replayed bool
		res, replayed, err = t.readWrites(br, req, idemLate, len(streamIDs) > 0, saveHeads, res)
		if err == nil && commitNow {
			err = t.readCommit(br)
		}
		if cerr := br.Close(); err == nil && cerr != nil && !t.committed {
			err = fmt.Errorf("append: %w", translate(cerr))
		}
		if err != nil || replayed {
			return res, err
		}
	}
	// The heads written are locked (or inserted) by this transaction now.
	for _, w := range req.Streams {
		if len(w.Events) > 0 {
			h := heads[w.StreamID]
			h.exists, h.tenantID = true, req.TenantID
			t.rememberHead(w.StreamID, h)
		}
	}
	if res.Position > t.lastPosition {
		t.lastPosition = res.Position
	}
	if t.committed {
		return res, nil
	}

	b = &pgx.Batch{}
	if req.Idempotency != nil {
		var response []byte
		if req.Idempotency.Response != nil {
			if response, err = req.Idempotency.Response(res); err != nil {
				return AppendResult{}, fmt.Errorf("idempotent response: %w", err)
			}
		}
		b.Queue(qStoreResponse, req.TenantID, req.Idempotency.Key, response, nullablePosition(res.Position),
			append(customerStreams(req.Streams), req.Idempotency.Names...))
		res.Response = response
	}
	if req.Commit {
		if err := t.sendCommit(ctx, b); err != nil {
			return AppendResult{}, fmt.Errorf("append: %w", translate(err))
		}
	} else if b.Len() > 0 {
		if err := t.sendBatch(ctx, b).Close(); err != nil {
			return AppendResult{}, fmt.Errorf("store idempotent response: %w", translate(err))
		}
	}
	return res, nil
}

const (
	qRecordIdempotency = `INSERT INTO idempotency_keys (tenant_id, key, request_hash)
			VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`
	qStoreResponse = `UPDATE idempotency_keys SET response = $3, position = $4, customer_ids = $5::text[]::uuid[]
			WHERE tenant_id = $1 AND key = $2`
	// qForget deletes what names erased customers outside the events, in
	// one statement (data-modifying CTEs). A customer message whose
	// e-mails all went to erased customers loses its subject and body: an
	// admin writing to one customer may well have named them in it (a
	// message to many is a circular, and keeps its text). An outbox row a relay holds
	// while it delivers is skipped, not waited for: the relay records the
	// delivery on the customer's stream, whose lock this transaction
	// holds, before it lets the row go (two connections: PostgreSQL would
	// never see the deadlock). It forgets the row itself on finding the
	// customer erased (ForgetOutbox). Their claims are released by
	// value (the append's Releases, by primary key): unique_claims has no
	// index by owner, and a scan of a tenant's claims per erasure would not
	// do. Store.Forget, an operator's tool, deletes them by owner. The
	// idempotency records whose answers name them are scrubbed, not
	// deleted (see scrubbed): their keys stay used.
	qForget = `WITH i AS (DELETE FROM invitations WHERE tenant_id = $1 AND customer_id = ANY($2::text[]::uuid[])),
	o AS (DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
		WHERE tenant_id = $1 AND customer_id = ANY($2::text[]::uuid[]) FOR UPDATE SKIP LOCKED) RETURNING message_id),
	m AS (UPDATE messages SET subject = '', body = ''
		WHERE tenant_id = $1 AND id IN (SELECT message_id FROM o)
		AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.message_id = messages.id AND x.customer_id <> ALL($2::text[]::uuid[])))
	UPDATE idempotency_keys SET request_hash = '\x'::bytea, response = NULL
	WHERE tenant_id = $1 AND customer_ids && $2::text[]::uuid[] AND key <> $3`
	qGuard     = `SELECT version FROM streams WHERE stream_id = $1 FOR SHARE`
	qLockHeads = `SELECT stream_id::text, tenant_id::text, version, last_hash FROM streams
		WHERE stream_id = ANY($1::text[]::uuid[]) ORDER BY stream_id FOR UPDATE`
	qRelease = `DELETE FROM unique_claims WHERE tenant_id = $1 AND kind = $2 AND value = $3 AND owner_id = $4`
	qClaim   = `INSERT INTO unique_claims (tenant_id, kind, value, owner_id)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`
	qClaimOwner = `SELECT owner_id::text FROM unique_claims WHERE tenant_id = $1 AND kind = $2 AND value = $3`
)

// customerStreams lists the customer streams an append writes (or names
// with no events: a command that changed nothing still answers the
// customer): the customers its idempotent answer may name (a customer's
// profile included), so that their erasure scrubs it.
func customerStreams(ws []StreamWrite) []string {
	var ids []string
	for _, w := range ws {
		if w.StreamType == "customer" {
			ids = append(ids, w.StreamID)
		}
	}
	return ids
}

// queueIdempotency records the key and then, in a statement of its own
// (whose snapshot sees a key committed while the insert waited), reads it.
func queueIdempotency(b *pgx.Batch, req AppendRequest) {
	b.Queue(qRecordIdempotency, req.TenantID, req.Idempotency.Key, req.Idempotency.RequestHash)
	b.Queue(qLookupIdempotency, req.TenantID, req.Idempotency.Key)
}

// readIdempotency reads what queueIdempotency queued: replayed when the key
// was recorded before.
func readIdempotency(br pgx.BatchResults, req AppendRequest) (AppendResult, bool, error) {
	tag, err := br.Exec()
	if err != nil {
		return AppendResult{}, false, fmt.Errorf("record idempotency key: %w", translate(err))
	}
	var hash, response []byte
	var position *int64
	if err := br.QueryRow().Scan(&hash, &response, &position); err != nil {
		return AppendResult{}, false, fmt.Errorf("read idempotency key: %w", translate(err))
	}
	if tag.RowsAffected() == 1 {
		return AppendResult{}, false, nil
	}
	if scrubbed(hash) {
		return AppendResult{}, false, ErrReplayUnavailable
	}
	if !bytes.Equal(hash, req.Idempotency.RequestHash) {
		return AppendResult{}, false, ErrIdempotencyKeyReused
	}
	res := AppendResult{Replayed: true, Response: response}
	if position != nil {
		res.Position = *position
	}
	return res, true, nil
}

// readLocks reads the lock round trip into heads.
func (t *Tx) readLocks(br pgx.BatchResults, req AppendRequest, idem bool, guards []Guard, missing []string, heads map[string]head) (AppendResult, bool, error) {
	if idem {
		if res, replayed, err := readIdempotency(br, req); err != nil || replayed {
			return res, replayed, err
		}
	}
	for _, g := range guards {
		var v int64
		err := br.QueryRow().Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			v = 0
		} else if err != nil {
			return AppendResult{}, false, fmt.Errorf("check guard %s: %w", g.StreamID, translate(err))
		}
		if v != g.Version {
			return AppendResult{}, false, &VersionMismatchError{StreamID: g.StreamID, Expected: g.Version, Actual: v}
		}
	}
	if len(missing) == 0 {
		return AppendResult{}, false, nil
	}
	rows, err := br.Query()
	if err != nil {
		return AppendResult{}, false, fmt.Errorf("lock streams: %w", translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var h head
		if err := rows.Scan(&id, &h.tenantID, &h.version, &h.lastHash); err != nil {
			return AppendResult{}, false, fmt.Errorf("lock streams: %w", err)
		}
		h.exists = true
		heads[id] = h
		t.rememberHead(id, h)
	}
	if err := rows.Err(); err != nil {
		return AppendResult{}, false, fmt.Errorf("lock streams: %w", translate(err))
	}
	return AppendResult{}, false, nil
}

// readWrites reads the write round trip (up to, not including, COMMIT).
func (t *Tx) readWrites(br pgx.BatchResults, req AppendRequest, idem, events, saveHeads bool, res AppendResult) (AppendResult, bool, error) {
	if idem {
		if r, replayed, err := readIdempotency(br, req); err != nil || replayed {
			return r, replayed, err
		}
	}
	if events {
		rows, err := br.Query()
		if err != nil {
			return AppendResult{}, false, fmt.Errorf("insert events: %w", translate(err))
		}
		for rows.Next() {
			var pos int64
			var txid string
			if err := rows.Scan(&pos, &txid); err != nil {
				rows.Close()
				return AppendResult{}, false, fmt.Errorf("insert events: %w", err)
			}
			if pos > res.Position {
				res.Position = pos
			}
			res.TransactionID, _ = strconv.ParseUint(txid, 10, 64)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return AppendResult{}, false, fmt.Errorf("insert events: %w", translate(err))
		}
	}
	if saveHeads {
		// A new stream inserted concurrently by someone else hits the
		// primary key and surfaces as a version mismatch.
		if _, err := br.Exec(); err != nil {
			return AppendResult{}, false, fmt.Errorf("save stream heads: %w", translate(err))
		}
	}
	if len(req.Outbox) > 0 {
		if _, err := br.Exec(); err != nil {
			return AppendResult{}, false, fmt.Errorf("write outbox: %w", translate(err))
		}
	}
	for _, r := range req.Releases {
		if _, err := br.Exec(); err != nil {
			return AppendResult{}, false, fmt.Errorf("release %s: %w", r.Kind, translate(err))
		}
	}
	if len(req.Forget) > 0 {
		if _, err := br.Exec(); err != nil {
			return AppendResult{}, false, fmt.Errorf("forget erased customers: %w", translate(err))
		}
	}
	for _, c := range req.Claims {
		if _, err := br.Exec(); err != nil {
			return AppendResult{}, false, fmt.Errorf("claim %s: %w", c.Kind, translate(err))
		}
		var owner string
		if err := br.QueryRow().Scan(&owner); err != nil {
			return AppendResult{}, false, fmt.Errorf("claim %s: %w", c.Kind, translate(err))
		}
		if owner != c.OwnerID {
			return AppendResult{}, false, &ClaimTakenError{Kind: c.Kind, Value: c.Value, Owner: owner}
		}
	}
	return res, false, nil
}

// mismatch checks the expected versions and the tenant against heads.
func mismatch(tenantID string, writes []StreamWrite, heads map[string]head) error {
	for _, w := range writes {
		h := heads[w.StreamID]
		if w.ExpectedVersion != Any && w.ExpectedVersion != h.version {
			return &VersionMismatchError{StreamID: w.StreamID, Expected: w.ExpectedVersion, Actual: h.version}
		}
		if h.exists && h.tenantID != tenantID {
			return fmt.Errorf("stream %s belongs to another tenant", w.StreamID)
		}
	}
	return nil
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
FROM unnest($1::text[]::uuid[], $2::text[]::uuid[], $3::bigint[], $4::text[], $5::int[], $6::text[], $9::bytea[], $10::bytea[])
    AS u(t, s, v, ty, sv, d, p, h)
RETURNING position, transaction_id::text`

// eventRows are events ready to insert, column by column (qInsertEvents).
type eventRows struct {
	tenantIDs, streamIDs, types, datas []string
	versions                           []int64
	schemas                            []int32
	prevHashes, hashes                 [][]byte
}

// chain adds w's events on top of a stream at version with last hash prev,
// hashing each onto the one before, and returns the stream's new version
// and last hash.
func (r *eventRows) chain(tenantID string, w StreamWrite, version int64, prev []byte, now time.Time, canonMeta []byte) (int64, []byte, error) {
	for _, e := range w.Events {
		version++
		schema := e.SchemaVersion
		if schema == 0 {
			schema = 1
		}
		canon, err := canonicalJSON(e.Data)
		if err != nil {
			return 0, nil, fmt.Errorf("event %s: %w", e.Type, err)
		}
		hash := chainHash(prev, hashInput{
			TenantID: tenantID, StreamID: w.StreamID, Version: version, Type: e.Type,
			SchemaVersion: schema, RecordedAtUS: now.UnixMicro(), Data: canon, Metadata: canonMeta,
		})
		r.tenantIDs = append(r.tenantIDs, tenantID)
		r.streamIDs = append(r.streamIDs, w.StreamID)
		r.versions = append(r.versions, version)
		r.types = append(r.types, e.Type)
		r.schemas = append(r.schemas, int32(schema))
		r.datas = append(r.datas, string(canon))
		r.prevHashes = append(r.prevHashes, prev)
		r.hashes = append(r.hashes, hash)
		prev = hash
	}
	return version, prev, nil
}

// args are qInsertEvents' parameters.
func (r *eventRows) args(canonMeta []byte, now time.Time) []any {
	return []any{r.tenantIDs, r.streamIDs, r.versions, r.types, r.schemas, r.datas, string(canonMeta), now, r.prevHashes, r.hashes}
}

type head struct {
	exists   bool
	tenantID string
	version  int64
	lastHash []byte
}

// streamIDsOf returns the written streams' IDs in a fixed order, so two
// appends touching the same streams lock them in the same order and cannot
// deadlock each other.
func streamIDsOf(writes []StreamWrite) ([]string, error) {
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
	return ids, nil
}

// queueSaveHeads queues the upsert of the written heads and reports
// whether there were any.
func queueSaveHeads(b *pgx.Batch, tenantID string, writes []StreamWrite, heads map[string]head) bool {
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
	if len(ids) == 0 {
		return false
	}
	b.Queue(qSaveHeads, tenantID, ids, types, versions, hashes)
	return true
}

const qSaveHeads = `
INSERT INTO streams (stream_id, tenant_id, stream_type, version, last_hash)
SELECT s, $1, ty, v, h FROM unnest($2::text[]::uuid[], $3::text[], $4::bigint[], $5::bytea[]) AS u(s, ty, v, h)
ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_hash = excluded.last_hash`

func sortedGuards(guards []Guard) []Guard {
	sorted := append([]Guard(nil), guards...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].StreamID < sorted[j].StreamID })
	return sorted
}

// canonicalMetadata is the request's metadata as stored and hashed.
func (req AppendRequest) canonicalMetadata() ([]byte, error) {
	metadata, err := json.Marshal(req.Metadata)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	return canonicalJSON(metadata)
}

// recordedAt is the time the request's events are recorded at: req.Now, or
// the clock, in microseconds (what timestamptz keeps, so the hash can be
// recomputed from the row).
func (req AppendRequest) recordedAt() time.Time {
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	return now.UTC().Truncate(time.Microsecond)
}
