-- The daily checkpoint e-mail (issue 21): one row per tenant and UTC day
-- on which the tenant's auditors were e-mailed its signed checkpoint. It
-- is inserted in the same transaction as the outbox rows of those e-mails,
-- so across restarts and several `serve` processes a tenant's auditors get
-- exactly one checkpoint e-mail a day: the process that loses the insert
-- queues nothing.
CREATE TABLE checkpoint_emails (
    tenant_id  uuid        NOT NULL,
    day        date        NOT NULL,
    tree_size  bigint      NOT NULL,
    recipients int         NOT NULL,
    queued_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, day)
);
