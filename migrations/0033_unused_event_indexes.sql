-- Two indexes of 0001 that nothing reads any more: deactivation used them
-- to find every customer a user was ever put on by parsing event JSON, and
-- now asks the my_clients read model and the domain's fold instead
-- (projections.TeamsOf). Every UserAssigned paid for one of them on
-- append (an expression over the event's JSON and a B-tree insert).
DROP INDEX IF EXISTS events_assigned_user;
DROP INDEX IF EXISTS events_replacing_user;
