-- customer_search: the customer list's search text, in a table of its own.
--
-- In customer_list the trigram index made every update that could not be
-- HOT (the page had no room left: after an import, a bulk edit updates
-- every row of every page) insert some 30-50 GIN entries, most of the cost
-- of catching up after a bulk edit. The search text changes only with the
-- profile, so apart from the team it is written only when it changes.
-- The projection computes it (lower-cased as queries are, in Go), so the
-- column is no longer generated.
CREATE TABLE customer_search (
    customer_id uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    -- first name, last name and email, lower-cased, space-separated
    search      text NOT NULL
);
INSERT INTO customer_search (customer_id, tenant_id, search)
SELECT customer_id, tenant_id, search FROM customer_list;
CREATE INDEX customer_search_search ON customer_search USING gin (search gin_trgm_ops)
    WITH (gin_pending_list_limit = 128);
ALTER TABLE customer_list DROP COLUMN search;
