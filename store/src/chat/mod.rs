//! Party chat: messages in one gap-free sequence per party, read cursors and reports.
//!
//! - **One order.** A party's `seq` counter is a row of `chat_rooms`. Storing a message bumps it
//!   in the insert's own transaction; on PostgreSQL the bump locks the row until commit, and on
//!   SQLite writers take turns, so concurrent senders on any number of instances never share a
//!   seq, and a rolled-back send gives its number back (no gap). A message with seq N therefore
//!   commits only after every message below N has: a reader that sees N in SQL sees all below it.
//! - **Idempotent sends.** A user message is unique per (party, sender, `client_msg_id`). Its
//!   insert runs after the counter's lock is held, so a concurrent resend waits for the first and
//!   then conflicts with it: the resend stores nothing and answers with the original.
//! - **System messages** (member joined, meet moved, …) share the sequence; each is keyed by the
//!   outbox event that caused it, so a consumer that runs a batch again writes nothing twice.

pub mod away;
mod moderation;

pub use moderation::{delete, report, reports, Deletion, Report, Reported, ReportedMessage};

use sqlx::{AnyConnection, FromRow};

use crate::db::{Db, Dialect, Tx};
use crate::error::Result;
use crate::lifecycle::{BookingStatus, PartyStatus};

/// Longest message text, in characters.
pub const MAX_TEXT_CHARS: usize = 2_000;
/// Longest `client_msg_id`, in characters.
pub const MAX_CLIENT_MSG_ID_CHARS: usize = 64;

/// Whether a message comes from a member or from the party itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    User,
    System,
}

impl TryFrom<String> for MessageKind {
    type Error = String;

    fn try_from(value: String) -> std::result::Result<Self, String> {
        match value.as_str() {
            "user" => Ok(MessageKind::User),
            "system" => Ok(MessageKind::System),
            _ => Err(format!("unknown chat message kind `{value}`")),
        }
    }
}

/// One stored message.
#[derive(Clone, Debug, PartialEq, Eq, FromRow, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub id: i64,
    pub party_id: i64,
    pub seq: i64,
    #[sqlx(try_from = "String")]
    pub kind: MessageKind,
    pub sender_id: Option<i64>,
    pub client_msg_id: Option<String>,
    /// Empty once deleted.
    pub text: String,
    /// For system messages: what happened (`member_joined`, `member_left`, `meet_changed`, `full`,
    /// `cancelled`, `closed`).
    pub event: Option<String>,
    /// For system messages: the member the event concerns.
    pub subject_id: Option<i64>,
    pub sent_at: i64,
    pub deleted_at: Option<i64>,
    /// Who deleted it: the sender or the leader.
    #[serde(default)]
    pub deleted_by: Option<i64>,
}

pub(crate) const COLUMNS: &str =
    "id, party_id, seq, kind, sender_id, client_msg_id, text, event, subject_id, sent_at, deleted_at, \
     deleted_by";

/// What a user may do in a party's chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The leader or a current member.
    Member,
    /// Was a member and left.
    Left,
    /// Never booked this party.
    Stranger,
    /// The party was cancelled: the room is closed to live talk.
    Cancelled,
    NoParty,
}

/// Decides whether `user_id` may talk in `party_id`'s chat.
pub async fn access(db: &Db, party_id: i64, user_id: i64) -> Result<Access> {
    let mut conn = db.pool().acquire().await?;
    access_on(&mut conn, party_id, user_id).await
}

async fn access_on(conn: &mut AnyConnection, party_id: i64, user_id: i64) -> Result<Access> {
    // One round trip: the party, and the user's latest booking (a member may leave and join
    // again, so the latest says where they stand).
    let row: Option<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT p.leader_id, p.status, \
           (SELECT b.status FROM bookings b WHERE b.party_id = p.id AND b.user_id = $2 \
            ORDER BY b.id DESC LIMIT 1) \
         FROM parties p WHERE p.id = $1",
    )
    .bind(party_id)
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((leader_id, status, booking)) = row else {
        return Ok(Access::NoParty);
    };
    if status == PartyStatus::Cancelled.to_string() {
        return Ok(Access::Cancelled);
    }
    if leader_id == user_id {
        return Ok(Access::Member);
    }
    Ok(match booking {
        None => Access::Stranger,
        Some(s) if s == BookingStatus::Left.to_string() => Access::Left,
        Some(_) => Access::Member,
    })
}

/// The outcome of a send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Stored now.
    New(Message),
    /// The same `client_msg_id` was sent before: nothing stored, here is the original.
    Repeat(Message),
    /// The sender may not talk in the room (any more): nothing stored.
    Refused(Access),
}

/// Stores a member's message (the caller checked the text) and moves the sender's read cursor to
/// it: one's own message is never unread. Membership is checked in the same transaction, so a
/// member who left since their socket opened stores nothing.
pub async fn send(
    db: &Db,
    party_id: i64,
    sender_id: i64,
    client_msg_id: &str,
    text: &str,
    now: i64,
) -> Result<Sent> {
    let mut tx = db.begin().await?;
    match access_on(tx.conn(), party_id, sender_id).await? {
        Access::Member => {}
        refused => return Ok(Sent::Refused(refused)),
    }
    let stored = store_user_message(&mut tx, party_id, sender_id, client_msg_id, text, now).await?;
    let Some(message) = stored else {
        // Rolling back gives the bumped seq back; the original answers the resend.
        tx.rollback().await?;
        let original: Message = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM chat_messages \
             WHERE party_id = $1 AND sender_id = $2 AND client_msg_id = $3"
        )))
        .bind(party_id)
        .bind(sender_id)
        .bind(client_msg_id)
        .fetch_one(db.pool())
        .await?;
        return Ok(Sent::Repeat(original));
    };
    tx.commit().await?;
    Ok(Sent::New(message))
}

/// Takes the next seq, inserts the message and moves the sender's cursor to it; `None` (with the
/// counter bumped: the caller rolls back) when the sender sent this `client_msg_id` before.
///
/// A resend conflicts with the earlier copy and inserts nothing. Under the counter's lock a
/// concurrent send of the same id has committed or rolled back already, and a unique index is
/// checked against committed rows whatever the statement's snapshot, so the conflict is decided
/// right. On PostgreSQL the three writes are one statement, so the counter's lock is held for that
/// statement and the commit only, not for three round trips.
async fn store_user_message(
    tx: &mut Tx,
    party_id: i64,
    sender_id: i64,
    client_msg_id: &str,
    text: &str,
    now: i64,
) -> Result<Option<Message>> {
    if tx.dialect() == Dialect::Postgres {
        return Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH room AS ( \
               INSERT INTO chat_rooms (party_id, last_seq, last_user_at) VALUES ($1, 1, $5) \
               ON CONFLICT (party_id) DO UPDATE SET last_seq = chat_rooms.last_seq + 1, \
                 last_user_at = GREATEST(excluded.last_user_at, chat_rooms.last_user_at) \
               RETURNING last_seq), \
             m AS ( \
               INSERT INTO chat_messages \
               (party_id, seq, kind, sender_id, client_msg_id, text, sent_at) \
               SELECT $1, room.last_seq, 'user', $2, $3, $4, $5 FROM room \
               ON CONFLICT (party_id, sender_id, client_msg_id) DO NOTHING RETURNING {COLUMNS}), \
             cursor AS ( \
               INSERT INTO chat_reads (party_id, user_id, seq, updated_at) \
               SELECT party_id, sender_id, seq, sent_at FROM m \
               ON CONFLICT (party_id, user_id) DO UPDATE SET \
                 seq = GREATEST(excluded.seq, chat_reads.seq), updated_at = excluded.updated_at) \
             SELECT {COLUMNS} FROM m"
        )))
        .bind(party_id)
        .bind(sender_id)
        .bind(client_msg_id)
        .bind(text)
        .bind(now)
        .fetch_optional(tx.conn())
        .await?);
    }
    let seq = next_seq(tx.conn(), party_id, Some(now)).await?;
    let stored: Option<Message> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO chat_messages \
         (party_id, seq, kind, sender_id, client_msg_id, text, sent_at) \
         VALUES ($1, $2, 'user', $3, $4, $5, $6) \
         ON CONFLICT (party_id, sender_id, client_msg_id) DO NOTHING RETURNING {COLUMNS}"
    )))
    .bind(party_id)
    .bind(seq)
    .bind(sender_id)
    .bind(client_msg_id)
    .bind(text)
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    if stored.is_some() {
        move_cursor(tx.conn(), party_id, sender_id, seq, now).await?;
    }
    Ok(stored)
}

/// A system message for one outbox event.
pub struct SystemMessage<'a> {
    pub party_id: i64,
    pub event: &'a str,
    pub subject_id: Option<i64>,
    pub text: &'a str,
    pub event_id: i64,
}

/// Writes a system message inside the caller's transaction (the chat consumer's batch). Returns
/// `None` when this event's message already exists.
pub async fn write_system(
    tx: &mut Tx,
    msg: SystemMessage<'_>,
    now: i64,
) -> Result<Option<Message>> {
    let seen: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM chat_messages WHERE event_id = $1 AND party_id = $2")
            .bind(msg.event_id)
            .bind(msg.party_id)
            .fetch_optional(tx.conn())
            .await?;
    if seen.is_some() {
        return Ok(None);
    }
    let seq = next_seq(tx.conn(), msg.party_id, None).await?;
    let message = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO chat_messages \
         (party_id, seq, kind, text, event, subject_id, event_id, sent_at) \
         VALUES ($1, $2, 'system', $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    )))
    .bind(msg.party_id)
    .bind(seq)
    .bind(msg.text)
    .bind(msg.event)
    .bind(msg.subject_id)
    .bind(msg.event_id)
    .bind(now)
    .fetch_one(tx.conn())
    .await?;
    Ok(Some(message))
}

/// Takes the party's next seq, locking its counter until the transaction ends. A member's message
/// (`user_at`: when it was sent) also marks the room active for the away sweep.
async fn next_seq(conn: &mut AnyConnection, party_id: i64, user_at: Option<i64>) -> Result<i64> {
    let (seq,): (i64,) = sqlx::query_as(
        "INSERT INTO chat_rooms (party_id, last_seq, last_user_at) VALUES ($1, 1, $2) \
         ON CONFLICT (party_id) DO UPDATE SET last_seq = chat_rooms.last_seq + 1, \
           last_user_at = CASE WHEN excluded.last_user_at > chat_rooms.last_user_at \
             THEN excluded.last_user_at ELSE chat_rooms.last_user_at END \
         RETURNING last_seq",
    )
    .bind(party_id)
    .bind(user_at.unwrap_or(0))
    .fetch_one(conn)
    .await?;
    Ok(seq)
}

/// The party's latest seq (0 before the first message).
pub async fn latest_seq(db: &Db, party_id: i64) -> Result<i64> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT last_seq FROM chat_rooms WHERE party_id = $1")
        .bind(party_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map_or(0, |(s,)| s))
}

/// Up to `limit` messages after `after_seq`, oldest first (catch-up).
pub async fn after(db: &Db, party_id: i64, after_seq: i64, limit: i64) -> Result<Vec<Message>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM chat_messages WHERE party_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    )))
    .bind(party_id)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Up to `limit` messages before `before_seq` (all when `None`), newest first (history).
pub async fn before(
    db: &Db,
    party_id: i64,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<Message>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM chat_messages WHERE party_id = $1 AND seq < $2 \
         ORDER BY seq DESC LIMIT $3"
    )))
    .bind(party_id)
    .bind(before_seq.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

async fn move_cursor(
    conn: &mut AnyConnection,
    party_id: i64,
    user_id: i64,
    seq: i64,
    now: i64,
) -> Result<i64> {
    let (seq,): (i64,) = sqlx::query_as(
        "INSERT INTO chat_reads (party_id, user_id, seq, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (party_id, user_id) DO UPDATE SET \
           seq = CASE WHEN excluded.seq > chat_reads.seq THEN excluded.seq ELSE chat_reads.seq END, \
           updated_at = $4 \
         RETURNING seq",
    )
    .bind(party_id)
    .bind(user_id)
    .bind(seq)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(seq)
}

/// Moves `user_id`'s read cursor forward to `seq` (never back, never past the latest message) and
/// returns where it is.
pub async fn mark_read(db: &Db, party_id: i64, user_id: i64, seq: i64, now: i64) -> Result<i64> {
    let mut tx = db.begin().await?;
    let (latest,): (i64,) =
        sqlx::query_as("SELECT COALESCE((SELECT last_seq FROM chat_rooms WHERE party_id = $1), 0)")
            .bind(party_id)
            .fetch_one(tx.conn())
            .await?;
    let at = move_cursor(tx.conn(), party_id, user_id, seq.clamp(0, latest), now).await?;
    tx.commit().await?;
    Ok(at)
}

/// One of a user's chat rooms.
#[derive(Clone, Debug, FromRow, PartialEq)]
pub struct Room {
    pub party_id: i64,
    pub title: String,
    pub read_seq: i64,
    pub unread: i64,
    pub last_seq: i64,
}

/// The rooms of the parties `user_id` leads or is a member of, the most recently active first,
/// with their unread counts (messages after the cursor that others sent).
pub async fn rooms_of(db: &Db, user_id: i64, limit: i64) -> Result<Vec<(Room, Option<Message>)>> {
    let rooms: Vec<Room> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT p.id AS party_id, p.title, COALESCE(r.seq, 0) AS read_seq, \
           (SELECT COUNT(*) FROM chat_messages m WHERE m.party_id = p.id \
              AND m.seq > COALESCE(r.seq, 0) AND (m.sender_id IS NULL OR m.sender_id <> $1)) AS unread, \
           COALESCE(c.last_seq, 0) AS last_seq \
         FROM parties p \
         LEFT JOIN chat_reads r ON r.party_id = p.id AND r.user_id = $1 \
         LEFT JOIN chat_rooms c ON c.party_id = p.id \
         WHERE p.leader_id = $1 OR EXISTS (SELECT 1 FROM bookings b WHERE b.party_id = p.id \
           AND b.user_id = $1 AND b.status <> '{left}') \
         ORDER BY COALESCE((SELECT MAX(m.sent_at) FROM chat_messages m WHERE m.party_id = p.id), \
           p.created_at) DESC, p.id DESC LIMIT $2",
        left = BookingStatus::Left
    )))
    .bind(user_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rooms.len());
    for room in rooms {
        let last: Option<Message> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM chat_messages WHERE party_id = $1 AND seq = $2"
        )))
        .bind(room.party_id)
        .bind(room.last_seq)
        .fetch_optional(db.pool())
        .await?;
        out.push((room, last));
    }
    Ok(out)
}
