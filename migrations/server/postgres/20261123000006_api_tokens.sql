-- Bearer tokens for the JSON API (server/src/users/tokens.rs).
-- Kept in step with migrations/sqlite/20261123000007_api_tokens.sql: one set of statements
-- serves both databases. A token is `sy_<id>_<secret>`; only the SHA-256
-- of the whole token (base64url, like session ids) is stored, so a leaked
-- table cannot be replayed as tokens. `id` is the short public part, for
-- listing and revoking. Tokens go with their user (ON DELETE CASCADE); a
-- disabled user's tokens stay but are refused. Times are ms since the
-- Unix epoch; last_used_at is NULL until the token is first used.
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NULL
);
-- Listing by user, and the cascade when a user is removed.
CREATE INDEX IF NOT EXISTS api_tokens_user_name ON api_tokens (user_name, created_at);
