-- outbox: messages to deliver outside (e-mail), written in the same
-- transaction as the events that cause them (eventstore.AppendRequest.Outbox)
-- and delivered at least once by the relay (package mail), which records
-- each attempt here. A crash between the commit and the send loses nothing:
-- the row stays queued until a relay marks it sent or failed.
CREATE TABLE outbox (
    -- also the e-mail's Message-ID, so a repeated send is recognisable
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    customer_id     uuid,
    -- what the payload is and how the relay renders it: 'invitation'
    kind            text NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz
);
-- The relay's queue: only queued rows, in the order they fall due.
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'queued';
-- A customer's invitation e-mail, for its view.
CREATE INDEX outbox_customer ON outbox (customer_id, kind, created_at) WHERE customer_id IS NOT NULL;
-- A customer's invitation, for its view and the invitation page.
CREATE INDEX invitations_customer ON invitations (customer_id);
