-- Which ingest run last saw each catalog row (postgres dialect). Keep in step with
-- ../sqlite/0004_ingest_seen.sql: a test checks that both dialects have the same tables and columns.
-- A run stamps every row it reads from its source (new, changed or unchanged) with its run id;
-- stamps only move forward. The rows that vanished from a full source are then its active rows
-- stamped before the run (or never), and a row already stamped by the running run is a
-- duplicate, so a run keeps no set of every id it has seen and its memory stays flat however long
-- the list is. Content and updated_at change only when the source's values do.
ALTER TABLE items ADD COLUMN seen_run BIGINT;
ALTER TABLE markets ADD COLUMN seen_run BIGINT;
