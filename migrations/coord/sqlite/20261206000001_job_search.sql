-- Text search over jobs (coord::search): an FTS5 index of each job's name
-- and the first 4 KiB of its data, keyed by the job's rowid. It is filled
-- in batches behind the writers (`index_search`, driven by whoever serves
-- searches), so enqueueing and finishing jobs never tokenize anything.
--
-- Contentless (nothing but the index is stored) with deletes allowed, so
-- a re-indexed row can drop its old entry.
CREATE VIRTUAL TABLE job_search USING fts5(
    name,
    data,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Which job each indexed rowid was: a search keeps only hits whose job
-- still has that rowid and identity, so a job deleted since it was
-- indexed never shows up (the indexer purges such entries in batches).
CREATE TABLE job_search_keys (
    row INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    id TEXT NOT NULL
);

-- How far the indexer got: every rowid up to `indexed_to` is indexed;
-- `purged_to` is where its sweep for deleted jobs goes on.
CREATE TABLE job_search_state (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    indexed_to INTEGER NOT NULL,
    purged_to INTEGER NOT NULL
);
INSERT INTO job_search_state (one, indexed_to, purged_to) VALUES (1, 0, 0);

-- SQLite hands out the largest rowid + 1, so deleting the newest jobs can
-- give their rowids to the next ones, below `indexed_to`: the indexer
-- re-checks the newest indexed rows against `job_search_keys` each round
-- rather than a trigger taxing every insert.
