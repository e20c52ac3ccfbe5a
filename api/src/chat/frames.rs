//! The chat's WebSocket frames (text frames of JSON with a `type`; see `docs/chat.md`), and the
//! notes that travel between instances on the party's bus topic.

use serde::{Deserialize, Serialize};
use store::chat::{Message, MessageKind, MAX_CLIENT_MSG_ID_CHARS, MAX_TEXT_CHARS};
use utoipa::ToSchema;

use crate::time::Timestamp;

/// A frame from the client.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Send a message. The server answers with the stored `message` (its acknowledgement); sending
    /// the same `client_msg_id` again stores nothing and answers with the original.
    Send {
        /// The client's own id for the message, 1 to 64 characters, unique per sender and party.
        client_msg_id: String,
        /// 1 to 2,000 characters.
        text: String,
    },
    /// Everything up to `seq` has been read (the cursor only moves forward).
    Read { seq: i64 },
    /// The user is typing (throttled by the server).
    Typing,
}

/// How long a client shows a typing notice, and how old a notice may be to be passed on.
pub const TYPING_SHOWN_MS: i64 = 5_000;

/// The frame types a client may send.
pub const CLIENT_TYPES: [&str; 3] = ["send", "read", "typing"];

/// A message as sockets and the history endpoint show it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub seq: i64,
    /// `user` or `system`.
    #[schema(value_type = String, example = "user")]
    pub kind: MessageKind,
    /// The member who sent it (none for system messages).
    pub sender_id: Option<i64>,
    /// Empty once deleted.
    pub text: String,
    pub client_msg_id: Option<String>,
    pub sent_at: Timestamp,
    /// A tombstone: the message was deleted and keeps its place in the sequence.
    pub deleted: bool,
    /// System messages: `member_joined`, `member_left`, `meet_changed`, `full`, `cancelled`,
    /// `closed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// System messages: the member the event concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        MessageView {
            seq: m.seq,
            kind: m.kind,
            sender_id: m.sender_id,
            text: m.text.clone(),
            client_msg_id: m.client_msg_id.clone(),
            sent_at: Timestamp(m.sent_at),
            deleted: m.deleted_at.is_some(),
            event: m.event.clone(),
            user_id: m.subject_id,
        }
    }
}

/// A frame from the server.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A message, in `seq` order with no gap and no duplicate (except the answer to a resend).
    Message(MessageView),
    /// More messages were missed than the server replays: page the history
    /// (`GET …/chat/messages`) and carry on from `latest_seq`.
    Reset { latest_seq: i64 },
    /// A frame was refused; the socket stays open.
    Error { code: String, message: String },
    /// A member is typing: show it for `TYPING_SHOWN_MS` (5 s) unless another comes.
    Typing { user_id: i64 },
    /// The members with an open socket in the room (on any instance), ascending: sent once
    /// connected and whenever it changes.
    Presence { online: Vec<i64> },
    /// Message `seq`, already sent on this socket, was deleted: show it as a tombstone. (A
    /// message not sent yet arrives as a tombstone itself, `deleted: true`.)
    Deleted { seq: i64, deleted_by: i64 },
}

impl ServerFrame {
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn to_text(&self) -> String {
        // Serialising these plain structs cannot fail; an empty frame would be noticed by clients.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What instances tell each other on `chat.{party}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum Note {
    /// A message committed in SQL.
    Message(Message),
    Typing {
        user_id: i64,
        /// When the member typed (the sender's clock): a notice older than `TYPING_SHOWN_MS` is
        /// stale and dropped.
        at: i64,
    },
    /// Someone connected or disconnected: read the room's presence again.
    Presence,
    /// Message `seq` became a tombstone in SQL.
    Deleted { seq: i64, by: i64 },
}

/// Why a client frame was refused: the `error` frame's code and message.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// Reads one client text frame.
pub fn parse(text: &str) -> Result<ClientFrame, Refusal> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| refuse("malformed_frame", "a frame must be one JSON object"))?;
    let Some(kind) = value.get("type").and_then(|t| t.as_str()) else {
        return Err(refuse(
            "malformed_frame",
            "a frame must be a JSON object with a string `type`",
        ));
    };
    if !CLIENT_TYPES.contains(&kind) {
        return Err(refuse(
            "unknown_type",
            format!(
                "unknown frame type `{}`; expected send, read or typing",
                kind.chars().take(32).collect::<String>()
            ),
        ));
    }
    serde_json::from_value(value).map_err(|e| refuse("invalid_frame", e.to_string()))
}

/// A message to store, checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub client_msg_id: String,
    pub text: String,
}

fn has_control(s: &str, allow_newlines: bool) -> bool {
    s.chars()
        .any(|c| c.is_control() && !(allow_newlines && (c == '\n' || c == '\t')))
}

impl Outgoing {
    /// Checks a `send` frame's fields: lengths, and no control characters (newlines and tabs are
    /// allowed in the text).
    pub fn parse(client_msg_id: String, text: String) -> Result<Self, Refusal> {
        let id_len = client_msg_id.chars().count();
        if id_len == 0 || id_len > MAX_CLIENT_MSG_ID_CHARS || has_control(&client_msg_id, false) {
            return Err(refuse(
                "invalid_client_msg_id",
                format!(
                    "client_msg_id must be 1 to {MAX_CLIENT_MSG_ID_CHARS} printable characters"
                ),
            ));
        }
        let len = text.chars().count();
        if len > MAX_TEXT_CHARS {
            return Err(refuse(
                "text_too_long",
                format!("text is {len} characters; at most {MAX_TEXT_CHARS}"),
            ));
        }
        if text.trim().is_empty() {
            return Err(refuse("empty_text", "text must not be blank"));
        }
        if has_control(&text, true) {
            return Err(refuse(
                "invalid_text",
                "text must not hold control characters",
            ));
        }
        Ok(Outgoing {
            client_msg_id,
            text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_by_type_and_refused_with_a_code() {
        assert!(matches!(
            parse(r#"{"type":"send","client_msg_id":"a","text":"hi"}"#),
            Ok(ClientFrame::Send { .. })
        ));
        assert!(matches!(
            parse(r#"{"type":"read","seq":3}"#),
            Ok(ClientFrame::Read { seq: 3 })
        ));
        assert!(matches!(
            parse(r#"{"type":"typing"}"#),
            Ok(ClientFrame::Typing)
        ));
        assert_eq!(parse("{nope").unwrap_err().code, "malformed_frame");
        assert_eq!(parse("[1]").unwrap_err().code, "malformed_frame");
        assert_eq!(
            parse(r#"{"type":"shout"}"#).unwrap_err().code,
            "unknown_type"
        );
        assert_eq!(
            parse(r#"{"type":"read"}"#).unwrap_err().code,
            "invalid_frame"
        );
        assert_eq!(
            parse(r#"{"type":"read","seq":1,"extra":1}"#)
                .unwrap_err()
                .code,
            "invalid_frame"
        );
    }

    #[test]
    fn outgoing_text_is_bounded_and_printable() {
        let ok = Outgoing::parse("id".into(), "a\nb".into()).unwrap();
        assert_eq!(ok.text, "a\nb");
        let longest = "가".repeat(MAX_TEXT_CHARS);
        assert!(Outgoing::parse("id".into(), longest.clone()).is_ok());
        let err = Outgoing::parse("id".into(), format!("{longest}a")).unwrap_err();
        assert_eq!(err.code, "text_too_long");
        assert_eq!(
            Outgoing::parse("id".into(), "  ".into()).unwrap_err().code,
            "empty_text"
        );
        assert_eq!(
            Outgoing::parse("id".into(), "a\u{0}".into())
                .unwrap_err()
                .code,
            "invalid_text"
        );
        assert_eq!(
            Outgoing::parse("".into(), "a".into()).unwrap_err().code,
            "invalid_client_msg_id"
        );
        assert_eq!(
            Outgoing::parse("x".repeat(65), "a".into())
                .unwrap_err()
                .code,
            "invalid_client_msg_id"
        );
    }
}
