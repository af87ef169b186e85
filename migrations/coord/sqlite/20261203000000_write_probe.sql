-- One row the embedded queue store's health check rewrites while writes
-- are failing and nothing else writes (coord::queue::sql): a real write of
-- a few pages, so that readiness comes back only once the disk takes
-- writes again.
CREATE TABLE coord_write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at BIGINT NOT NULL,
    pad BLOB NOT NULL
);
