-- Nightly ingest of the public item and market lists (SQLite dialect). Keep in step with
-- ../postgres/0002_ingest.sql: a test checks that both dialects have the same tables and columns.

-- Fields the public lists carry that 0001 had no column for.
ALTER TABLE items ADD COLUMN maker TEXT;           -- productEntpCode (maker or entry company)
ALTER TABLE markets ADD COLUMN area_code TEXT;     -- entpAreaCode (region code of the price API)

-- One row per `gonggu ingest` run. `status`: running -> succeeded | partial | failed.
-- `partial`: some pages failed after their retries (listed in `failed_pages`, comma-separated);
-- every other page was applied, and nothing was deactivated. `failed`: the run stopped (bad key,
-- unknown service, malformed page, database error); the chunks committed before stay applied.
CREATE TABLE ingest_runs (
    id             INTEGER PRIMARY KEY,
    source         TEXT    NOT NULL,             -- natural-key namespace, e.g. price-api, csv:traditional-markets
    kind           TEXT    NOT NULL,             -- items | markets
    status         TEXT    NOT NULL,
    started_at     INTEGER NOT NULL,
    finished_at    INTEGER,
    calls          INTEGER NOT NULL DEFAULT 0,   -- HTTP requests, retries included (the quota counts them)
    pages          INTEGER NOT NULL DEFAULT 0,   -- pages (or whole lists, or files) received
    rows_fetched   INTEGER NOT NULL DEFAULT 0,   -- rows received, rejected and duplicates included
    inserted       INTEGER NOT NULL DEFAULT 0,
    updated        INTEGER NOT NULL DEFAULT 0,
    unchanged      INTEGER NOT NULL DEFAULT 0,
    deactivated    INTEGER NOT NULL DEFAULT 0,
    rejected       INTEGER NOT NULL DEFAULT 0,   -- rows that failed validation
    duplicates     INTEGER NOT NULL DEFAULT 0,   -- rows dropped because their id came earlier in the run
    no_coordinates INTEGER NOT NULL DEFAULT 0,   -- markets kept without usable coordinates
    error          TEXT,
    failed_pages   TEXT
);
CREATE INDEX ingest_runs_source ON ingest_runs (source, kind, id);
