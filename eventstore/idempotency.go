package eventstore

import "errors"

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
