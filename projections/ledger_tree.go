package projections

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/assignment-ledger/ledger/eventstore"
)

// ledgerTreeProjection is the ledger log's tree (docs/API.md, "The ledger
// log"; package ledgerlog): per tenant, an RFC 6962 Merkle tree whose leaf
// i is the tenant's i-th event in commit order, the order this engine
// applies events in, so a rebuild (which applies the same events in the
// same order through the same code) makes the same tree. Leaf hash: the
// RFC 6962 leaf hash of the event's stored chain hash.
//
// ledger_tree_hashes holds the tree's stored hashes in the layout of
// golang.org/x/mod/sumdb/tlog (StoredHashIndex); ledger_leaves names each
// event's leaf. Appending leaf n reads only the stored roots of the
// complete subtrees to its left (at most log₂ n, read once per batch for
// every tenant) and writes about two hashes, so a batch costs two reads and
// two inserts whatever its size.
func ledgerTreeProjection() *projection {
	return &projection{
		name: LedgerTree,
		tables: []table{
			{name: "ledger_leaves", key: []string{"tenant_id", "leaf_index"}, columns: []string{"tenant_id", "leaf_index", "position"}},
			{name: "ledger_tree_hashes", key: []string{"tenant_id", "idx"}, columns: []string{"tenant_id", "idx", "hash"}},
		},
		grow: growLedgerTree,
		load: loadLedgerTree,
	}
}

const (
	// qTreeEvents are the batch's events in commit order (the derived
	// engine's batches carry only cursors) that are not leaves yet: a
	// batch applied again (after a lost commit acknowledgement) changes
	// nothing, as every read model's does.
	qTreeEvents = `SELECT e.tenant_id::text, e.position, e.hash FROM events e
WHERE (e.transaction_id, e.position) > ($1::text::xid8, $2::bigint)
  AND (e.transaction_id, e.position) <= ($3::text::xid8, $4::bigint)
  AND NOT EXISTS (SELECT FROM ledger_leaves l WHERE l.position = e.position)
ORDER BY e.transaction_id, e.position`
	// qTreeSizes is each tenant's tree size: its last leaf, by the primary
	// key backwards.
	qTreeSizes = `SELECT t::text, coalesce((SELECT l.leaf_index + 1 FROM ledger_leaves l WHERE l.tenant_id = t
    ORDER BY l.leaf_index DESC LIMIT 1), 0)
FROM unnest($1::text[]::uuid[]) AS t`
	qTreeHashes = `SELECT h.tenant_id::text, h.idx, h.hash FROM ledger_tree_hashes h
JOIN unnest($1::text[]::uuid[], $2::bigint[]) AS n(t, i) ON h.tenant_id = n.t AND h.idx = n.i`
)

// treeGrowth is one tenant's tree while a batch grows it.
type treeGrowth struct {
	size   int64
	hashes map[int64]tlog.Hash
}

// growLedgerTree adds to w the leaves and stored hashes of the events in
// (from, end].
func growLedgerTree(ctx context.Context, tx queryer, w *stmt, from, end eventstore.Cursor) error {
	type leaf struct {
		tenant   string
		position int64
		hash     []byte
	}
	rows, err := tx.QueryContext(ctx, qTreeEvents, txid(from), from.Position, txid(end), end.Position)
	if err != nil {
		return fmt.Errorf("ledger tree: read events: %w", err)
	}
	var leaves []leaf
	trees := map[string]*treeGrowth{}
	var tenants []string
	for rows.Next() {
		var l leaf
		if err := rows.Scan(&l.tenant, &l.position, &l.hash); err != nil {
			rows.Close()
			return fmt.Errorf("ledger tree: read events: %w", err)
		}
		leaves = append(leaves, l)
		if trees[l.tenant] == nil {
			trees[l.tenant] = &treeGrowth{hashes: map[int64]tlog.Hash{}}
			tenants = append(tenants, l.tenant)
		}
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("ledger tree: read events: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger tree: read events: %w", err)
	}
	if len(leaves) == 0 {
		return nil
	}
	if err := readTreeFrontiers(ctx, tx, tenants, trees); err != nil {
		return err
	}
	var (
		lTenants, hTenants []string
		lIndex, lPos, hIdx []int64
		hHash              [][]byte
	)
	for _, l := range leaves {
		t := trees[l.tenant]
		reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				h, ok := t.hashes[x]
				if !ok {
					return nil, fmt.Errorf("ledger tree: tenant %s: stored hash %d missing", l.tenant, x)
				}
				out[i] = h
			}
			return out, nil
		})
		hs, err := tlog.StoredHashesForRecordHash(t.size, tlog.RecordHash(l.hash), reader)
		if err != nil {
			return fmt.Errorf("ledger tree: leaf %d of tenant %s: %w", t.size, l.tenant, err)
		}
		base := tlog.StoredHashIndex(0, t.size)
		for i, h := range hs {
			t.hashes[base+int64(i)] = h
			hTenants, hIdx, hHash = append(hTenants, l.tenant), append(hIdx, base+int64(i)), append(hHash, h[:])
		}
		lTenants, lIndex, lPos = append(lTenants, l.tenant), append(lIndex, t.size), append(lPos, l.position)
		t.size++
	}
	// No ON CONFLICT: a leaf or hash already there means the tree and its
	// checkpoint disagree, and the batch must fail rather than skip it.
	w.cte(fmt.Sprintf(`INSERT INTO ledger_leaves (tenant_id, leaf_index, position)
SELECT * FROM unnest(%s::text[]::uuid[], %s::bigint[], %s::bigint[])`, w.arg(lTenants), w.arg(lIndex), w.arg(lPos)))
	w.cte(fmt.Sprintf(`INSERT INTO ledger_tree_hashes (tenant_id, idx, hash)
SELECT * FROM unnest(%s::text[]::uuid[], %s::bigint[], %s::bytea[])`, w.arg(hTenants), w.arg(hIdx), w.arg(hHash)))
	return nil
}

// readTreeFrontiers reads each tenant's tree size and the stored hashes
// appending to it needs: the roots of the complete subtrees that make up
// the tree, one per bit set in its size.
func readTreeFrontiers(ctx context.Context, tx queryer, tenants []string, trees map[string]*treeGrowth) error {
	rows, err := tx.QueryContext(ctx, qTreeSizes, tenants)
	if err != nil {
		return fmt.Errorf("ledger tree: sizes: %w", err)
	}
	for rows.Next() {
		var t string
		var n int64
		if err := rows.Scan(&t, &n); err != nil {
			rows.Close()
			return fmt.Errorf("ledger tree: sizes: %w", err)
		}
		trees[t].size = n
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("ledger tree: sizes: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger tree: sizes: %w", err)
	}
	var ts []string
	var idx []int64
	for _, t := range tenants {
		n := trees[t].size
		for level := 0; n>>level > 0; level++ {
			if (n>>level)&1 == 1 {
				ts, idx = append(ts, t), append(idx, tlog.StoredHashIndex(level, (n>>level)-1))
			}
		}
	}
	if len(idx) == 0 {
		return nil
	}
	rows, err = tx.QueryContext(ctx, qTreeHashes, ts, idx)
	if err != nil {
		return fmt.Errorf("ledger tree: frontier: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t string
		var i int64
		var h []byte
		if err := rows.Scan(&t, &i, &h); err != nil {
			return fmt.Errorf("ledger tree: frontier: %w", err)
		}
		if len(h) != tlog.HashSize {
			return fmt.Errorf("ledger tree: tenant %s: stored hash %d is %d bytes", t, i, len(h))
		}
		trees[t].hashes[i] = tlog.Hash(h)
	}
	return rows.Err()
}

// qTreeLoad is every event of a transaction below a bound (the rebuild's
// xmin0: all of them committed), in commit order.
const qTreeLoad = `SELECT tenant_id::text, position, hash FROM events
WHERE transaction_id < $1::text::xid8 ORDER BY transaction_id, position`

// loadTree is one tenant's tree as the bulk load builds it: its stored
// hashes, dense by index (tlog.StoredHashIndex), and its leaves' positions.
type loadTree struct {
	id        pgtype.UUID
	hashes    []tlog.Hash
	positions []int64
}

// loadLedgerTree is the tree's bulk load for a rebuild: one read of the
// events' hashes in commit order, the stored hashes computed in memory
// (about two per leaf, 32 bytes each, and the leaf's position: some 80
// bytes an event, 80 MB for a million), and two COPYs. It writes what
// growLedgerTree would have written batch by batch, so a rebuilt tree
// equals the live one.
func loadLedgerTree(ctx context.Context, pool *pgxpool.Pool, schema, xmin0 string) error {
	trees := map[string]*loadTree{}
	var order []*loadTree
	rows, err := pool.Query(ctx, qTreeLoad, xmin0)
	if err != nil {
		return fmt.Errorf("ledger tree: read events: %w", err)
	}
	var (
		tenant string
		pos    int64
		h      []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&tenant, &pos, &h}, func() error {
		lt, ok := trees[tenant]
		if !ok {
			u, err := uuid.Parse(tenant)
			if err != nil {
				return err
			}
			lt = &loadTree{id: pgtype.UUID{Bytes: u, Valid: true}}
			trees[tenant] = lt
			order = append(order, lt)
		}
		n := int64(len(lt.positions))
		hs, err := tlog.StoredHashesForRecordHash(n, tlog.RecordHash(h), tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				out[i] = lt.hashes[x]
			}
			return out, nil
		}))
		if err != nil {
			return fmt.Errorf("leaf %d of tenant %s: %w", n, tenant, err)
		}
		lt.hashes = append(lt.hashes, hs...)
		lt.positions = append(lt.positions, pos)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger tree: %w", err)
	}
	t, i := 0, 0
	leaves := pgx.CopyFromFunc(func() ([]any, error) {
		for t < len(order) && i == len(order[t].positions) {
			t, i = t+1, 0
		}
		if t == len(order) {
			return nil, nil
		}
		i++
		return []any{order[t].id, int64(i - 1), order[t].positions[i-1]}, nil
	})
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{schema, "ledger_leaves"}, []string{"tenant_id", "leaf_index", "position"}, leaves); err != nil {
		return fmt.Errorf("ledger tree: copy leaves: %w", err)
	}
	t, i = 0, 0
	hashes := pgx.CopyFromFunc(func() ([]any, error) {
		for t < len(order) && i == len(order[t].hashes) {
			t, i = t+1, 0
		}
		if t == len(order) {
			return nil, nil
		}
		i++
		return []any{order[t].id, int64(i - 1), order[t].hashes[i-1][:]}, nil
	})
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{schema, "ledger_tree_hashes"}, []string{"tenant_id", "idx", "hash"}, hashes); err != nil {
		return fmt.Errorf("ledger tree: copy hashes: %w", err)
	}
	return nil
}
