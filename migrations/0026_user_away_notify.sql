-- Contract v3: a user's out-of-office time (assignment rules skip them
-- until then) and their choice to receive each notification by e-mail
-- too. Written with the UserUpdated event that changes them, like the rest
-- of the team directory row.
ALTER TABLE users ADD COLUMN away_until timestamptz, ADD COLUMN notify_by_email boolean NOT NULL DEFAULT false;
