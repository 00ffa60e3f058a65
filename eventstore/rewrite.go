package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Rewrite is what RewriteStream's function decides for one event: new data
// in a new schema version, or Changed false to keep it.
type Rewrite struct {
	SchemaVersion int
	Data          []byte
	Changed       bool
}

// RewriteStream is an operator's rewrite of one stream's past (`ledger
// encrypt-legacy`), never an application path. In one transaction, with the
// append-only trigger bypassed on purpose (session_replication_role =
// replica, which needs a superuser or a role granted that setting), it
// locks the stream's head, replaces the data of the events rewrite changes,
// recomputes the stream's hash chain from the first changed event on and
// moves the head's last hash, so `ledger verify` passes afterwards. Hashes
// recorded outside the database no longer match the rewritten events. side
// runs in the same transaction before the commit (keys to store). It
// returns how many events changed; with none it writes nothing.
func (s *Store) RewriteStream(ctx context.Context, streamID string, rewrite func(Event) (Rewrite, error),
	side func(ctx context.Context, tx pgx.Tx) error) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("rewrite %s: %w", streamID, translate(err))
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var head []byte
	err = tx.QueryRow(ctx, `SELECT last_hash FROM streams WHERE stream_id = $1 FOR UPDATE`, streamID).Scan(&head)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("rewrite %s: %w", streamID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("rewrite %s: %w", streamID, translate(err))
	}
	events, err := collect(tx.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE stream_id = $1 ORDER BY stream_version`, streamID))
	if err != nil {
		return 0, fmt.Errorf("rewrite %s: %w", streamID, err)
	}
	if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
		return 0, fmt.Errorf("rewrite %s: bypass the append-only trigger: %w", streamID, translate(err))
	}
	changed, dirty := 0, false
	prev := genesisHash
	for _, e := range events {
		rw, err := rewrite(e)
		if err != nil {
			return 0, fmt.Errorf("rewrite event %d: %w", e.Position, err)
		}
		if rw.Changed {
			e.SchemaVersion, e.Data = rw.SchemaVersion, rw.Data
			changed++
		}
		dirty = dirty || rw.Changed
		if !dirty {
			prev = e.Hash
			continue
		}
		// From the first change on, every hash moves with its predecessor.
		hash, err := recomputeHash(prev, e)
		if err != nil {
			return 0, fmt.Errorf("rewrite event %d: %w", e.Position, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE events SET schema_version = $2, data = $3, prev_hash = $4, hash = $5 WHERE position = $1`,
			e.Position, e.SchemaVersion, []byte(e.Data), prev, hash); err != nil {
			return 0, fmt.Errorf("rewrite event %d: %w", e.Position, translate(err))
		}
		prev = hash
	}
	if changed == 0 {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE streams SET last_hash = $2 WHERE stream_id = $1`, streamID, prev); err != nil {
		return 0, fmt.Errorf("rewrite %s: %w", streamID, translate(err))
	}
	if side != nil {
		if err := side(ctx, tx); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("rewrite %s: %w", streamID, translate(err))
	}
	return changed, nil
}

// Forget deletes what names erased customers outside the events (claims,
// invitations, outbox rows, idempotency records), as an erasure's append
// does: `ledger erase --reapply` after restoring a backup, and
// encrypt-legacy. Claims go by owner (a scan: an operator's tool), since an
// erased customer's values can no longer be read to release them by value.
const qForgetClaims = `DELETE FROM unique_claims WHERE tenant_id = $1 AND owner_id = ANY($2::text[]::uuid[])`

// Forget is the operator's deletion of erased customers' side records.
func (s *Store) Forget(ctx context.Context, tenantID string, customerIDs []string) error {
	if _, err := s.pool.Exec(ctx, qForgetClaims, tenantID, customerIDs); err != nil {
		return fmt.Errorf("forget erased customers: %w", translate(err))
	}
	if _, err := s.pool.Exec(ctx, qForget, tenantID, customerIDs, ""); err != nil {
		return fmt.Errorf("forget erased customers: %w", translate(err))
	}
	return nil
}

// RehashClaims replaces the plaintext values of claims of the given kinds
// (those not yet starting with prefix) with hash(kind, value), for `ledger
// encrypt-legacy`: customer claims hold an HMAC, never the value.
func (s *Store) RehashClaims(ctx context.Context, kinds []string, prefix string, hash func(kind, value string) string) (int, error) {
	rows, err := s.pool.Query(ctx, `SELECT tenant_id::text, kind, value FROM unique_claims
		WHERE kind = ANY($1) AND NOT starts_with(value, $2)`, kinds, prefix)
	if err != nil {
		return 0, fmt.Errorf("rehash claims: %w", translate(err))
	}
	type claim struct{ tenant, kind, value string }
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claim, error) {
		var c claim
		return c, r.Scan(&c.tenant, &c.kind, &c.value)
	})
	if err != nil {
		return 0, fmt.Errorf("rehash claims: %w", translate(err))
	}
	for _, c := range found {
		if _, err := s.pool.Exec(ctx, `UPDATE unique_claims SET value = $4 WHERE tenant_id = $1 AND kind = $2 AND value = $3`,
			c.tenant, c.kind, c.value, hash(c.kind, c.value)); err != nil {
			return 0, fmt.Errorf("rehash claims: %w", translate(err))
		}
	}
	return len(found), nil
}
