-- Wishlists and the notification inbox (sqlite dialect). Keep in step with
-- ../postgres/0008_notifications.sql.

-- What a user watches. `match_key` is how a new party finds it without scanning: `m:{market}`,
-- `i:{item}`, or for a keyword `k:` and its first two characters (lower-cased), the exact
-- substring test following in code. Areas have no key: they are found through `wishlist_cells`.
-- `area` is the shape as JSON (a circle or a GeoJSON polygon) for the exact test on edge cells.
CREATE TABLE wishlists (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    kind       TEXT    NOT NULL,
    market_id  INTEGER REFERENCES markets (id),
    item_id    INTEGER REFERENCES items (id),
    keyword    TEXT,
    area       TEXT,
    match_key  TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX wishlists_user ON wishlists (user_id, id);
CREATE INDEX wishlists_match_key ON wishlists (match_key);

-- The H3 cells (resolution 8) covering each area wishlist; `edge` cells are only partly inside,
-- so a party there is tested against the shape.
CREATE TABLE wishlist_cells (
    cell        INTEGER NOT NULL,
    wishlist_id INTEGER NOT NULL REFERENCES wishlists (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL,
    edge        INTEGER NOT NULL,
    PRIMARY KEY (cell, wishlist_id)
);
CREATE INDEX wishlist_cells_wishlist ON wishlist_cells (wishlist_id);

-- The inbox. `seq` counts each user's notifications from 1 without gaps (it is the SSE event id);
-- `dedupe` names the cause, so a replayed event or a retried job writes nothing twice.
CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    seq        INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    party_id   INTEGER,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    dedupe     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    read_at    INTEGER
);
CREATE UNIQUE INDEX notifications_user_seq ON notifications (user_id, seq);
CREATE UNIQUE INDEX notifications_user_dedupe ON notifications (user_id, dedupe);

-- Each user's last `seq`, bumped in the transaction that writes the notification.
CREATE TABLE notification_counters (
    user_id  INTEGER PRIMARY KEY REFERENCES users (id),
    last_seq INTEGER NOT NULL
);

-- Reminders sent before a party's meet, per meet time and lead (`24h`, `1h`): the sweeper looks
-- only for those not sent, and a moved meet time is a new reminder.
CREATE TABLE reminders_sent (
    party_id INTEGER NOT NULL REFERENCES parties (id),
    meet_at  INTEGER NOT NULL,
    lead     TEXT    NOT NULL,
    sent_at  INTEGER NOT NULL,
    PRIMARY KEY (party_id, meet_at, lead)
);
-- The sweeper's scan: live parties by meet time.
CREATE INDEX parties_live_meet ON parties (meet_at) WHERE status IN ('recruiting', 'full', 'closed');
