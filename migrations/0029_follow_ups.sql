-- Follow-ups (issue 23). Their events are on the customers' streams, so
-- follow_ups is a table of the customer_list read model (like
-- customer_groups): a row per live follow-up (a cancelled one, and every
-- follow-up of an erased customer, has none), folded with the customer. It
-- starts empty: no follow-up event exists before this migration. pending is
-- "open and not yet recorded due": the scheduler's partial index holds only
-- those, so finding what is due, and the next due time, reads only
-- follow-ups still to fall due.
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

-- A member under members_see "assigned" sees the follow-ups of the
-- customers they serve only (migration visibility).
SELECT ledger_read_model('follow_ups', 'customer');
