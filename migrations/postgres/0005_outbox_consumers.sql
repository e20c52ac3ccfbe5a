-- Durable outbox consumers (postgres dialect). Keep in step with ../sqlite/0005_outbox_consumers.sql.
-- PostgreSQL takes outbox ids at insert but commits transactions in another order, so "every id
-- after my position" would skip a row that commits late with a smaller id. Each row records the
-- id of the transaction that wrote it; a consumer reads only rows of transactions older than every
-- transaction still running (the snapshot's xmin), in (tx, id) order, so nothing can appear behind
-- its position afterwards.
ALTER TABLE outbox ADD COLUMN tx BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX outbox_tx ON outbox (tx, id);

-- Each consumer's position: the last (tx, id) it processed.
CREATE TABLE outbox_consumers (
    name       TEXT PRIMARY KEY,
    last_tx    BIGINT NOT NULL,
    last_id    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
