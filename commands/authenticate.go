package commands

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

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
// nothing useful about the key through timing.
const qAuthenticate = `
SELECT u.tenant_id::text, u.id::text, u.name, u.role, u.status
FROM api_keys k JOIN users u ON u.id = k.user_id AND u.tenant_id = k.tenant_id
WHERE k.key_hash = $1`

// KeyLease is how long a process trusts a key it has verified without
// asking the database again. Whatever takes a key's power away (a
// deactivation, a role change) answers only once KeyLease has passed since
// it committed, so every lease taken before the commit, in any process,
// has run out by then: a request sent after the answer is checked against
// the database. A lease counts from before its query was sent, on the
// process's monotonic clock.
//
// Checking a version of the user instead would need the database on every
// request too: only a round trip can see another process's commit.
const KeyLease = time.Second

// Authenticate answers whose API key key is: ErrUnauthenticated for an
// unknown key or a deactivated owner. It is the one check of a key, made
// once per request before any command runs; the commands package owns the
// users and api_keys tables it reads. A key verified within KeyLease is
// answered from memory.
func (c *Commands) Authenticate(ctx context.Context, key string) (Caller, error) {
	sum := sha256.Sum256([]byte(key))
	if p, ok := c.leases.get(sum); ok {
		return p, nil
	}
	asked := time.Now()
	var p Caller
	var role, status string
	err := c.store.Pool().QueryRow(ctx, qAuthenticate, sum[:]).Scan(&p.TenantID, &p.UserID, &p.Name, &role, &status)
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
	c.leases.put(sum, p, asked.Add(KeyLease))
	return p, nil
}

// revoked ends this process's leases of userID's keys at once, and waits
// until every other process's lease taken before the change committed has
// run out (see KeyLease). An impatient caller (ctx done) stops waiting:
// the change is committed, only its answer was early.
func (c *Commands) revoked(ctx context.Context, userID string) {
	c.leases.forgetUser(userID)
	t := time.NewTimer(KeyLease)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// keyLeases are the keys this process verified, by digest, each until its
// lease runs out. The zero value is ready.
type keyLeases struct {
	mu sync.Mutex
	m  map[[32]byte]keyLease
}

type keyLease struct {
	caller Caller
	until  time.Time
}

// maxKeyLeases bounds the leases; past it they start over.
const maxKeyLeases = 100_000

func (l *keyLeases) get(sum [32]byte) (Caller, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[sum]
	if !ok || !time.Now().Before(e.until) {
		return Caller{}, false
	}
	return e.caller, true
}

func (l *keyLeases) put(sum [32]byte, p Caller, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || len(l.m) >= maxKeyLeases {
		l.m = map[[32]byte]keyLease{}
	}
	l.m[sum] = keyLease{caller: p, until: until}
}

func (l *keyLeases) forgetUser(userID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for sum, e := range l.m {
		if e.caller.UserID == userID {
			delete(l.m, sum)
		}
	}
}
