-- Every projection now writes an event's rows and its checkpoint in one
-- statement, which is atomic by itself; the in-flight flag and the deferred
-- trigger that refused to commit a half-applied event (0002) guard nothing.
DROP TRIGGER projection_checkpoints_settled ON projection_checkpoints;
DROP FUNCTION projection_checkpoint_settled();
ALTER TABLE projection_checkpoints DROP COLUMN in_flight;
