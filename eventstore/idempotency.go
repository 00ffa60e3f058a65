package eventstore

import (
	"context"
	"errors"
	"fmt"
)

// ErrReplayUnavailable means an idempotency key is used but its answer can
// no longer be replayed: the answer named a customer that has since been
// erased, and erasure scrubbed the record (HTTP 409 replay_unavailable).
// The key stays used, so a retry runs nothing: a retry that ran the
// command again would bring the erased person back.
var ErrReplayUnavailable = errors.New("idempotency key used; its answer named a customer since erased and is not kept")

// scrubbed reports whether an idempotency record's request hash is the
// empty one erasure leaves (qForget). Erasure keeps the record, so the key
// stays used, but keeps nothing derived from the request (its hash is a
// fingerprint of the personal data in the body) nor the answer: with the
// hash gone, the record cannot tell a retry from a reuse, and both answer
// ErrReplayUnavailable. A live record's hash is never empty (Meta
// requires one with a key).
func scrubbed(requestHash []byte) bool { return len(requestHash) == 0 }

// StoreRefusal records r, the answer of a command a business rule refused,
// under its key with requestHash, in a statement of its own: the refused
// command's transaction wrote nothing and was rolled back. It reports
// false, storing nothing, when the key is recorded already (a concurrent
// request with the key committed first); the caller then replays that
// record's answer.
func (s *Store) StoreRefusal(ctx context.Context, r StoredResponse, requestHash []byte) (bool, error) {
	tag, err := s.pool.Exec(ctx, qStoreRefusal, r.TenantID, r.Key, requestHash, r.Response, r.CustomerIDs)
	if err != nil {
		return false, fmt.Errorf("store refusal: %w", translate(err))
	}
	return tag.RowsAffected() == 1, nil
}

const qStoreRefusal = `INSERT INTO idempotency_keys (tenant_id, key, request_hash, response, customer_ids)
	VALUES ($1, $2, $3, $4, $5::text[]::uuid[]) ON CONFLICT DO NOTHING`
