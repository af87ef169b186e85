-- Sign-in sessions through coord::sessions (server/src/auth/sessions.rs):
-- the session's opaque data (its CSRF token and a summary of the browser)
-- in one column, as every session store keeps it. Ids are now hashed to
-- lowercase hex (coord::sessions::key_of); rows keyed the old way
-- (base64url) could never be found again, and would show on the Users
-- page as sessions nobody can revoke: they are deleted (everyone signs in
-- once more).
ALTER TABLE sessions ADD COLUMN data TEXT NOT NULL DEFAULT '';
DELETE FROM sessions;
