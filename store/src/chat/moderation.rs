//! Moderation: deleting a message (its sender, or the party's leader) and reporting one (any
//! member, once per message).
//!
//! A deleted message stays in the sequence as a tombstone (text emptied, `deleted_at` and
//! `deleted_by` set): seqs stay gap-free, so sockets and cursors never meet a hole. Deleting is
//! idempotent: deleting a tombstone again changes nothing and answers with it. Reports are rows of
//! `chat_reports` for operators, unique per (message, reporter).

use sqlx::FromRow;

use super::{Message, MessageKind, COLUMNS};
use crate::db::Db;
use crate::error::Result;

/// The outcome of a deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// The message is a tombstone now (or was already).
    Deleted(Message),
    /// No message with this seq in the party.
    NoMessage,
    /// The user is neither the sender nor the party's leader.
    NotYours,
    /// System messages record what happened to the party; nobody deletes them.
    System,
}

/// Finds message `seq` of `party_id`.
async fn find(conn: &mut sqlx::AnyConnection, party_id: i64, seq: i64) -> Result<Option<Message>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM chat_messages WHERE party_id = $1 AND seq = $2"
    )))
    .bind(party_id)
    .bind(seq)
    .fetch_optional(conn)
    .await?)
}

/// Deletes message `seq` of `party_id` on behalf of `user_id` (the caller checked that the user is
/// in the party).
pub async fn delete(db: &Db, party_id: i64, seq: i64, user_id: i64, now: i64) -> Result<Deletion> {
    let mut tx = db.begin().await?;
    let Some(message) = find(tx.conn(), party_id, seq).await? else {
        return Ok(Deletion::NoMessage);
    };
    if message.kind == MessageKind::System {
        return Ok(Deletion::System);
    }
    if message.sender_id != Some(user_id) {
        let (leader_id,): (i64,) = sqlx::query_as("SELECT leader_id FROM parties WHERE id = $1")
            .bind(party_id)
            .fetch_one(tx.conn())
            .await?;
        if leader_id != user_id {
            return Ok(Deletion::NotYours);
        }
    }
    // One statement, and the first deletion's time and author are kept: two concurrent deletions
    // both end with the same tombstone.
    let tombstone: Message = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE chat_messages SET text = '', deleted_at = COALESCE(deleted_at, $2), \
           deleted_by = COALESCE(deleted_by, $3) \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(message.id)
    .bind(now)
    .bind(user_id)
    .fetch_one(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(Deletion::Deleted(tombstone))
}

/// A member's report of a message, kept for operators.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct Report {
    pub id: i64,
    pub message_id: i64,
    pub reporter_id: i64,
    pub reason: String,
    pub created_at: i64,
}

/// The outcome of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reported {
    New(Report),
    /// This member reported this message before; nothing new is stored.
    Again,
    NoMessage,
    System,
}

/// Stores `reporter_id`'s report of message `seq` of `party_id` (the caller checked that the
/// reporter is in the party and the reason).
pub async fn report(
    db: &Db,
    party_id: i64,
    seq: i64,
    reporter_id: i64,
    reason: &str,
    now: i64,
) -> Result<Reported> {
    let mut tx = db.begin().await?;
    let Some(message) = find(tx.conn(), party_id, seq).await? else {
        return Ok(Reported::NoMessage);
    };
    if message.kind == MessageKind::System {
        return Ok(Reported::System);
    }
    // The unique index decides between concurrent duplicates; the loser inserts nothing.
    let row: Option<Report> = sqlx::query_as(
        "INSERT INTO chat_reports (message_id, reporter_id, reason, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (message_id, reporter_id) DO NOTHING \
         RETURNING id, message_id, reporter_id, reason, created_at",
    )
    .bind(message.id)
    .bind(reporter_id)
    .bind(reason)
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(match row {
        Some(report) => Reported::New(report),
        None => Reported::Again,
    })
}

/// A report with the message it is about, for operators.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct ReportedMessage {
    /// The report's id.
    pub id: i64,
    pub party_id: i64,
    pub seq: i64,
    pub sender_id: Option<i64>,
    /// Empty once the message was deleted.
    pub text: String,
    pub deleted_at: Option<i64>,
    pub reporter_id: i64,
    pub reason: String,
    pub created_at: i64,
}

/// Reports, newest first: at most `limit` with an id below `before` (from the newest when `None`).
pub async fn reports(db: &Db, before: Option<i64>, limit: i64) -> Result<Vec<ReportedMessage>> {
    Ok(sqlx::query_as(
        "SELECT r.id, m.party_id, m.seq, m.sender_id, m.text, m.deleted_at, r.reporter_id, \
           r.reason, r.created_at \
         FROM chat_reports r JOIN chat_messages m ON m.id = r.message_id \
         WHERE r.id < $1 ORDER BY r.id DESC LIMIT $2",
    )
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}
