package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/assignment-ledger/ledger/domain"
)

// Caller is who an API key speaks for: its owner, inside one tenant.
type Caller struct {
	TenantID string
	domain.Actor
}

// qAuthenticate finds a key's owner by the key's SHA-256 digest: the
// database only ever sees digests, and an index lookup on a digest leaks
// nothing useful about the key through timing. The owner's status is read
// as committed now, so a deactivation (in this process or any other) is
// seen by the next request.
const qAuthenticate = `
SELECT u.tenant_id::text, u.id::text, u.name, u.role, u.status
FROM api_keys k JOIN users u ON u.id = k.user_id AND u.tenant_id = k.tenant_id
WHERE k.key_hash = $1`

// Authenticate answers whose API key key is: ErrUnauthenticated for an
// unknown key or a deactivated owner. It is the one check of a key, made
// once per request before any command runs; the commands package owns the
// users and api_keys tables it reads.
func (c *Commands) Authenticate(ctx context.Context, key string) (Caller, error) {
	var p Caller
	var role, status string
	err := c.store.Pool().QueryRow(ctx, qAuthenticate, HashAPIKey(key)).Scan(&p.TenantID, &p.UserID, &p.Name, &role, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return Caller{}, ErrUnauthenticated
	}
	if err != nil {
		return Caller{}, fmt.Errorf("authenticate: %w", err)
	}
	if status != string(domain.UserStatusActive) {
		return Caller{}, ErrUnauthenticated
	}
	p.Role = domain.Role(role)
	return p, nil
}
