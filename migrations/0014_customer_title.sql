-- A customer's title (the client portal's "name and title"), shown in the
-- customer list. A constant default makes the column a catalog change: no
-- row is rewritten; the projection writes it as profiles change (and a
-- rebuild writes it everywhere).
ALTER TABLE customer_list ADD COLUMN title text NOT NULL DEFAULT '';
