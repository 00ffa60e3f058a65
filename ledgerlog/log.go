package ledgerlog

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"
)

// Errors a caller maps to answers: a proof asked of sizes or indexes the
// tree cannot give (400), a tenant with nothing to sign (404).
var (
	ErrBadRange  = errors.New("out of range")
	ErrNoTree    = errors.New("tenant has no ledger log yet")
	ErrTreeStale = errors.New("stored tree does not match a signed checkpoint")
)

// RangeError is a proof asked of a size or index the tree cannot give;
// Param names the request's parameter.
type RangeError struct {
	Param, Detail string
}

func (e *RangeError) Error() string { return e.Param + ": " + e.Detail }

// Is makes a RangeError match ErrBadRange.
func (e *RangeError) Is(target error) bool { return target == ErrBadRange }

// Log serves a database's ledger logs: checkpoints and proofs from the
// stored tree (the ledger_tree read model).
type Log struct {
	pool    *pgxpool.Pool
	key     Key
	baseURL string
	log     *slog.Logger
}

// New returns a Log signing with key; baseURL makes the checkpoints'
// origin lines.
func New(pool *pgxpool.Pool, key Key, baseURL string, log *slog.Logger) *Log {
	if log == nil {
		log = slog.Default()
	}
	return &Log{pool: pool, key: key, baseURL: baseURL, log: log}
}

// VerifierKey is the public key that verifies the checkpoints (note
// verifier format).
func (l *Log) VerifierKey() string { return l.key.Verifier }

// Signed is a stored signed checkpoint.
type Signed struct {
	Origin   string    `json:"origin"`
	TreeSize int64     `json:"tree_size"`
	RootHash string    `json:"root_hash"`
	Position int64     `json:"position"`
	SignedAt time.Time `json:"signed_at"`
	Note     string    `json:"note"`
}

// InclusionProof proves leaf LeafIndex is in the tree of size TreeSize.
type InclusionProof struct {
	LeafIndex int64    `json:"leaf_index"`
	TreeSize  int64    `json:"tree_size"`
	LeafHash  string   `json:"leaf_hash"`
	Hashes    []string `json:"hashes"`
}

// ConsistencyProof proves the tree of size From is a prefix of that of
// size To.
type ConsistencyProof struct {
	From   int64    `json:"from"`
	To     int64    `json:"to"`
	Hashes []string `json:"hashes"`
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const (
	qSize = `SELECT coalesce((SELECT leaf_index + 1 FROM ledger_leaves WHERE tenant_id = $1::uuid
    ORDER BY leaf_index DESC LIMIT 1), 0)`
	qLeafPosition  = `SELECT position FROM ledger_leaves WHERE tenant_id = $1::uuid AND leaf_index = $2`
	qSignedColumns = `tree_size, root_hash, position, signed_at, note`
	qLatestSigned  = `SELECT ` + qSignedColumns + ` FROM ledger_checkpoints WHERE tenant_id = $1::uuid ORDER BY tree_size DESC LIMIT 1`
	qInsertSigned  = `INSERT INTO ledger_checkpoints (tenant_id, tree_size, root_hash, position, note) VALUES ($1::uuid, $2, $3, $4, $5) ON CONFLICT DO NOTHING`
	qListSigned    = `SELECT ` + qSignedColumns + ` FROM ledger_checkpoints WHERE tenant_id = $1::uuid AND signed_at >= $2 AND signed_at <= $3
    AND tree_size > $4 ORDER BY tree_size LIMIT $5`
	qTenants = `SELECT id::text FROM tenants ORDER BY id`
)

// Size is the tenant's tree size: how many of its events the tree holds.
func (l *Log) Size(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	if err := l.pool.QueryRow(ctx, qSize, tenantID).Scan(&n); err != nil {
		return 0, fmt.Errorf("ledger log size: %w", err)
	}
	return n, nil
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

func b64s(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = b64(h)
	}
	return out
}

// Inclusion proves leaf leafIndex in the tree of size treeSize.
func (l *Log) Inclusion(ctx context.Context, tenantID string, leafIndex, treeSize int64) (InclusionProof, error) {
	n, err := l.Size(ctx, tenantID)
	if err != nil {
		return InclusionProof{}, err
	}
	if treeSize < 1 || treeSize > n {
		return InclusionProof{}, &RangeError{"tree_size", fmt.Sprintf("tree size %d: the tree has %d leaves", treeSize, n)}
	}
	if leafIndex < 0 || leafIndex >= treeSize {
		return InclusionProof{}, &RangeError{"leaf_index", fmt.Sprintf("leaf index %d: a tree of size %d has leaves 0 to %d", leafIndex, treeSize, treeSize-1)}
	}
	r := reader(ctx, l.pool, tenantID)
	leaf, err := r.ReadHashes([]int64{tlog.StoredHashIndex(0, leafIndex)})
	if err != nil {
		return InclusionProof{}, fmt.Errorf("inclusion proof: %w", err)
	}
	p, err := tlog.ProveRecord(treeSize, leafIndex, r)
	if err != nil {
		return InclusionProof{}, fmt.Errorf("inclusion proof: %w", err)
	}
	return InclusionProof{LeafIndex: leafIndex, TreeSize: treeSize, LeafHash: b64(leaf[0]), Hashes: b64s(p)}, nil
}

// Consistency proves the tree of size from is a prefix of the tree of size
// to.
func (l *Log) Consistency(ctx context.Context, tenantID string, from, to int64) (ConsistencyProof, error) {
	n, err := l.Size(ctx, tenantID)
	if err != nil {
		return ConsistencyProof{}, err
	}
	if to < 1 || to > n {
		return ConsistencyProof{}, &RangeError{"to", fmt.Sprintf("tree size %d: the tree has %d leaves", to, n)}
	}
	if from < 1 || from > to {
		return ConsistencyProof{}, &RangeError{"from", fmt.Sprintf("tree size %d: want 1 to %d", from, to)}
	}
	p, err := tlog.ProveTree(to, from, reader(ctx, l.pool, tenantID))
	if err != nil {
		return ConsistencyProof{}, fmt.Errorf("consistency proof: %w", err)
	}
	return ConsistencyProof{From: from, To: to, Hashes: b64s(p)}, nil
}

func (l *Log) scanSigned(tenantID string, row pgx.Row) (Signed, error) {
	var s Signed
	var root []byte
	if err := row.Scan(&s.TreeSize, &root, &s.Position, &s.SignedAt, &s.Note); err != nil {
		return s, err
	}
	s.Origin, s.RootHash, s.SignedAt = Origin(l.baseURL, tenantID), base64.StdEncoding.EncodeToString(root), s.SignedAt.UTC()
	if cp, err := ParseCheckpoint(s.Note); err == nil {
		s.Origin = cp.Origin // as signed, whatever the base URL is now
	}
	return s, nil
}

// Latest returns the tenant's latest signed checkpoint, signing one first
// when the tree has grown since (a checkpoint on demand).
func (l *Log) Latest(ctx context.Context, tenantID string) (Signed, error) {
	if _, err := l.Sign(ctx, tenantID); errors.Is(err, ErrTreeStale) {
		// The latest signed checkpoint is still what the log vouched for.
		l.log.Error("ledger log: not signing", slog.Any("err", err))
	} else if err != nil {
		return Signed{}, err
	}
	s, err := l.scanSigned(tenantID, l.pool.QueryRow(ctx, qLatestSigned, tenantID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Signed{}, ErrNoTree
	}
	if err != nil {
		return Signed{}, fmt.Errorf("latest checkpoint: %w", err)
	}
	return s, nil
}

// Sign signs a checkpoint of the tenant's tree as it stands, unless the
// latest signed one already has its size; it reports whether it signed.
// Signing the same size twice (two processes) stores one: Ed25519 is
// deterministic, so both made the same note.
func (l *Log) Sign(ctx context.Context, tenantID string) (bool, error) {
	n, err := l.Size(ctx, tenantID)
	if err != nil {
		return false, err
	}
	if n == 0 {
		return false, ErrNoTree
	}
	var latest int64
	var note string
	err = l.pool.QueryRow(ctx, `SELECT tree_size, note FROM ledger_checkpoints WHERE tenant_id = $1::uuid ORDER BY tree_size DESC LIMIT 1`, tenantID).Scan(&latest, &note)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("sign checkpoint: %w", err)
	}
	if err == nil && latest >= n {
		return false, nil
	}
	r := reader(ctx, l.pool, tenantID)
	origin := Origin(l.baseURL, tenantID)
	if err == nil {
		cp, perr := ParseCheckpoint(note)
		if perr != nil {
			return false, fmt.Errorf("sign checkpoint: the latest signed: %w", perr)
		}
		// Every checkpoint extends the ones signed before it: a stored tree
		// whose first leaves no longer hash to the root signed at that size
		// (events rewritten and the tree rebuilt from them) is not signed,
		// or the log would vouch for two histories.
		prefix, herr := tlog.TreeHash(latest, r)
		if herr != nil {
			return false, fmt.Errorf("sign checkpoint: %w", herr)
		}
		if prefix != cp.Root {
			return false, fmt.Errorf("%w: tenant %s: the stored tree's first %d leaves do not hash to the root signed for them; refusing to sign a tree that does not extend it (`ledger verify --checkpoint` with a kept checkpoint names what changed)",
				ErrTreeStale, tenantID, latest)
		}
		// A log's origin is its name, fixed by its first checkpoint: a
		// process configured with another base URL (a CLI run from a shell,
		// a node set up apart) signs under the same one, or a client that
		// pins the origin would refuse the checkpoint.
		origin = cp.Origin
	}
	root, err := tlog.TreeHash(n, r)
	if err != nil {
		return false, fmt.Errorf("sign checkpoint: %w", err)
	}
	var pos int64
	if err := l.pool.QueryRow(ctx, qLeafPosition, tenantID, n-1).Scan(&pos); err != nil {
		return false, fmt.Errorf("sign checkpoint: %w", err)
	}
	msg, err := Sign(Checkpoint{Origin: origin, Size: n, Root: root}, l.key.Signer)
	if err != nil {
		return false, err
	}
	if _, err := l.pool.Exec(ctx, qInsertSigned, tenantID, n, root[:], pos, msg); err != nil {
		return false, fmt.Errorf("store checkpoint: %w", err)
	}
	return true, nil
}

// List returns the tenant's checkpoints signed between from and to
// (inclusive) of trees larger than after, oldest first, at most limit.
func (l *Log) List(ctx context.Context, tenantID string, from, to time.Time, after int64, limit int) ([]Signed, error) {
	rows, err := l.pool.Query(ctx, qListSigned, tenantID, from, to, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Signed, error) { return l.scanSigned(tenantID, row) })
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	return out, nil
}

// SignGrown signs a checkpoint for every tenant whose tree has grown past
// its latest signed checkpoint, and returns how many it signed.
func (l *Log) SignGrown(ctx context.Context) (int, error) {
	rows, err := l.pool.Query(ctx, qTenants)
	if err != nil {
		return 0, fmt.Errorf("sign checkpoints: %w", err)
	}
	tenants, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("sign checkpoints: %w", err)
	}
	n := 0
	var stale []error // one tenant's tampered tree holds up no other's
	for _, t := range tenants {
		signed, err := l.Sign(ctx, t)
		switch {
		case errors.Is(err, ErrNoTree):
			continue
		case errors.Is(err, ErrTreeStale):
			stale = append(stale, err)
			continue
		case err != nil:
			return n, fmt.Errorf("sign checkpoint of tenant %s: %w", t, err)
		}
		if signed {
			n++
		}
	}
	return n, errors.Join(stale...)
}

// Run signs the grown trees' checkpoints every interval until ctx ends:
// at least one per interval while events arrive, none while they do not.
func (l *Log) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := l.SignGrown(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			l.log.Error("ledger log: signing checkpoints failed", slog.Any("err", err))
		case n > 0:
			l.log.Info("ledger log: checkpoints signed", slog.Int("tenants", n))
		}
	}
}

// LeafIndexes returns the leaf index of each of the positions the tree
// holds (events it has not applied yet are absent).
func LeafIndexes(ctx context.Context, pool *pgxpool.Pool, positions []int64) (map[int64]int64, error) {
	out := make(map[int64]int64, len(positions))
	if len(positions) == 0 {
		return out, nil
	}
	rows, err := pool.Query(ctx, `SELECT position, leaf_index FROM ledger_leaves WHERE position = ANY($1::bigint[])`, positions)
	if err != nil {
		return nil, fmt.Errorf("leaf indexes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p, i int64
		if err := rows.Scan(&p, &i); err != nil {
			return nil, fmt.Errorf("leaf indexes: %w", err)
		}
		out[p] = i
	}
	return out, rows.Err()
}
