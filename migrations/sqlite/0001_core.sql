-- gonggu core schema (SQLite dialect). Keep in step with ../postgres/0001_core.sql:
-- a test checks that both dialects have the same tables and columns.
-- Times are UTC unix milliseconds (INTEGER), money is integer KRW, ids are 64-bit integers.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,        -- normalised: trimmed, lower-cased
    password_hash TEXT    NOT NULL,               -- argon2id PHC string
    nickname      TEXT    NOT NULL,
    penalty_count INTEGER NOT NULL DEFAULT 0,
    banned_until  INTEGER,                        -- NULL when not banned
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Refresh tokens are opaque; only their SHA-256 is stored. A rotation marks the old token used and
-- issues a new one in the same family; presenting a used token revokes the whole family.
CREATE TABLE refresh_tokens (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    family_id  TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE markets (
    id           INTEGER PRIMARY KEY,
    source       TEXT    NOT NULL,
    source_id    TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    road_address TEXT,
    lat          REAL,                            -- NULL when the source had no usable coordinates
    lng          REAL,
    active       INTEGER NOT NULL DEFAULT 1,      -- 0 when the row vanished from its source
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (source, source_id)
);

CREATE TABLE items (
    id            INTEGER PRIMARY KEY,
    source        TEXT    NOT NULL,
    source_id     TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    category_code TEXT,
    unit          TEXT,
    base_count    REAL,
    total_count   REAL,
    total_unit    TEXT,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX items_category ON items (category_code, id);

-- status: recruiting -> full <-> recruiting -> closed -> completed, or cancelled.
-- `joined` counts the leader and equals the number of bookings with status 'joined'.
CREATE TABLE parties (
    id              INTEGER PRIMARY KEY,
    leader_id       INTEGER NOT NULL REFERENCES users (id),
    market_id       INTEGER NOT NULL REFERENCES markets (id),
    item_id         INTEGER NOT NULL REFERENCES items (id),
    title           TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    capacity        INTEGER NOT NULL CHECK (capacity BETWEEN 2 AND 50),
    joined          INTEGER NOT NULL CHECK (joined >= 0 AND joined <= capacity),
    price_per_share INTEGER,
    meet_at         INTEGER NOT NULL,
    deadline_at     INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    cancel_reason   TEXT,
    lat             REAL    NOT NULL,             -- copied from the market at creation
    lng             REAL    NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,   -- bumped on every change; events carry it
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX parties_market ON parties (market_id, id);
CREATE INDEX parties_item ON parties (item_id, id);
CREATE INDEX parties_status ON parties (status, id);
CREATE INDEX parties_leader ON parties (leader_id, id);

-- status: joined | left | attended | no_show. One active ('joined') booking per party and user.
CREATE TABLE bookings (
    id         INTEGER PRIMARY KEY,
    party_id   INTEGER NOT NULL REFERENCES parties (id),
    user_id    INTEGER NOT NULL REFERENCES users (id),
    status     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX bookings_one_active ON bookings (party_id, user_id) WHERE status = 'joined';
CREATE INDEX bookings_user ON bookings (user_id, party_id);

-- Idempotency-Key records, scoped to the user. `state` is 'pending' while the first request runs,
-- then 'done' with the stored response, which later requests with the same key and body replay.
CREATE TABLE idempotency_keys (
    user_id       INTEGER NOT NULL,
    idem_key      TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    status_code   INTEGER,
    content_type  TEXT,
    response_body TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Transactional outbox: a domain event is written in the same transaction as the change it
-- describes; the relay publishes unsent rows to the bus and then stamps `sent_at`.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    topic      TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at    INTEGER
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
