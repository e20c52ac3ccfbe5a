-- Waiting rooms in front of hot parties (PostgreSQL dialect). Keep in step with
-- ../sqlite/0003_waiting_rooms.sql: a test checks that both dialects have the same tables and columns.
-- The queue itself (who waits, in which order, who holds a pass) is live state (in-process or
-- Redis); this row is the room's durable switch and its counters, shared by every instance.

-- state: open (admitting) | paused (entering allowed, nobody admitted) | closed (party full,
-- cancelled or met: everyone waiting was told). No row means the room is off.
CREATE TABLE waiting_rooms (
    party_id        BIGINT PRIMARY KEY REFERENCES parties (id),
    state           TEXT    NOT NULL,
    rate_per_min    BIGINT  NOT NULL,             -- admissions per minute the admitter allows
    auto_opened     BIGINT  NOT NULL DEFAULT 0,   -- 1 when a burst of join attempts opened it
    admitted_total  BIGINT  NOT NULL DEFAULT 0,   -- passes issued so far
    dropped_total   BIGINT  NOT NULL DEFAULT 0,   -- abandoned entries dropped at their turn
    expired_total   BIGINT  NOT NULL DEFAULT 0,   -- passes that expired unused
    close_reason    TEXT,                         -- full | cancelled | closed | met
    opened_at       BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX waiting_rooms_state ON waiting_rooms (state);
