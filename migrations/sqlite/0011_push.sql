-- Notification preferences, Web Push subscriptions and the pushes waiting to become jobs (sqlite
-- dialect). Keep in step with ../postgres/0011_push.sql.

-- A user's choices (no row: everything is pushed, no quiet hours). `muted_kinds` lists the kinds
-- never pushed, comma-separated (they still reach the inbox and the stream). Quiet hours are
-- minutes after midnight in Asia/Seoul time, `quiet_start` inclusive and `quiet_end` exclusive;
-- a start after the end wraps midnight (23:00-08:00). Both NULL: no quiet hours.
CREATE TABLE notification_preferences (
    user_id     INTEGER PRIMARY KEY REFERENCES users (id),
    muted_kinds TEXT    NOT NULL,
    quiet_start INTEGER,
    quiet_end   INTEGER,
    updated_at  INTEGER NOT NULL
);

-- A browser's push subscription (RFC 8030 endpoint, RFC 8291 keys). One row per endpoint: a
-- browser that subscribes again (or for another user after a new login) updates it.
CREATE TABLE push_subscriptions (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    endpoint   TEXT    NOT NULL,
    p256dh     TEXT    NOT NULL,
    auth       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX push_subscriptions_endpoint ON push_subscriptions (endpoint);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);

-- A notification to push to one subscription, written in the transaction that writes the
-- notification; the jobs sweeper turns each into a push job and deletes it.
CREATE TABLE push_deliveries (
    id              INTEGER PRIMARY KEY,
    subscription_id INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);

-- Pruning the inbox by age.
CREATE INDEX notifications_created ON notifications (created_at);
