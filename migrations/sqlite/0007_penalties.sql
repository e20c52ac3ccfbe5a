-- Penalties for not coming to a party's meet (sqlite dialect). Keep in step with
-- ../postgres/0007_penalties.sql.
-- One row per (party, user) however often the leader marks or a job retries: a leader changing a
-- no-show back to attended sets `revoked_at`; marking it again clears it. An operator's revocation
-- is final (`revoked_by` set).
CREATE TABLE penalties (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    party_id   INTEGER NOT NULL REFERENCES parties (id),
    reason     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    revoked_by INTEGER REFERENCES users (id)
);
CREATE UNIQUE INDEX penalties_one_per_party ON penalties (party_id, user_id);
CREATE INDEX penalties_user ON penalties (user_id, created_at);

-- When the leader marked the booking attended or no_show.
ALTER TABLE bookings ADD COLUMN marked_at INTEGER;
