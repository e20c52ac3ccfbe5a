-- Party chat, room activity (postgres dialect). Keep in step with ../sqlite/0013_chat_room_activity.sql.
-- When a room last had a member's message (0: never). The send that bumps the room's counter sets
-- it, so the away-notification sweep finds the rooms with recent messages from this one row per
-- room, in party order and a page at a time, instead of going over the messages themselves.
ALTER TABLE chat_rooms ADD COLUMN last_user_at BIGINT NOT NULL DEFAULT 0;
UPDATE chat_rooms SET last_user_at = COALESCE(
    (SELECT MAX(m.sent_at) FROM chat_messages m WHERE m.party_id = chat_rooms.party_id AND m.kind = 'user'),
    0);
CREATE INDEX chat_rooms_last_user_at ON chat_rooms (last_user_at);
-- The sweep no longer reads messages by time: the index only cost every send a write.
DROP INDEX chat_messages_sent_at;
