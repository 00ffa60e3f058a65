package ledgerlog

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/assignment-ledger/ledger/eventstore"
)

// Event is one leaf as recomputed from the events table.
type Event struct {
	Position int64
	StreamID string
	Version  int64
	Leaf     tlog.Hash
}

// MismatchError names the first event of a tenant's log that differs from
// a signed checkpoint.
type MismatchError struct {
	TenantID  string
	Size      int64 // the checkpoint's tree size
	LeafIndex int64
	// Event is the event now at LeafIndex; zero when the log has fewer
	// events than the leaf's index.
	Event Event
	// Located is false when the stored tree could not narrow the
	// difference down (it does not match the checkpoint either): the
	// difference is then somewhere from LeafIndex on.
	Located bool
}

func (e *MismatchError) Error() string {
	where := fmt.Sprintf("leaf %d", e.LeafIndex)
	if e.Event.StreamID != "" {
		where = fmt.Sprintf("event position %d (stream %s, version %d), leaf %d", e.Event.Position, e.Event.StreamID, e.Event.Version, e.LeafIndex)
	} else {
		where += " (no such event: the log is shorter than the checkpoint)"
	}
	if !e.Located {
		// No event is named: the first of the range is not known to
		// differ, and an auditor would read it as the one that does.
		return fmt.Sprintf("tenant %s: the events do not match the checkpoint of tree size %d somewhere in leaves %d to %d (the stored tree does not match the checkpoint either, so the difference cannot be narrowed further; a checkpoint kept in between narrows it)",
			e.TenantID, e.Size, e.LeafIndex, e.Size-1)
	}
	return fmt.Sprintf("tenant %s: the events differ from the checkpoint of tree size %d at %s", e.TenantID, e.Size, where)
}

// StoredTreeError says the stored tree (the ledger_tree read model, which
// serves proofs) does not match the events, while the events match the
// checkpoints: served proofs are wrong until the read model is rebuilt.
type StoredTreeError struct {
	TenantID string
	Size     int64
	// Index is the first stored hash (tlog.StoredHashIndex) that differs
	// or is missing.
	Index int64
	// Checked is the size of the largest checkpoint the events matched:
	// the events are proven up to there, not past it.
	Checked int64
	// Ahead is set when the stored tree holds more leaves (Size) than
	// there are events (Events).
	Ahead  bool
	Events int64
}

// Proven reports whether the stored hash that differs covers only leaves
// the checkpoints prove, so that the stored tree is the one that is wrong.
// Past them, the events may as well have been changed since the tree
// stored them.
func (e *StoredTreeError) Proven() bool {
	level, n := tlog.SplitStoredHashIndex(e.Index)
	return (n+1)<<level <= e.Checked
}

func (e *StoredTreeError) Error() string {
	level, n := tlog.SplitStoredHashIndex(e.Index)
	if e.Ahead {
		return fmt.Sprintf("tenant %s: the stored tree holds %d leaves, the events only %d, and they differ from leaf %d on (stored hash %d, level %d, node %d). The stored tree is built from the events and never runs ahead of them, so events were removed (or leaves forged). Do not rebuild ledger_tree (it may hold the only record of the removed events)",
			e.TenantID, e.Size, e.Events, n<<level, e.Index, level, n)
	}
	if !e.Proven() {
		return fmt.Sprintf("tenant %s: the stored tree (of %d leaves) and the events differ from leaf %d on (stored hash %d, level %d, node %d), past the largest checkpoint given (%d leaves), which the events match: either the events after it or the stored tree was changed, and no checkpoint given says which. Do not rebuild ledger_tree (it may hold the only record of the original events); verify against a later checkpoint",
			e.TenantID, e.Size, n<<level, e.Index, level, n, e.Checked)
	}
	return fmt.Sprintf("tenant %s: the events match the checkpoints, but the stored tree (of %d leaves) does not match them from stored hash %d (level %d, node %d) on: proofs served from it are wrong (`ledger rebuild ledger_tree` rebuilds it from the events)",
		e.TenantID, e.Size, e.Index, level, n)
}

// TenantOf reads the tenant ID from a checkpoint's origin line.
func TenantOf(origin string) (string, error) {
	i := strings.LastIndex(origin, "/tenants/")
	if i < 0 || len(origin[i+len("/tenants/"):]) != 36 {
		return "", fmt.Errorf("%w: origin %q names no tenant", ErrMalformedCheckpoint, origin)
	}
	return origin[i+len("/tenants/"):], nil
}

// Events reads the tenant's events in commit order, as leaves: straight
// from the events table, never from the stored tree.
func Events(ctx context.Context, pool *pgxpool.Pool, tenantID string) ([]Event, error) {
	hashes, err := eventstore.New(pool).TenantHashes(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := make([]Event, len(hashes))
	for i, h := range hashes {
		out[i] = Event{Position: h.Position, StreamID: h.StreamID, Version: h.Version, Leaf: tlog.RecordHash(h.Hash)}
	}
	return out, nil
}

// rangeHash is the RFC 6962 hash of leaves [lo, hi); ok is false when the
// range runs past the leaves there are.
func rangeHash(evs []Event, lo, hi int64) (tlog.Hash, bool) {
	if hi > int64(len(evs)) {
		return tlog.Hash{}, false
	}
	if hi-lo == 1 {
		return evs[lo].Leaf, true
	}
	k := split(hi - lo)
	l, _ := rangeHash(evs, lo, lo+k)
	r, _ := rangeHash(evs, lo+k, hi)
	return tlog.NodeHash(l, r), true
}

// split is the largest power of two below n (n > 1): where RFC 6962 splits
// a tree of n leaves.
func split(n int64) int64 {
	k := int64(1)
	for k<<1 < n {
		k <<= 1
	}
	return k
}

// storedRange is the hash of leaves [lo, hi) from stored hashes.
func storedRange(r tlog.HashReader, lo, hi int64) (tlog.Hash, error) {
	if n := hi - lo; n&(n-1) == 0 && lo%n == 0 {
		level := 0
		for n>>level > 1 {
			level++
		}
		hs, err := r.ReadHashes([]int64{tlog.StoredHashIndex(level, lo>>level)})
		if err != nil {
			return tlog.Hash{}, err
		}
		return hs[0], nil
	}
	k := split(hi - lo)
	left, err := storedRange(r, lo, lo+k)
	if err != nil {
		return tlog.Hash{}, err
	}
	right, err := storedRange(r, lo+k, hi)
	if err != nil {
		return tlog.Hash{}, err
	}
	return tlog.NodeHash(left, right), nil
}

// Root is the RFC 6962 root of the first n leaves.
func Root(evs []Event, n int64) (tlog.Hash, bool) {
	if n == 0 {
		h, _ := tlog.TreeHash(0, nil) // the empty tree's hash, SHA-256 of nothing
		return h, true
	}
	return rangeHash(evs, 0, n)
}

// locate finds the first leaf of evs that differs from the tree whose
// root, trusted because it is signed, is root. It descends the tree: at
// each node, the stored hashes of its two children are trusted only when
// they hash to the node's trusted hash (so the stored tree can narrow the
// search but never decide it), and the search goes into the left child
// when the events' hash of it differs, else into the right.
func locate(evs []Event, r tlog.HashReader, size int64, root tlog.Hash) (leaf int64, located bool) {
	lo, hi, trusted := int64(0), size, root
	for hi-lo > 1 {
		k := split(hi - lo)
		left, err1 := storedRange(r, lo, lo+k)
		right, err2 := storedRange(r, lo+k, hi)
		if err1 != nil || err2 != nil || tlog.NodeHash(left, right) != trusted {
			return lo, false
		}
		if got, ok := rangeHash(evs, lo, lo+k); !ok || got != left {
			hi, trusted = lo+k, left
		} else {
			lo, trusted = lo+k, right
		}
	}
	return lo, true
}

// Verified is one checkpoint that verified.
type Verified struct {
	TenantID string
	Size     int64
	Now      int64 // the tenant's events today
}

// VerifyCheckpoints checks signed checkpoints (notes) against the events:
// each one's signature with vkey, and that the root of the tenant's first
// size events, recomputed from the events table, is the checkpoint's root,
// so today's log extends what was signed. A mismatch is a *MismatchError
// naming the first event that differs. Once the events match, it checks
// that the stored tree serves the same tree (a consistency proof from it,
// verified against the recomputed roots): a *StoredTreeError otherwise.
func VerifyCheckpoints(ctx context.Context, pool *pgxpool.Pool, vkey string, notes [][]byte) ([]Verified, error) {
	type item struct {
		tenant string
		cp     Checkpoint
	}
	var items []item
	for i, n := range notes {
		cp, err := Open(n, vkey)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %d: %w", i+1, err)
		}
		t, err := TenantOf(cp.Origin)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %d: %w", i+1, err)
		}
		items = append(items, item{t, cp})
	}
	slices.SortStableFunc(items, func(a, b item) int {
		if c := strings.Compare(a.tenant, b.tenant); c != 0 {
			return c
		}
		return int(min(max(a.cp.Size-b.cp.Size, -1), 1))
	})
	var out []Verified
	var evs []Event
	// Each tenant's checkpoints are checked against the events, smallest
	// first, before its stored tree: a later checkpoint names a changed
	// event that an earlier one does not cover.
	var stored int64
	for i, it := range items {
		if i == 0 || it.tenant != items[i-1].tenant {
			// The stored tree's size before the events: it lags them, so
			// only removed events (or forged leaves) make it the larger.
			if err := pool.QueryRow(ctx, qSize, it.tenant).Scan(&stored); err != nil {
				return out, fmt.Errorf("stored tree size: %w", err)
			}
			var err error
			if evs, err = Events(ctx, pool, it.tenant); err != nil {
				return out, err
			}
		}
		root, ok := Root(evs, it.cp.Size)
		if !ok || root != it.cp.Root {
			leaf, located := locate(evs, reader(ctx, pool, it.tenant), it.cp.Size, it.cp.Root)
			e := &MismatchError{TenantID: it.tenant, Size: it.cp.Size, LeafIndex: leaf, Located: located}
			if leaf < int64(len(evs)) {
				e.Event = evs[leaf]
			}
			return out, e
		}
		if i == len(items)-1 || items[i+1].tenant != it.tenant {
			if err := checkStored(ctx, pool, it.tenant, stored, evs, it.cp); err != nil {
				return out, err
			}
		}
		out = append(out, Verified{TenantID: it.tenant, Size: it.cp.Size, Now: int64(len(evs))})
	}
	return out, nil
}

// checkStored compares the stored tree (which serves the proofs) with the
// tree recomputed from the events, hash by hash: every stored hash of the
// leaves both hold. The events already matched cp, the tenant's largest
// checkpoint, so a difference within its leaves is the stored tree's; past
// them it may be either's (StoredTreeError.Proven). stored is the stored
// tree's size, read before the events.
func checkStored(ctx context.Context, pool *pgxpool.Pool, tenant string, stored int64, evs []Event, cp Checkpoint) error {
	// A stored tree larger than the events is tampering wherever they
	// differ: from the first stored hash that differs, or the first leaf
	// with no event.
	ahead := func(idx int64) error {
		return &StoredTreeError{TenantID: tenant, Size: stored, Index: idx, Checked: cp.Size, Ahead: true, Events: int64(len(evs))}
	}
	n := min(stored, int64(len(evs)))
	want := make([]tlog.Hash, 0, tlog.StoredHashCount(n))
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = want[x]
		}
		return out, nil
	})
	for i := range n {
		hs, err := tlog.StoredHashesForRecordHash(i, evs[i].Leaf, r)
		if err != nil {
			return fmt.Errorf("recompute tree: %w", err)
		}
		want = append(want, hs...)
	}
	// The stored tree is its tiles: every one of the tenant's, in one
	// read (about 34 bytes a leaf).
	rows, err := pool.Query(ctx, `SELECT level, n, hashes FROM ledger_tiles WHERE tenant_id = $1::uuid`, tenant)
	if err != nil {
		return fmt.Errorf("read stored tree: %w", err)
	}
	tiles := Tiles{}
	var k TileKey
	var data []byte
	if _, err := pgx.ForEachRow(rows, []any{&k.Level, &k.N, &data}, func() error {
		tiles[k] = slices.Clone(data)
		return nil
	}); err != nil {
		return fmt.Errorf("read stored tree: %w", err)
	}
	// Every stored hash is a function of the hashes the tiles hold, so
	// tiles that begin with the recomputed tree's tiles serve its stored
	// hashes; only when one does not is the first differing stored hash
	// looked for, hash by hash.
	same := true
	for _, t := range tlog.NewTiles(TileHeight, 0, n) {
		exp, err := tlog.ReadTileData(t, r)
		if err != nil {
			return fmt.Errorf("recompute tree: %w", err)
		}
		got := tiles[TileKey{t.L, t.N}]
		if len(got) < len(exp) || len(got)%tlog.HashSize != 0 || len(got) > tlog.HashSize<<TileHeight || string(got[:len(exp)]) != string(exp) {
			same = false
			break
		}
	}
	if !same {
		for idx := range int64(len(want)) {
			if h, err := tiles.Hash(idx); err != nil || h != want[idx] {
				if stored > n {
					return ahead(idx)
				}
				return &StoredTreeError{TenantID: tenant, Size: n, Index: idx, Checked: cp.Size}
			}
		}
	}
	if stored > n {
		return ahead(tlog.StoredHashIndex(0, n))
	}
	return nil
}
