-- Saved views (issue 23). views is a derived read model like groups: a row
-- per event of a view's stream (each carries the whole view), so it is
-- only ever inserted into; a view's current state is its latest row.
CREATE TABLE views (
    tenant_id uuid NOT NULL,
    view_id   uuid NOT NULL,
    position  bigint NOT NULL,
    owner_id  uuid NOT NULL,
    name      text NOT NULL,
    filter    jsonb NOT NULL,
    shared    boolean NOT NULL,
    deleted   boolean NOT NULL,
    at        timestamptz NOT NULL,
    PRIMARY KEY (view_id, position)
);
CREATE INDEX views_tenant ON views (tenant_id, view_id, position);

-- No view event exists before this migration: nothing to catch up.
INSERT INTO projection_checkpoints (consumer_group, last_transaction_id, last_position)
SELECT 'views', last_transaction_id, last_position FROM projection_checkpoints WHERE consumer_group = 'groups';

-- Keyed by tenant: which of the tenant's views a user sees (their own and
-- the shared ones) is the queries' rule, not visibility's.
SELECT ledger_read_model('views', 'tenant');
