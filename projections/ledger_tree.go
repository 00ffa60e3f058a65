package projections

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/ledgerlog"
)

// ledgerTreeProjection is the ledger log's tree (docs/API.md, "The ledger
// log"; package ledgerlog): per tenant, an RFC 6962 Merkle tree whose leaf
// i is the tenant's i-th event in commit order, the order this engine
// applies events in, so a rebuild (which applies the same events in the
// same order through the same code) makes the same tree. Leaf hash: the
// RFC 6962 leaf hash of the event's stored chain hash.
//
// ledger_tiles holds the tree's stored hashes (golang.org/x/mod/sumdb/tlog's
// StoredHashIndex layout) as tlog tiles of height ledgerlog.TileHeight:
// one row per tile, the hashes of 16 nodes of one tree level, from which
// the levels up to the next tile level are computed; the rightmost tile of
// each tile level is partial and is rewritten wider as the tree grows.
// ledger_leaves names each event's leaf. A batch reads each tenant's size
// and its rightmost tile per tile level (all tenants in one query), which
// hold every stored hash appending needs, and writes the leaves and the
// tiles that changed: a few rows per tenant whatever the batch's size.
func ledgerTreeProjection() *projection {
	return &projection{
		name: LedgerTree,
		tables: []table{
			{name: "ledger_leaves", key: []string{"tenant_id", "leaf_index"}, columns: []string{"tenant_id", "leaf_index", "position"}},
			{name: "ledger_tiles", key: []string{"tenant_id", "level", "n"}, columns: []string{"tenant_id", "level", "n", "hashes"}},
		},
		grow: growLedgerTree,
		load: loadLedgerTree,
	}
}

const (
	// qTreeEvents are the batch's events in commit order (the derived
	// engine's batches carry only cursors) that are not leaves yet: a
	// batch applied again (after a lost commit acknowledgement) changes
	// nothing, as every read model's does. OFFSET 0 keeps the leaf check
	// a probe per event: on a generic plan (runner.go), which cannot know
	// the batch is small, an anti join hashed every leaf instead.
	qTreeEvents = `SELECT e.tenant_id::text, e.position, e.hash
FROM ledger_events_between($1::text::xid8, $2::bigint, $3::text::xid8, $4::bigint) e
WHERE NOT EXISTS (SELECT FROM ledger_leaves l WHERE l.position = e.position OFFSET 0)
ORDER BY e.transaction_id, e.position`
	// qTreeFrontiers is each tenant's tree size (its last leaf, by the
	// primary key backwards) and its rightmost tile at each tile level
	// (level L while size >> (L*$2) > 0; $2 is the tile height): one row
	// per tile, or one with a NULL level for an empty tree.
	// s is MATERIALIZED: inlined, its size subquery ran again for each
	// of its uses in every level's row (87 buffers a tenant instead of 39).
	// The tiles are looked up one per level (LATERAL, OFFSET 0): the
	// projections run on generic plans (runner.go), and as a join, whose
	// sizes a generic plan cannot know, they became a scan of every tile.
	qTreeFrontiers = `WITH s AS MATERIALIZED (
    SELECT t, coalesce((SELECT l.leaf_index + 1 FROM ledger_leaves l WHERE l.tenant_id = t
        ORDER BY l.leaf_index DESC LIMIT 1), 0) AS size
    FROM unnest($1::text[]::uuid[]) AS t)
SELECT s.t::text, s.size, x.level, x.n, x.hashes FROM s
LEFT JOIN LATERAL (SELECT g.level, x.n, x.hashes FROM generate_series(0, 63 / $2::int) AS g(level)
    CROSS JOIN LATERAL (SELECT x.n, x.hashes FROM ledger_tiles x
        WHERE x.tenant_id = s.t AND x.level = g.level AND x.n = ((s.size >> (g.level * $2::int)) - 1) >> $2::int OFFSET 0) x
    WHERE s.size >> (g.level * $2::int) > 0) x ON true`
	// qUpsertTiles writes a batch's tiles. A partial tile already there
	// is replaced by a wider one that begins with it, never by a narrower
	// or a different one.
	qUpsertTiles = `INSERT INTO ledger_tiles (tenant_id, level, n, hashes)
SELECT * FROM unnest(%s::text[]::uuid[], %s::int[], %s::bigint[], %s::bytea[])
ON CONFLICT (tenant_id, level, n) DO UPDATE SET hashes = excluded.hashes
WHERE length(excluded.hashes) > length(ledger_tiles.hashes)
  AND substr(excluded.hashes, 1, length(ledger_tiles.hashes)) = ledger_tiles.hashes`
)

// treeGrowth is one tenant's tree while a batch grows it.
type treeGrowth struct {
	tenant string
	// start is its size before the batch, size now.
	start, size int64
	// tiles are its rightmost stored tiles; hashes the stored hashes the
	// batch adds.
	tiles  ledgerlog.Tiles
	hashes map[int64]tlog.Hash
}

// ReadHashes serves the tree's stored hashes: the batch's, else the
// stored tiles'.
func (t *treeGrowth) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if h, ok := t.hashes[x]; ok {
			out[i] = h
			continue
		}
		h, err := t.tiles.Hash(x)
		if err != nil {
			return nil, fmt.Errorf("ledger tree: tenant %s: %w", t.tenant, err)
		}
		out[i] = h
	}
	return out, nil
}

// growLedgerTree adds to w the leaves and tiles of the events in (from,
// end].
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
			trees[l.tenant] = &treeGrowth{tenant: l.tenant, tiles: ledgerlog.Tiles{}, hashes: map[int64]tlog.Hash{}}
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
		lTenants     []string
		lIndex, lPos []int64
		tTenants     []string
		tLevel       []int32
		tN           []int64
		tData        [][]byte
	)
	for _, l := range leaves {
		t := trees[l.tenant]
		hs, err := tlog.StoredHashesForRecordHash(t.size, tlog.RecordHash(l.hash), t)
		if err != nil {
			return fmt.Errorf("ledger tree: leaf %d of tenant %s: %w", t.size, l.tenant, err)
		}
		base := tlog.StoredHashIndex(0, t.size)
		for i, h := range hs {
			t.hashes[base+int64(i)] = h
		}
		lTenants, lIndex, lPos = append(lTenants, l.tenant), append(lIndex, t.size), append(lPos, l.position)
		t.size++
	}
	for _, name := range tenants {
		t := trees[name]
		for _, tile := range tlog.NewTiles(ledgerlog.TileHeight, t.start, t.size) {
			data, err := tlog.ReadTileData(tile, t)
			if err != nil {
				return fmt.Errorf("ledger tree: tile %s of tenant %s: %w", tile.Path(), name, err)
			}
			tTenants, tLevel, tN, tData = append(tTenants, name), append(tLevel, int32(tile.L)), append(tN, tile.N), append(tData, data)
		}
	}
	// No ON CONFLICT: a leaf already there means the tree and its
	// checkpoint disagree, and the batch must fail rather than skip it.
	w.cte(fmt.Sprintf(`INSERT INTO ledger_leaves (tenant_id, leaf_index, position)
SELECT * FROM unnest(%s::text[]::uuid[], %s::bigint[], %s::bigint[])`, w.arg(lTenants), w.arg(lIndex), w.arg(lPos)))
	w.cte(fmt.Sprintf(qUpsertTiles, w.arg(tTenants), w.arg(tLevel), w.arg(tN), w.arg(tData)))
	return nil
}

// readTreeFrontiers reads each tenant's tree size and the tiles appending
// to it needs: the rightmost one of each tile level, which holds the roots
// of the complete subtrees that make up the tree (one per bit set in its
// size) and the start of the tile the next leaves widen.
func readTreeFrontiers(ctx context.Context, tx queryer, tenants []string, trees map[string]*treeGrowth) error {
	rows, err := tx.QueryContext(ctx, qTreeFrontiers, tenants, ledgerlog.TileHeight)
	if err != nil {
		return fmt.Errorf("ledger tree: frontier: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			tenant string
			size   int64
			level  sql.NullInt32
			n      sql.NullInt64
			data   []byte
		)
		if err := rows.Scan(&tenant, &size, &level, &n, &data); err != nil {
			return fmt.Errorf("ledger tree: frontier: %w", err)
		}
		t := trees[tenant]
		t.start, t.size = size, size
		if level.Valid {
			t.tiles[ledgerlog.TileKey{Level: int(level.Int32), N: n.Int64}] = data
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger tree: frontier: %w", err)
	}
	return nil
}

// qTreeLoad is every event of a transaction below a bound (the rebuild's
// xmin0: all of them committed), in commit order.
const qTreeLoad = `SELECT e.tenant_id::text, e.position, e.hash FROM ledger_events_below($1::text::xid8) e
ORDER BY e.transaction_id, e.position`

// loadTree is one tenant's tree as the bulk load builds it: its stored
// hashes, dense by index (tlog.StoredHashIndex), and its leaves' positions.
type loadTree struct {
	id        pgtype.UUID
	hashes    []tlog.Hash
	positions []int64
}

// ReadHashes serves the tree's stored hashes from memory.
func (lt *loadTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = lt.hashes[x]
	}
	return out, nil
}

// loadLedgerTree is the tree's bulk load for a rebuild: one read of the
// events' hashes in commit order, the stored hashes computed in memory
// (about two per leaf, 32 bytes each, and the leaf's position: some 80
// bytes an event, 80 MB for a million), and two COPYs: the leaves, and the
// tiles (one row per 16 nodes of a tile level: about 1/15 of a row per
// leaf). It writes what
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
		hs, err := tlog.StoredHashesForRecordHash(n, tlog.RecordHash(h), lt)
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
	// The tiles, one tenant's after another's, each made when COPY asks
	// for it.
	var tiles []tlog.Tile
	t, i = -1, 0
	rowsOut := pgx.CopyFromFunc(func() ([]any, error) {
		for i == len(tiles) {
			if t++; t == len(order) {
				return nil, nil
			}
			tiles, i = tlog.NewTiles(ledgerlog.TileHeight, 0, int64(len(order[t].positions))), 0
		}
		tile := tiles[i]
		i++
		data, err := tlog.ReadTileData(tile, order[t])
		if err != nil {
			return nil, err
		}
		return []any{order[t].id, int32(tile.L), tile.N, data}, nil
	})
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{schema, "ledger_tiles"}, []string{"tenant_id", "level", "n", "hashes"}, rowsOut); err != nil {
		return fmt.Errorf("ledger tree: copy tiles: %w", err)
	}
	return nil
}
