-- audit_log keeps only what its filters and order need; the rest of an
-- entry (stream, versions, actor name, correlation ID, data) is read from
-- the event itself, by position, when a page is read. Copying the event's
-- data into every audit row doubled the WAL of each event applied, and
-- made the audit log the most expensive read model to catch up and rebuild.
-- (A page joins at most 1,001 events by primary key.)
ALTER TABLE audit_log
    DROP COLUMN stream_id,
    DROP COLUMN stream_version,
    DROP COLUMN schema_version,
    DROP COLUMN actor_name,
    DROP COLUMN correlation_id,
    DROP COLUMN data;
