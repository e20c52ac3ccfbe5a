-- Durable outbox consumers (sqlite dialect). Keep in step with ../postgres/0005_outbox_consumers.sql.
-- SQLite has one writer at a time, so ids are taken in commit order and `tx` stays 0: a consumer's
-- position is the last id it processed.
ALTER TABLE outbox ADD COLUMN tx BIGINT NOT NULL DEFAULT 0;
CREATE INDEX outbox_tx ON outbox (tx, id);

-- Each consumer's position: the last (tx, id) it processed.
CREATE TABLE outbox_consumers (
    name       TEXT PRIMARY KEY,
    last_tx    BIGINT NOT NULL,
    last_id    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
