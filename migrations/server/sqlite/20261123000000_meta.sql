-- Facts about this Switchyard installation (first start, ...), the same
-- table as in migrations/postgres so the SQL side behaves alike on both.
CREATE TABLE IF NOT EXISTS switchyard_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
