-- The ledger log (issue 21): per tenant, an RFC 6962 Merkle tree over its
-- events in commit order (transaction_id, position), kept by the
-- projection engine as the read model ledger_tree, and the signed
-- checkpoints of it.
--
-- ledger_leaves: which leaf each event is (leaf i = the tenant's i-th
-- event in commit order). ledger_tree_hashes: the tree's stored hashes in
-- the layout of golang.org/x/mod/sumdb/tlog (tlog.StoredHashIndex), about
-- two per leaf; a tree of any size and every proof are computed from them.
CREATE TABLE ledger_leaves (
    tenant_id  uuid   NOT NULL,
    leaf_index bigint NOT NULL,
    position   bigint NOT NULL,
    PRIMARY KEY (tenant_id, leaf_index)
);
-- An event's leaf index (history items, audit entries).
CREATE UNIQUE INDEX ledger_leaves_position ON ledger_leaves (position);

-- The read model's checkpoint: it starts from the first event.
INSERT INTO projection_checkpoints (consumer_group) VALUES ('ledger_tree') ON CONFLICT DO NOTHING;

CREATE TABLE ledger_tree_hashes (
    tenant_id uuid   NOT NULL,
    idx       bigint NOT NULL,
    hash      bytea  NOT NULL,
    PRIMARY KEY (tenant_id, idx)
);

-- Checkpoints the service signed: one per tenant and tree size (signing
-- again at the same size gives the same statement). Not a read model: a
-- signed note is a fact about the past and a rebuild never touches it.
CREATE TABLE ledger_checkpoints (
    tenant_id uuid        NOT NULL,
    tree_size bigint      NOT NULL,
    root_hash bytea       NOT NULL,
    position  bigint      NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now(),
    note      text        NOT NULL,
    PRIMARY KEY (tenant_id, tree_size)
);
CREATE INDEX ledger_checkpoints_signed_at ON ledger_checkpoints (tenant_id, signed_at);
