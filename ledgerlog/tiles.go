package ledgerlog

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// TileHeight is the height of the tiles the stored tree is kept in
// (ledger_tiles, golang.org/x/mod/sumdb/tlog's tiling): a tile at level L,
// number N holds up to 2^TileHeight consecutive hashes of tree level
// L*TileHeight, those of nodes N*2^TileHeight on, and every stored hash of
// the levels between is computed from them. 16 hashes are 512 bytes, a row
// small enough to stay inline (no TOAST). The projection that writes the
// tiles and every reader use this constant.
const TileHeight = 4

// TileKey names a stored tile of a tenant's tree: ledger_tiles' (level, n).
type TileKey struct {
	Level int
	N     int64
}

// TileOf is the tile that holds stored hash idx (tlog.StoredHashIndex).
func TileOf(idx int64) TileKey {
	t := tlog.TileForIndex(TileHeight, idx)
	return TileKey{t.L, t.N}
}

// Tiles are stored tiles' data (ledger_tiles.hashes: W hashes of 32 bytes)
// by tile.
type Tiles map[TileKey][]byte

// Hash returns stored hash idx from the tiles. A tile absent, too narrow
// to hold idx or not a whole number of hashes is an error, as a missing
// stored hash is: the stored tree cannot serve it.
func (ts Tiles) Hash(idx int64) (tlog.Hash, error) {
	t := tlog.TileForIndex(TileHeight, idx)
	data, ok := ts[TileKey{t.L, t.N}]
	if !ok {
		return tlog.Hash{}, fmt.Errorf("stored hash %d missing (no tile %d/%d)", idx, t.L, t.N)
	}
	w := len(data) / tlog.HashSize
	if len(data)%tlog.HashSize != 0 || w > 1<<TileHeight {
		return tlog.Hash{}, fmt.Errorf("stored tile %d/%d is %d bytes", t.L, t.N, len(data))
	}
	if w < t.W {
		return tlog.Hash{}, fmt.Errorf("stored hash %d missing (tile %d/%d holds %d hashes, not %d)", idx, t.L, t.N, w, t.W)
	}
	// HashFromTile takes a tile at least as wide as idx needs: the row's
	// own width.
	t.W = w
	return tlog.HashFromTile(t, data, idx)
}

// ReadHashes serves stored hashes from the tiles (a tlog.HashReader).
func (ts Tiles) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		h, err := ts.Hash(x)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

const qTiles = `SELECT t.level, t.n, t.hashes FROM ledger_tiles t
JOIN unnest($2::int[], $3::bigint[]) AS k(level, n) ON t.tenant_id = $1::uuid AND t.level = k.level AND t.n = k.n`

// reader reads a tenant's stored hashes from its tiles: each ReadHashes
// fetches the tiles it needs and has not fetched yet in one query. It
// serves what is stored, unchecked (tlog.TileHashReader would check the
// tiles against a tree hash): a tampered stored tree must reach the
// client, whose verification of the proofs then fails.
func reader(ctx context.Context, q querier, tenantID string) tlog.HashReader {
	tiles := Tiles{}
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		var levels []int32
		var ns []int64
		want := map[TileKey]bool{}
		for _, x := range idx {
			k := TileOf(x)
			if _, ok := tiles[k]; ok || want[k] {
				continue
			}
			want[k] = true
			levels, ns = append(levels, int32(k.Level)), append(ns, k.N)
		}
		if len(ns) > 0 {
			rows, err := q.Query(ctx, qTiles, tenantID, levels, ns)
			if err != nil {
				return nil, fmt.Errorf("read stored tiles: %w", err)
			}
			for rows.Next() {
				var k TileKey
				var data []byte
				if err := rows.Scan(&k.Level, &k.N, &data); err != nil {
					rows.Close()
					return nil, fmt.Errorf("read stored tiles: %w", err)
				}
				tiles[k] = data
			}
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("read stored tiles: %w", err)
			}
		}
		return tiles.ReadHashes(idx)
	})
}
