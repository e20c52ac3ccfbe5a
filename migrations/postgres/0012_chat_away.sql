-- Party chat, members away (postgres dialect). Keep in step with ../sqlite/0012_chat_away.sql.
-- The away-notification sweep looks at recent messages only: by time, across parties.
CREATE INDEX chat_messages_sent_at ON chat_messages (sent_at);
