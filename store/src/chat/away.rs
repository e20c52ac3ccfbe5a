//! Members away from a room: who has unread messages from others that no "new messages"
//! notification has told them of yet.
//!
//! A message is new to a member when it was sent after their last chat notification for the room;
//! a member is due a notification when some message is new to them and their last one for the
//! room is older than the quiet period. The caller leaves out members with an open socket and
//! writes the notification with a dedupe key naming the first new message, so two instances (or a
//! retried sweep) looking at the same room write it once.

use sqlx::FromRow;

use crate::db::Db;
use crate::error::Result;
use crate::lifecycle::{BookingStatus, PartyStatus};
use crate::notifications::kind;

/// A member to tell of new messages in a room.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct Unseen {
    pub party_id: i64,
    pub user_id: i64,
    pub title: String,
    /// The oldest message new to the member (names the notification).
    pub first_seq: i64,
}

/// Members due a notification at `now`: messages from others after their read cursor, sent after
/// `since` (how far back to look) and after their last chat notification for the room, which is
/// older than `quiet_since`. Cancelled parties and members who left are skipped; at most `limit`.
pub async fn due(db: &Db, since: i64, quiet_since: i64, limit: i64) -> Result<Vec<Unseen>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT m.party_id, u.user_id, p.title, MIN(m.seq) AS first_seq \
         FROM chat_messages m \
         JOIN parties p ON p.id = m.party_id \
         JOIN (SELECT party_id, user_id FROM bookings WHERE status <> '{left}' \
               UNION SELECT id AS party_id, leader_id AS user_id FROM parties) u \
           ON u.party_id = m.party_id \
         LEFT JOIN chat_reads r ON r.party_id = m.party_id AND r.user_id = u.user_id \
         WHERE m.sent_at > $1 AND m.kind = 'user' AND m.deleted_at IS NULL \
           AND m.sender_id <> u.user_id AND p.status <> '{cancelled}' \
           AND m.seq > COALESCE(r.seq, 0) \
           AND NOT EXISTS (SELECT 1 FROM notifications n \
             WHERE n.user_id = u.user_id AND n.party_id = m.party_id AND n.kind = '{chat}' \
               AND (n.created_at >= m.sent_at OR n.created_at > $2)) \
         GROUP BY m.party_id, u.user_id, p.title \
         ORDER BY m.party_id, u.user_id LIMIT $3",
        left = BookingStatus::Left,
        cancelled = PartyStatus::Cancelled,
        chat = kind::CHAT_MESSAGE,
    )))
    .bind(since)
    .bind(quiet_since)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}
