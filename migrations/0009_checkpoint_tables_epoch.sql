-- tables_epoch counts the times a rebuild swapped in a projection's tables.
--
-- A live handler keeps the customer folds it last wrote in memory and
-- trusts them while the tables are as it left them (projections/batch.go):
-- every live write moves the checkpoint, so finding the checkpoint where its
-- own last write put it says nobody else wrote. A rebuild's swap, though,
-- sets the checkpoint to where its catch-up ended, which can be exactly
-- there, over tables that were built apart from the handler's memory. The
-- swap bumps the epoch, and the claim returns it with the checkpoint.
ALTER TABLE projection_checkpoints ADD COLUMN tables_epoch bigint NOT NULL DEFAULT 0;

DROP FUNCTION ledger_checkpoint_claim(text);

-- As in migration 0006, with the epoch.
CREATE FUNCTION ledger_checkpoint_claim(consumer text)
RETURNS TABLE (last_transaction_id xid8, last_position bigint, tables_epoch bigint)
LANGUAGE plpgsql VOLATILE ROWS 1 AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('ledger_projection_checkpoint:' || consumer, 0));
    RETURN QUERY SELECT c.last_transaction_id, c.last_position, c.tables_epoch
        FROM projection_checkpoints c WHERE c.consumer_group = consumer;
END
$$;
