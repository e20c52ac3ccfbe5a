-- New durable consumers start at the end of the outbox (sqlite dialect). Keep in step with
-- ../postgres/0010_consumers_start_at_end.sql.
--
-- A consumer without a position starts at the oldest event kept (a week of them). For the
-- `notifications` and `chat` consumers that would tell users of week-old parties and write old
-- system messages when a deployment that predates them upgrades. Their position is set here to the
-- last event written (SQLite writers take turns, so every row is committed), so they act on what
-- happens from the upgrade on. A consumer that already has a position keeps it. A consumer added
-- later comes with a migration like this one.
INSERT INTO outbox_consumers (name, last_tx, last_id, updated_at)
SELECT c.name, 0, COALESCE((SELECT MAX(id) FROM outbox), 0),
       CAST(strftime('%s', 'now') AS INTEGER) * 1000
FROM (SELECT 'notifications' AS name UNION ALL SELECT 'chat') AS c
WHERE TRUE
ON CONFLICT (name) DO NOTHING;
