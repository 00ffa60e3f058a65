-- The past is not rewritten: the application never updates or deletes an
-- event, and this trigger makes sure no code path (or hand-written SQL run
-- through the application's connection) does. An operator who must (a GDPR
-- erasure, a restore) acts deliberately, e.g. with
-- `SET session_replication_role = replica`, and `ledger verify` then shows
-- exactly which chain the change broke.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
