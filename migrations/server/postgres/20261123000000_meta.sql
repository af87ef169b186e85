-- The server's own key/value settings on the SQL side (server/src/db.rs),
-- e.g. when this installation first started. Kept identical to the SQLite
-- table of the same name so one set of statements serves both databases.
CREATE TABLE IF NOT EXISTS switchyard_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
