-- customer_list changes on every team change, and each update (never HOT:
-- the assignees it changes are indexed) adds entries to both of its GIN
-- indexes, audit_log's on every event. With the default 4 MB pending list a
-- writer had to merge the list into the index inside its own statement
-- every second or two under load, stalling its projection for ~100 ms
-- (the p99 of projection lag). A small list is merged often, a little at a
-- time. The rebuild copies these options with the index definitions.
ALTER INDEX customer_list_assignees SET (gin_pending_list_limit = 128);
ALTER INDEX customer_list_search SET (gin_pending_list_limit = 128);
ALTER INDEX audit_log_by_user SET (gin_pending_list_limit = 128);
