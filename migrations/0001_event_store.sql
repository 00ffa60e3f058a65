-- The event store: the single source of truth. Every other table is either a
-- side record written in the same transaction as the events it belongs to
-- (keys, claims, idempotency) or a projection that can be rebuilt from events.

CREATE TABLE tenants (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per stream: its head version and the hash of its last event. Locking
-- this row serialises appends to one stream without any global lock.
CREATE TABLE streams (
    stream_id   uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    stream_type text NOT NULL,
    version     bigint NOT NULL CHECK (version >= 0),
    last_hash   bytea NOT NULL
);

CREATE TABLE events (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    stream_id      uuid NOT NULL,
    stream_version bigint NOT NULL CHECK (stream_version >= 1),
    type           text NOT NULL,
    schema_version integer NOT NULL DEFAULT 1,
    data           jsonb NOT NULL,
    metadata       jsonb NOT NULL,
    recorded_at    timestamptz NOT NULL,
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    prev_hash      bytea NOT NULL,
    hash           bytea NOT NULL,
    -- The last line of defence against two writers both believing they hold version N.
    UNIQUE (stream_id, stream_version)
);

-- Subscribers read in commit-safe order (transaction_id, position).
CREATE INDEX events_transaction_order ON events (transaction_id, position);
CREATE INDEX events_tenant_position ON events (tenant_id, position);
-- Finding every customer a user was ever put on, inside a write transaction
-- (deactivation must not rely on a lagging projection).
CREATE INDEX events_assigned_user ON events (tenant_id, (data->>'user_id'))
    WHERE type IN ('UserAssigned', 'TeamMemberReplaced');
CREATE INDEX events_replacing_user ON events (tenant_id, (data->>'with_user_id'))
    WHERE type = 'TeamMemberReplaced';

-- Idempotency keys are recorded in the append transaction, so a key exists
-- exactly when its events do.
CREATE TABLE idempotency_keys (
    tenant_id    uuid NOT NULL,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    response     jsonb,
    position     bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

-- Uniqueness that spans streams (e-mail addresses, external IDs), claimed in
-- the append transaction rather than checked against a projection.
CREATE TABLE unique_claims (
    tenant_id uuid NOT NULL,
    kind      text NOT NULL,
    value     text NOT NULL,
    owner_id  uuid NOT NULL,
    PRIMARY KEY (tenant_id, kind, value)
);

CREATE TABLE api_keys (
    key_id     uuid PRIMARY KEY,
    key_hash   bytea NOT NULL UNIQUE,
    tenant_id  uuid NOT NULL,
    user_id    uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE invitations (
    token_hash  bytea PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    customer_id uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    accepted_at timestamptz
);

-- The team directory, written in the same transaction as UserCreated and
-- UserDeactivated: authentication and the rules that need a user's current
-- status must never read a lagging projection. Names never change after
-- creation, so read models join this table for display names.
CREATE TABLE users (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    name       text NOT NULL,
    email      text NOT NULL,
    role       text NOT NULL,
    status     text NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (tenant_id, email)
);
CREATE INDEX users_tenant_name ON users (tenant_id, name, id);
