-- notify_by_email: each notification a user receives also goes out as an
-- e-mail, once. notify_since is when the user last turned it on (older
-- notifications are not e-mailed); notification_emails claims each
-- (tenant, user, position) notification in the transaction that queues its
-- outbox row, so however many processes look, and however often the
-- notifications read model is rebuilt (its rows keep their keys), each is
-- queued once.
ALTER TABLE users ADD COLUMN notify_since timestamptz;
CREATE TABLE notification_emails (
    tenant_id uuid NOT NULL,
    user_id   uuid NOT NULL,
    position  bigint NOT NULL,
    email_id  uuid NOT NULL,
    queued_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id, position)
);
