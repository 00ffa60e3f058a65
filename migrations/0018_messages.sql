-- messages: e-mails an admin sends to selected customers
-- (POST /v1/customers/messages). One row per message, written in the
-- append that records a CustomerMessaged event per recipient; each
-- recipient's e-mail is an outbox row pointing here. The subject and body
-- are kept once, here, rather than copied into up to 10,000 outbox rows:
-- the relay joins them in when it renders an e-mail.
CREATE TABLE messages (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    subject    text NOT NULL,
    body       text NOT NULL,
    -- the admin who sent it (the events' actor says so too)
    created_by uuid,
    created_at timestamptz NOT NULL
);

-- The message an outbox row is one e-mail of (NULL for invitations).
-- Deferred: the append writes the outbox rows before its side records.
ALTER TABLE outbox ADD COLUMN message_id uuid REFERENCES messages (id) DEFERRABLE INITIALLY DEFERRED;
-- GET /v1/messages/{id}: its delivery counts by status.
CREATE INDEX outbox_message ON outbox (message_id, status) WHERE message_id IS NOT NULL;
