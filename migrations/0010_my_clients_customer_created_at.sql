-- The customer list filtered by an assigned user starts from my_clients (the
-- user's customers, by index) and pages in the list's order, created_at then
-- customer_id. Without created_at in my_clients it had to fetch every one of
-- the user's customer rows and sort them for each page (hundreds of random
-- reads for a page of 50). With it, an index in list order lets the query
-- walk the user's customers in order and stop once the page is full.
--
-- A customer's created_at is the recorded_at of the first event of its
-- stream (CustomerRegistered or ClientInvited), which is where the fold
-- takes it from, so existing rows are filled from the event store.
ALTER TABLE my_clients ADD COLUMN customer_created_at timestamptz;

UPDATE my_clients m SET customer_created_at = e.recorded_at
FROM events e
WHERE e.stream_id = m.customer_id AND e.stream_version = 1;

ALTER TABLE my_clients ALTER COLUMN customer_created_at SET NOT NULL;

CREATE INDEX my_clients_by_user_in_list_order
    ON my_clients (tenant_id, user_id, customer_created_at, customer_id);
