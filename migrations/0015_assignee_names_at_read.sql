-- The assignees column keeps who is on the team, in order, and no longer
-- their names: the customer list looks names up in users when it is read,
-- so renaming a user (PATCH /v1/users/{id}) shows everywhere at once and the
-- projection needs no names. The names stored so far are dropped, so that
-- rows written before and after this migration are alike (a rebuild would
-- write them so).
UPDATE customer_list c
SET assignees = (SELECT coalesce(jsonb_agg(a.x - 'name' ORDER BY a.i), '[]')
                 FROM jsonb_array_elements(c.assignees) WITH ORDINALITY AS a(x, i))
WHERE c.assignees <> '[]';
