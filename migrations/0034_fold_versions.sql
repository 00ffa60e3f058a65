-- The fold read models (customer_list, my_clients, assignment_intervals)
-- are written by one engine from one fold of each customer, in one
-- statement, and rebuilt as one: they have always applied the same version
-- of a customer. my_clients_streams and assignment_intervals_streams kept
-- that version twice more, a row update each per event (a third of the
-- fold's write statement). customer_list's version column records it now;
-- an erased customer, who leaves the list, keeps it here.
CREATE TABLE customer_list_erased (
    customer_id uuid PRIMARY KEY,
    version     bigint NOT NULL
);

INSERT INTO customer_list_erased (customer_id, version)
SELECT s.customer_id, greatest(s.version, coalesce(a.version, 0))
FROM my_clients_streams s
LEFT JOIN assignment_intervals_streams a USING (customer_id)
WHERE NOT EXISTS (SELECT 1 FROM customer_list c WHERE c.customer_id = s.customer_id);

-- Only the fold engine reads it, as the owner.
SELECT ledger_read_model('customer_list_erased', 'hidden');

DROP TABLE my_clients_streams;
DROP TABLE assignment_intervals_streams;
