-- The event store's read interface for set-based readers in other
-- packages' statements (the projections' derived read models, their
-- rebuilds, the lag metrics): the event store owns the events table, and no
-- other package names it (eventstore/boundary_test.go). A projection that
-- turns a batch of events into rows with one INSERT ... SELECT reads them
-- through these functions instead, so how events are found (which
-- predicates, which indexes) is the store's to change.
--
-- Each is a single-SELECT SQL function, STABLE and not STRICT, so the
-- planner inlines it into the calling statement: the plan is the one the
-- same predicates written in place would get (an index scan on events, no
-- Function Scan), and the caller's further conditions, ORDER BY and LIMIT
-- apply to the index scan as before.

-- The events after a subscriber's cursor (transaction id, position), in
-- any order: callers bound the range and order it themselves.
CREATE FUNCTION ledger_events_after(after_tx xid8, after_position bigint) RETURNS SETOF events
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT * FROM events e WHERE (e.transaction_id, e.position) > (after_tx, after_position)
$$;

-- The events of a subscriber's batch: after one cursor, up to and
-- including another.
CREATE FUNCTION ledger_events_between(after_tx xid8, after_position bigint, upto_tx xid8, upto_position bigint)
RETURNS SETOF events LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT * FROM events e
    WHERE (e.transaction_id, e.position) > (after_tx, after_position)
      AND (e.transaction_id, e.position) <= (upto_tx, upto_position)
$$;

-- The events with positions in (after_position, upto_position]: a
-- rebuild's ranges, read in the table's physical order.
CREATE FUNCTION ledger_events_in_positions(after_position bigint, upto_position bigint) RETURNS SETOF events
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT * FROM events e WHERE e.position > after_position AND e.position <= upto_position
$$;

-- The event at one position (none if there is no such event).
CREATE FUNCTION ledger_event_at(at_position bigint) RETURNS SETOF events
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT * FROM events e WHERE e.position = at_position
$$;

-- The newest event's position (0 for none).
CREATE FUNCTION ledger_head_position() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(max(e.position), 0) FROM events e
$$;

-- The events of transactions below a transaction id (a snapshot's xmin):
-- those every later snapshot sees committed or never will.
CREATE FUNCTION ledger_events_below(below_tx xid8) RETURNS SETOF events
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT * FROM events e WHERE e.transaction_id < below_tx
$$;

-- A stream's events after a version.
CREATE FUNCTION ledger_stream_events_after(stream uuid, after_version bigint) RETURNS SETOF events
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT * FROM events e WHERE e.stream_id = stream AND e.stream_version > after_version
$$;
