-- ledger_checkpoint_claim makes the calling transaction the consumer group's
-- only consumer until it ends, and returns the group's checkpoint as it
-- then stands.
--
-- It replaces SELECT ... FOR UPDATE on the checkpoint row. A row lock gives
-- the transaction an xid at once, and every subscriber reads only below the
-- oldest running xid (pg_snapshot_xmin): five projections cycling through
-- batch transactions that each held an xid from their first statement kept
-- new events unreadable for most of a batch. An advisory lock needs no xid,
-- so a batch takes one only when it writes, at its end.
--
-- ROWS 1: with the default estimate of 1,000 rows the batch query's cost
-- crossed jit_above_cost, and every batch paid milliseconds of JIT
-- compilation.
--
-- The read after the lock is a statement of its own inside a VOLATILE
-- function, so under READ COMMITTED it sees the checkpoint committed by the
-- consumer it waited for, as FOR UPDATE would.
CREATE FUNCTION ledger_checkpoint_claim(consumer text)
RETURNS TABLE (last_transaction_id xid8, last_position bigint)
LANGUAGE plpgsql VOLATILE ROWS 1 AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('ledger_projection_checkpoint:' || consumer, 0));
    RETURN QUERY SELECT c.last_transaction_id, c.last_position
        FROM projection_checkpoints c WHERE c.consumer_group = consumer;
END
$$;
