package projections

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/assignment-ledger/ledger/ledgerlog"
)

// A tree grown live, a few events a batch while events keep arriving in
// several tenants, has exactly the tiles a rebuild makes, and serves the
// tree computed independently from the events: every stored hash, and the
// roots of its sizes (tlog.TreeHash over the leaf hashes in commit
// order). The tenants' sizes cross the tile boundaries of levels 0, 1 and
// 2 (16, 256 and 4096 leaves), where partial tiles turn full and new tile
// levels begin.
func TestLedgerTreeGrownLiveEqualsRebuildAndTheEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, WithProjections(LedgerTree), WithBatchSize(7))
	ctx := context.Background()
	sizes := map[string]int{uuid.NewString(): 4100, uuid.NewString(): 300, uuid.NewString(): 17, uuid.NewString(): 1}
	var tenants []string
	left := map[string]int{}
	for id, n := range sizes {
		tenants, left[id] = append(tenants, id), n
	}
	start(t, b.runner)
	// Events in transactions of up to 100, tenants interleaved, each with
	// a hash of its own: the tree only reads (tenant, commit order, hash).
	rng := rand.New(rand.NewPCG(21, 4))
	version := map[string]int64{}
	var last int64
	for len(left) > 0 {
		var rows [][]any
		for range 1 + rng.IntN(100) {
			if len(left) == 0 {
				break
			}
			id := tenants[rng.IntN(len(tenants))]
			if left[id] == 0 {
				continue
			}
			if left[id]--; left[id] == 0 {
				delete(left, id)
			}
			version[id]++
			var seed [24]byte
			copy(seed[:], id)
			binary.BigEndian.PutUint64(seed[16:], uint64(version[id]))
			h := sha256.Sum256(seed[:])
			rows = append(rows, treeEvent(id, version[id], h[:]))
		}
		last = copyEvents(t, b, rows)
	}
	waitFor(t, b.runner, last)

	for _, id := range tenants {
		rows, err := b.pool.Query(ctx, `SELECT hash FROM events WHERE tenant_id = $1 ORDER BY transaction_id, position`, id)
		if err != nil {
			t.Fatal(err)
		}
		hashes, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			t.Fatal(err)
		}
		n := int64(len(hashes))
		if n != int64(sizes[id]) {
			t.Fatalf("tenant %s: %d events, want %d", id, n, sizes[id])
		}
		// The tree from the events alone, in memory.
		var want []tlog.Hash
		mem := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				out[i] = want[x]
			}
			return out, nil
		})
		for i, h := range hashes {
			hs, err := tlog.StoredHashesForRecordHash(int64(i), tlog.RecordHash(h), mem)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, hs...)
		}
		// The stored tree.
		rows, err = b.pool.Query(ctx, `SELECT level, n, hashes FROM ledger_tiles WHERE tenant_id = $1`, id)
		if err != nil {
			t.Fatal(err)
		}
		tiles := ledgerlog.Tiles{}
		var k ledgerlog.TileKey
		var data []byte
		if _, err := pgx.ForEachRow(rows, []any{&k.Level, &k.N, &data}, func() error {
			tiles[k] = append([]byte(nil), data...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if got, wantN := len(tiles), len(tlog.NewTiles(ledgerlog.TileHeight, 0, n)); got != wantN {
			t.Errorf("tenant of %d leaves: %d tiles, want %d", n, got, wantN)
		}
		for idx, h := range want {
			if got, err := tiles.Hash(int64(idx)); err != nil || got != h {
				t.Fatalf("tenant of %d leaves: stored hash %d: %v, %v; want %v", n, idx, got, err, h)
			}
		}
		for _, size := range []int64{1, 15, 16, 17, 255, 256, 257, 4095, 4096, 4097, n} {
			if size > n {
				continue
			}
			got, err := tlog.TreeHash(size, tiles)
			if err != nil {
				t.Fatal(err)
			}
			if root := rfc6962Root(hashes[:size]); got != root {
				t.Errorf("tenant of %d leaves: root of size %d from the tiles %v, from the events %v", n, size, got, root)
			}
		}
	}

	live := snapshot(t, b.pool)
	if len(live["ledger_tiles"]) == 0 || len(live["ledger_leaves"]) != 4100+300+17+1 {
		t.Fatalf("live tree: %d tiles, %d leaves", len(live["ledger_tiles"]), len(live["ledger_leaves"]))
	}
	if err := b.runner.Rebuild(ctx, LedgerTree, nil); err != nil {
		t.Fatal(err)
	}
	compareSnapshots(t, "grown live vs rebuilt", live, snapshot(t, b.pool))
}

// rfc6962Root is the RFC 6962 root of the records whose data are
// records, by the RFC's recursive definition: leaves hashed with prefix
// 0, nodes with prefix 1, split at the largest power of two below n.
func rfc6962Root(records [][]byte) tlog.Hash {
	if len(records) == 1 {
		return sha256.Sum256(append([]byte{0}, records[0]...))
	}
	k := 1
	for k<<1 < len(records) {
		k <<= 1
	}
	l, r := rfc6962Root(records[:k]), rfc6962Root(records[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// The runner's statements run on generic plans (runner.go), which cannot
// know that a live batch is a few events: the ledger tree's two reads must
// still look leaves and tiles up by key, not hash or scan all of them (as
// they did, written as joins, once the runner's pool forced generic plans:
// 4 ms a batch instead of 0.06 at 20,000 leaves).
func TestLedgerTreeReadsOnGenericPlansProbeByKey(t *testing.T) {
	t.Parallel()
	b := setup(t, WithProjections(LedgerTree))
	ctx := context.Background()
	tenant := uuid.NewString()
	var rows [][]any
	for v := range 2000 {
		h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(tenant), uint64(v)))
		rows = append(rows, treeEvent(tenant, int64(v+1), h[:]))
	}
	last := copyEvents(t, b, rows)
	start(t, b.runner)
	waitFor(t, b.runner, last)
	if _, err := b.pool.Exec(ctx, `ANALYZE ledger_leaves, ledger_tiles`); err != nil {
		t.Fatal(err)
	}

	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	for name, q := range map[string]string{"qTreeEvents": qTreeEvents, "qTreeFrontiers": qTreeFrontiers} {
		if _, err := conn.Exec(ctx, "PREPARE "+name+" AS "+q); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var args string
		switch name {
		case "qTreeEvents":
			args = "('0', 0, '99999999', 9999999)"
		case "qTreeFrontiers":
			args = "(ARRAY['" + tenant + "'], 4)"
		}
		rows, err := conn.Query(ctx, "EXPLAIN EXECUTE "+name+args)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		plan := strings.Join(lines, "\n")
		if !strings.Contains(plan, "$1") && !strings.Contains(plan, "$2") {
			t.Fatalf("%s: not a generic plan:\n%s", name, plan)
		}
		for _, bad := range []string{"Seq Scan on ledger_", "Hash"} {
			if strings.Contains(plan, bad) {
				t.Errorf("%s: generic plan has %q:\n%s", name, bad, plan)
			}
		}
	}
}

// treeEvent is an events row of a tenant's stream (its ID the tenant's) at
// version, with hash: all the ledger tree reads of an event.
func treeEvent(tenant string, version int64, hash []byte) []any {
	return []any{tenant, tenant, version, "test_event", int32(1), `{}`, `{}`, time.Now(), []byte{0}, hash}
}

// copyEvents writes rows (treeEvent's) into events in one transaction and
// returns the last position.
func copyEvents(t *testing.T, b testBundle, rows [][]any) int64 {
	t.Helper()
	ctx := context.Background()
	if _, err := b.pool.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"tenant_id", "stream_id", "stream_version", "type",
		"schema_version", "data", "metadata", "recorded_at", "prev_hash", "hash"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	var last int64
	if err := b.pool.QueryRow(ctx, `SELECT max(position) FROM events`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	return last
}
