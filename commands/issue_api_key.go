package commands

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/eventstore"
)

// APIKeyPrefix starts every API key.
const APIKeyPrefix = "lk_"

// APIKeyResult is the answer of IssueAPIKey. The key exists only in this
// answer: the store keeps its SHA-256, so an idempotent replay answers with
// APIKey "" (and Replayed true).
type APIKeyResult struct {
	APIKey   string `json:"api_key"`
	KeyID    string `json:"key_id"`
	Position int64  `json:"position"`
	Replayed bool   `json:"-"`
}

func (r *APIKeyResult) markReplayed() { r.Replayed = true }

// HashAPIKey is what api_keys.key_hash holds for key.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

func newAPIKey() string {
	raw, _ := randomToken()
	return APIKeyPrefix + raw
}

// IssueAPIKey issues a new API key for userID: an admin for anyone, a member
// for itself. A deactivated user gets none (RuleError user_deactivated).
func (c *Commands) IssueAPIKey(ctx context.Context, m Meta, userID string) (APIKeyResult, error) {
	ids, err := parseIDs("user", userID)
	if err != nil {
		return APIKeyResult{}, err
	}
	uid := ids[0]
	if !m.Actor.IsAdmin() && m.Actor.UserID != uid {
		return APIKeyResult{}, &domain.ForbiddenError{Detail: "only an admin may issue keys for another user"}
	}
	m, err = m.prepare()
	if err != nil {
		return APIKeyResult{}, err
	}
	return transact(ctx, c, "IssueAPIKey", m, func(ctx context.Context, tx *cmdTx) (APIKeyResult, error) {
		var result APIKeyResult
		users, err := requireUsers(ctx, tx, m.TenantID, []string{uid}, forShare)
		if err != nil {
			return result, err
		}
		if !users[uid].Active() {
			return result, &domain.RuleError{Code: domain.CodeUserDeactivated, Detail: fmt.Sprintf("user %s is deactivated", uid)}
		}
		key, keyID, at := newAPIKey(), newID(), now()
		result = APIKeyResult{APIKey: key, KeyID: keyID}
		data, err := encode([]domain.Event{domain.ApiKeyIssued{UserID: uid, KeyID: keyID}})
		if err != nil {
			return result, err
		}
		if err := insertAPIKey(m.TenantID, uid, keyID, key, at)(ctx, tx); err != nil {
			return result, err
		}
		req := eventstore.AppendRequest{
			TenantID: m.TenantID,
			Streams:  []eventstore.StreamWrite{{StreamID: uid, StreamType: streamUser, ExpectedVersion: eventstore.Any, Events: data}},
			Metadata: m.metadata(),
			Now:      at,
		}
		// The stored answer never holds the key itself.
		stored := APIKeyResult{KeyID: keyID}
		res, err := tx.append(ctx, req, &stored, &stored.Position)
		if err != nil {
			return result, err
		}
		result.Position = res.Position
		return result, nil
	})
}

func insertAPIKey(tenantID, userID, keyID, key string, at time.Time) func(context.Context, execer) error {
	return func(ctx context.Context, tx execer) error {
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (key_id, key_hash, tenant_id, user_id, created_at) VALUES ($1, $2, $3, $4, $5)`,
			keyID, HashAPIKey(key), tenantID, userID, at)
		if err != nil {
			return fmt.Errorf("insert api key: %w", err)
		}
		return nil
	}
}
