-- The groups read model is derived from the few group events among all
-- events. Without an index its derivation scans every event of the range it
-- applies: a rebuild over 1,000,000 events spent 1.4 s reading events to
-- find none. A partial index holds only the group events, so it costs
-- nothing on the append of any other event.
CREATE INDEX events_group_events ON events (position)
    WHERE type IN ('GroupCreated', 'GroupRenamed', 'GroupDeleted');
