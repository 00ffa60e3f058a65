-- customer_list changes on every team change. With its assignees column
-- indexed (a GIN index, and the predicate of the unassigned index) every such
-- update was a non-HOT update: a new entry in every index of the table,
-- ~30-50 trigram entries of the search index among them. That was most of
-- the projection's cost and the tail of its lag.
--
-- The assigned-user filter now starts from my_clients (who serves whom,
-- indexed by user) and keeps the rows whose own column agrees; the
-- unassigned filter uses a flag that changes only when a team empties or
-- fills. A team change then touches no indexed column and can be a HOT
-- update, which pages keep room for.
DROP INDEX customer_list_assignees;
DROP INDEX customer_list_unassigned;
ALTER TABLE customer_list
    ADD COLUMN unassigned boolean GENERATED ALWAYS AS (assignees = '[]'::jsonb) STORED;
CREATE INDEX customer_list_unassigned ON customer_list (tenant_id, created_at, customer_id) WHERE unassigned;
ALTER TABLE customer_list SET (fillfactor = 80);
