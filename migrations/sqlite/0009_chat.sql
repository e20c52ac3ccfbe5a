-- Party chat (sqlite dialect). Keep in step with ../postgres/0009_chat.sql.
-- One row per party that has a message: `last_seq` is the party's sequence counter. A sender bumps
-- it in the insert's transaction, which locks the row until commit, so two senders (on any
-- instance) never share a seq and a rolled-back send leaves no gap.
CREATE TABLE chat_rooms (
    party_id INTEGER PRIMARY KEY REFERENCES parties (id),
    last_seq INTEGER NOT NULL
);

-- Messages in the party's one order. `kind` is user or system; system messages have no sender,
-- name the event they come from (`event`, `subject_id`) and the outbox row that caused them
-- (`event_id`, unique: a consumer that runs a batch again writes nothing twice). A user message is
-- unique per (party, sender, client_msg_id), so a resend stores nothing. A deleted message stays as
-- a tombstone (`deleted_at`, text emptied) so the sequence keeps no hole.
CREATE TABLE chat_messages (
    id            INTEGER PRIMARY KEY,
    party_id      INTEGER NOT NULL REFERENCES parties (id),
    seq           INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    sender_id     INTEGER REFERENCES users (id),
    client_msg_id TEXT,
    text          TEXT    NOT NULL,
    event         TEXT,
    subject_id    INTEGER,
    event_id      INTEGER,
    sent_at       INTEGER NOT NULL,
    deleted_at    INTEGER,
    deleted_by    INTEGER REFERENCES users (id)
);
CREATE UNIQUE INDEX chat_messages_seq ON chat_messages (party_id, seq);
CREATE UNIQUE INDEX chat_messages_client_id ON chat_messages (party_id, sender_id, client_msg_id);
CREATE UNIQUE INDEX chat_messages_event ON chat_messages (event_id, party_id);

-- How far each member has read: moves forward only.
CREATE TABLE chat_reads (
    party_id   INTEGER NOT NULL REFERENCES parties (id),
    user_id    INTEGER NOT NULL REFERENCES users (id),
    seq        INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (party_id, user_id)
);

-- Messages reported by members, for operators; one report per message and reporter.
CREATE TABLE chat_reports (
    id          INTEGER PRIMARY KEY,
    message_id  INTEGER NOT NULL REFERENCES chat_messages (id),
    reporter_id INTEGER NOT NULL REFERENCES users (id),
    reason      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX chat_reports_once ON chat_reports (message_id, reporter_id);
