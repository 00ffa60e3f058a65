-- customer_keys: each customer's data key, wrapped (AES-256-GCM) with the
-- key-encryption key from the environment (LEDGER_KEK), so a dump of the
-- database alone opens nothing. The personal fields of the customer's
-- profile events (schema version 2) are sealed with the data key. Erasure
-- sets wrapped_key to NULL and erased_at: the row stays as a tombstone that
-- tells "erased" from "never had a key" (a customer of plaintext v1 events).
CREATE TABLE customer_keys (
    customer_id uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    wrapped_key bytea,
    erased_at   timestamptz,
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);

-- The customers an idempotency record's stored answer names (the customer
-- streams its append wrote), so erasure can delete the records that would
-- replay a customer's personal data.
ALTER TABLE idempotency_keys ADD COLUMN customer_ids uuid[];
CREATE INDEX idempotency_keys_customers ON idempotency_keys USING gin (customer_ids) WHERE customer_ids IS NOT NULL;
-- Records stored before this migration: their customers are the customer
-- streams written by the transaction of the append they answered.
UPDATE idempotency_keys i SET customer_ids = (
    SELECT array_agg(DISTINCT e.stream_id) FROM events e JOIN streams s USING (stream_id)
    WHERE s.stream_type = 'customer'
      AND e.transaction_id = (SELECT x.transaction_id FROM events x WHERE x.position = i.position))
WHERE i.position IS NOT NULL;

-- Customer events with personal fields in clear (version 1, written before
-- sealing existed): what `ledger encrypt-legacy` rewrites and `ledger serve`
-- warns about at start. Empty once they are sealed, so it costs nothing.
CREATE INDEX events_plaintext_profiles ON events (stream_id)
    WHERE schema_version = 1 AND type IN ('CustomerRegistered', 'ClientInvited', 'CustomerUpdated');
