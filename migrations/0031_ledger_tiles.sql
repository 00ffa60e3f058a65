-- The ledger log's stored tree as tiles (issue 21): ledger_tiles replaces
-- ledger_tree_hashes, which held every stored hash of the tree as a row of
-- its own (about two rows per event). A row of ledger_tiles is one tile of
-- golang.org/x/mod/sumdb/tlog's tiling of height 4 (ledgerlog.TileHeight):
-- at level L, number n, the hashes (32 bytes each, up to 16: 512 bytes,
-- stored inline) of the tree's nodes n*16 .. n*16+15 at tree level 4*L.
-- The stored hashes of the levels between are computed from them. The
-- rightmost tile of each level is partial (fewer than 16 hashes) and is
-- rewritten wider as the tree grows, never narrower nor changed.
CREATE TABLE ledger_tiles (
    tenant_id uuid   NOT NULL,
    level     int    NOT NULL,
    n         bigint NOT NULL,
    hashes    bytea  NOT NULL,
    PRIMARY KEY (tenant_id, level, n)
);
SELECT ledger_read_model('ledger_tiles', 'tenant');

-- Dropping the table drops its policy; its visibility entry goes too.
DROP TABLE ledger_tree_hashes;
DELETE FROM read_model_visibility WHERE table_name = 'ledger_tree_hashes';

-- An existing tree is grown again from the first event by the live
-- handler, into the same tree (the same leaves in the same order, so the
-- same checkpoints and proofs): its leaves go and its checkpoint goes back
-- to the start, its epoch bumped as a rebuild's swap does. Until it has
-- caught up, proofs and checkpoints are served only for the leaves it has
-- regrown. `ledger rebuild ledger_tree` after this migration is faster
-- (one bulk load instead of batch after batch).
TRUNCATE ledger_leaves;
UPDATE projection_checkpoints
SET last_transaction_id = '0', last_position = 0, tables_epoch = tables_epoch + 1, updated_at = now()
WHERE consumer_group = 'ledger_tree' AND last_position <> 0; -- a new database's is at the start already
