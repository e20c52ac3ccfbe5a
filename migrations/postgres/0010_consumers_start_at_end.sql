-- New durable consumers start at the end of the outbox (postgres dialect). Keep in step with
-- ../sqlite/0010_consumers_start_at_end.sql.
--
-- A consumer without a position starts at the oldest event kept (a week of them). For the
-- `notifications` and `chat` consumers that would tell users of week-old parties and write old
-- system messages when a deployment that predates them upgrades. Their position is set here to the
-- last event every transaction has finished writing (the same bound a consumer reads up to), so they
-- act on what happens from the upgrade on. A consumer that already has a position keeps it.
-- A consumer added later comes with a migration like this one.
INSERT INTO outbox_consumers (name, last_tx, last_id, updated_at)
SELECT c.name, COALESCE(e.tx, 0), COALESCE(e.id, 0), (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT
FROM (VALUES ('notifications'), ('chat')) AS c (name)
LEFT JOIN (
    SELECT tx, id FROM outbox
    WHERE tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
    ORDER BY tx DESC, id DESC LIMIT 1
) AS e ON TRUE
ON CONFLICT (name) DO NOTHING;
