-- Read models (projections) and their checkpoints. Every table here except
-- projection_checkpoints and notification_reads can be dropped and rebuilt
-- from the events (`ledger rebuild`). A rebuild recreates a projection's
-- tables in a side schema from the live tables' definitions (columns,
-- defaults, generated columns, indexes, primary keys), so this file is the one
-- place their shape is defined.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- One row per consumer group (= projection). It is the Watermill offsets
-- table: the subscriber locks the group's row FOR UPDATE for a whole batch, so
-- one process at a time feeds a projection, and every handler advances it in
-- the same transaction as its read-model writes.
--
-- in_flight is true while a handler is between its first and its last write
-- of one event. Watermill may commit the batch transaction while a handler is
-- still running (ack deadline, shutdown); the deferred trigger below makes
-- such a commit fail, so half an event is never committed.
CREATE TABLE projection_checkpoints (
    consumer_group      text PRIMARY KEY,
    last_transaction_id xid8 NOT NULL DEFAULT '0',
    last_position       bigint NOT NULL DEFAULT 0,
    in_flight           boolean NOT NULL DEFAULT false,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

INSERT INTO projection_checkpoints (consumer_group) VALUES
    ('my_clients'), ('customer_list'), ('assignment_intervals'), ('audit_log'), ('notifications');

CREATE FUNCTION projection_checkpoint_settled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM projection_checkpoints WHERE consumer_group = NEW.consumer_group AND in_flight) THEN
        RAISE EXCEPTION 'projection % would commit an event half applied', NEW.consumer_group
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER projection_checkpoints_settled
    AFTER UPDATE ON projection_checkpoints
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.in_flight)
    EXECUTE FUNCTION projection_checkpoint_settled();

-- Read-your-writes waiters listen on ledger_checkpoints instead of polling.
-- The payload is the group name: PostgreSQL folds identical notifications of
-- one transaction into one, so a batch notifies once.
CREATE FUNCTION projection_checkpoint_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ledger_checkpoints', NEW.consumer_group);
    RETURN NULL;
END
$$;

CREATE TRIGGER projection_checkpoints_notify
    AFTER UPDATE ON projection_checkpoints
    FOR EACH ROW
    WHEN (OLD.last_position IS DISTINCT FROM NEW.last_position
       OR OLD.last_transaction_id IS DISTINCT FROM NEW.last_transaction_id)
    EXECUTE FUNCTION projection_checkpoint_notify();

-- customer_list: one row per customer, with the assigned-user column as the
-- API shows it ([{"user_id","name","lead","assigned_at"}] in team order).
CREATE TABLE customer_list (
    customer_id         uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL,
    first_name          text NOT NULL,
    last_name           text NOT NULL,
    email               text NOT NULL,
    phone               text NOT NULL,
    external_id         text NOT NULL,
    status              text NOT NULL,
    -- what an unblock returns to (empty unless blocked)
    status_before_block text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL,
    version             bigint NOT NULL,
    assignees           jsonb NOT NULL DEFAULT '[]',
    -- q matches first, last or full name and email, case-insensitively
    search              text GENERATED ALWAYS AS (lower(first_name || ' ' || last_name || ' ' || email)) STORED
);
CREATE INDEX customer_list_by_created ON customer_list (tenant_id, created_at, customer_id);
CREATE INDEX customer_list_unassigned ON customer_list (tenant_id, created_at, customer_id) WHERE assignees = '[]';
CREATE INDEX customer_list_assignees ON customer_list USING gin (assignees jsonb_path_ops);
CREATE INDEX customer_list_search ON customer_list USING gin (search gin_trgm_ops);

-- my_clients: who serves whom now; an index-shaped table for "My Clients",
-- newest assignment first. seq is the position of the event that put the
-- user on the team (team order).
CREATE TABLE my_clients (
    customer_id uuid NOT NULL,
    user_id     uuid NOT NULL,
    tenant_id   uuid NOT NULL,
    lead        boolean NOT NULL,
    assigned_at timestamptz NOT NULL,
    seq         bigint NOT NULL,
    PRIMARY KEY (customer_id, user_id)
);
CREATE INDEX my_clients_by_user ON my_clients (tenant_id, user_id, assigned_at DESC, customer_id DESC);

-- The stream version each customer projection has applied: events are
-- delivered in commit order, which can differ from stream order, so a
-- projection that needs stream order fills gaps from the event store and
-- skips what it already has.
CREATE TABLE my_clients_streams (
    customer_id uuid PRIMARY KEY,
    version     bigint NOT NULL
);

-- assignment_intervals: one row per stretch during which a user was on a
-- customer's team with one lead flag. [valid_from, valid_to): an event at
-- exactly t has happened at t. assigned_at is the start of the continuous
-- membership (a lead change starts a new stretch, not a new membership).
CREATE TABLE assignment_intervals (
    customer_id   uuid NOT NULL,
    from_position bigint NOT NULL,
    user_id       uuid NOT NULL,
    tenant_id     uuid NOT NULL,
    lead          boolean NOT NULL,
    assigned_at   timestamptz NOT NULL,
    seq           bigint NOT NULL,
    valid_from    timestamptz NOT NULL,
    valid_to      timestamptz,
    to_position   bigint,
    PRIMARY KEY (customer_id, from_position, user_id)
);
-- (by customer: the primary key's prefix)
CREATE INDEX assignment_intervals_by_user ON assignment_intervals (tenant_id, user_id, valid_from);

CREATE TABLE assignment_intervals_streams (
    customer_id uuid PRIMARY KEY,
    version     bigint NOT NULL
);

-- audit_log: every event with its actor and time. Few indexes, uuid rather
-- than text keys: a rebuild builds them over every event.
CREATE TABLE audit_log (
    tenant_id      uuid NOT NULL,
    position       bigint NOT NULL,
    stream_id      uuid NOT NULL,
    stream_version bigint NOT NULL,
    type           text NOT NULL,
    schema_version integer NOT NULL,
    at             timestamptz NOT NULL,
    actor_user_id  text NOT NULL,
    actor_name     text NOT NULL,
    correlation_id text NOT NULL,
    customer_id    uuid,
    user_ids       uuid[] NOT NULL,
    data           jsonb NOT NULL,
    PRIMARY KEY (tenant_id, position)
);
CREATE INDEX audit_log_by_customer ON audit_log (tenant_id, customer_id, position) WHERE customer_id IS NOT NULL;
CREATE INDEX audit_log_by_user ON audit_log USING gin (user_ids);

-- notifications: what each user was told; at most one notification per
-- user and event. The API's id is "<position>-<user id>", derived from the
-- event, so it is the same after a rebuild and the read marks below, which
-- are not rebuilt, stay attached.
CREATE TABLE notifications (
    tenant_id   uuid NOT NULL,
    user_id     uuid NOT NULL,
    position    bigint NOT NULL,
    type        text NOT NULL,
    customer_id uuid NOT NULL,
    at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id, position)
);

CREATE TABLE notification_reads (
    tenant_id uuid NOT NULL,
    user_id   uuid NOT NULL,
    position  bigint NOT NULL,
    read_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id, position)
);
