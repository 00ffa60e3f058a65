-- Follow-ups (issue 23). Their events are on the customers' streams, so
-- follow_ups is a fold read model like my_clients: a row per live
-- follow-up (a cancelled one, and every follow-up of an erased customer,
-- has none), and follow_ups_streams the stream version it has applied per
-- customer. pending is "open and not yet recorded due": the scheduler's
-- partial index holds only those, so finding what is due, and the next due
-- time, reads only follow-ups still to fall due.
CREATE TABLE follow_ups (
    follow_up_id uuid NOT NULL PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    customer_id  uuid NOT NULL,
    due_at       timestamptz NOT NULL,
    note         text NOT NULL,
    send_to      text NOT NULL,
    status       text NOT NULL,
    created_by   uuid NOT NULL,
    created_at   timestamptz NOT NULL,
    pending      boolean NOT NULL
);
CREATE INDEX follow_ups_customer ON follow_ups (customer_id, due_at);
CREATE INDEX follow_ups_due ON follow_ups (due_at) WHERE pending;

CREATE TABLE follow_ups_streams (
    customer_id uuid NOT NULL PRIMARY KEY,
    version     bigint NOT NULL
);

-- No follow-up event exists before this migration: the read model starts
-- where my_clients stands (its versions and checkpoint, read in one
-- snapshot, which the engine writes in one statement), rather than
-- folding every customer again from the first event.
INSERT INTO follow_ups_streams (customer_id, version) SELECT customer_id, version FROM my_clients_streams;
INSERT INTO projection_checkpoints (consumer_group, last_transaction_id, last_position)
SELECT 'follow_ups', last_transaction_id, last_position FROM projection_checkpoints WHERE consumer_group = 'my_clients';
