-- An admin's opt-in to the daily checkpoint e-mail (auditors always
-- receive it). Written with the UserUpdated event that changes it, like
-- the rest of the team directory row; EmailCheckpoints reads it.
ALTER TABLE users ADD COLUMN checkpoint_email boolean NOT NULL DEFAULT false;
