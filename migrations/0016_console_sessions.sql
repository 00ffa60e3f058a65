-- console_sessions: the web console's sign-ins.
--
-- Server-side rather than a signed cookie: signing out (or deactivating the
-- user) must end a session at once, and a row can be deleted where a signed
-- cookie stays valid until it expires. The cookie carries a random token;
-- only its SHA-256 is stored, like API keys, so a database read does not
-- yield usable sessions. csrf_token is the per-session token every console
-- form must post back.
CREATE TABLE console_sessions (
    token_hash bytea PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    user_id    uuid NOT NULL,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
