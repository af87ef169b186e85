-- Operators' accounts and sign-in sessions (server/src/users/mod.rs).
-- Kept in step with migrations/sqlite/20261123000006_users.sql: one set of statements
-- serves both databases. Passwords are Argon2id PHC strings; session ids
-- are stored only as their SHA-256 (base64url), so neither table can be
-- used to sign in if it leaks. Times are ms since the Unix epoch.
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    created_at BIGINT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    csrf_token TEXT NOT NULL
);
-- Purging expired sessions, and ending all of one user's.
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
CREATE INDEX IF NOT EXISTS sessions_user_name ON sessions (user_name);
