-- ledger_check fails its statement, and with it the transaction, unless ok
-- is true. An optimistic append sends its preconditions and its writes in
-- one round trip; a precondition that does not hold must stop the writes
-- queued behind it, and only an error does that. The detail names the check
-- so the caller can tell which one failed.
CREATE FUNCTION ledger_check(ok boolean, what text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'ledger check failed: %', what USING ERRCODE = 'LC001', DETAIL = what;
    END IF;
    RETURN true;
END
$$;
