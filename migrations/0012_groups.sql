-- Groups (issue 14). Membership is customer state: customer_groups is a
-- table of the customer_list read model, a row per (customer, group),
-- folded from the customers' streams. groups is the groups read model: a
-- row per event of a group's stream (see projections/groups.go), so that
-- it is only ever inserted into; a group's current name is its latest row.
-- Both start empty: no group event exists before this migration.
CREATE TABLE customer_groups (
    customer_id uuid NOT NULL,
    group_id    uuid NOT NULL,
    tenant_id   uuid NOT NULL,
    PRIMARY KEY (customer_id, group_id)
);
-- The group filter and the groups' customer counts.
CREATE INDEX customer_groups_group ON customer_groups (group_id, customer_id);

CREATE TABLE groups (
    tenant_id uuid NOT NULL,
    group_id  uuid NOT NULL,
    position  bigint NOT NULL,
    name      text NOT NULL,
    deleted   boolean NOT NULL,
    at        timestamptz NOT NULL,
    PRIMARY KEY (group_id, position)
);
CREATE INDEX groups_tenant ON groups (tenant_id, group_id, position);

INSERT INTO projection_checkpoints (consumer_group) VALUES ('groups');
