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
/// older than `quiet_since`. Cancelled parties and members who left are skipped. At most `limit`,
/// in (party, user) order after `after` (a page's last pair: the caller pages through them all).
///
/// The cost is per (room, member) of the rooms with recent messages: a member's cursor, their last
/// chat notification and their first new message are each one index probe, however many messages
/// they have not read (joining messages to members and testing each pair against the
/// notifications took 1.5 s on PostgreSQL with 500 busy rooms).
pub async fn due(
    db: &Db,
    since: i64,
    quiet_since: i64,
    after: (i64, i64),
    limit: i64,
) -> Result<Vec<Unseen>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH rooms AS ( \
           SELECT DISTINCT m.party_id FROM chat_messages m \
           JOIN parties p ON p.id = m.party_id \
           WHERE m.sent_at > $1 AND m.kind = 'user' AND p.status <> '{cancelled}'), \
         members AS ( \
           SELECT b.party_id, b.user_id FROM rooms r JOIN bookings b ON b.party_id = r.party_id \
           WHERE b.status <> '{left}' \
           UNION SELECT p.id AS party_id, p.leader_id AS user_id FROM rooms r \
           JOIN parties p ON p.id = r.party_id), \
         pairs AS ( \
           SELECT u.party_id, u.user_id, \
             COALESCE((SELECT c.seq FROM chat_reads c \
               WHERE c.party_id = u.party_id AND c.user_id = u.user_id), 0) AS read_seq, \
             COALESCE((SELECT MAX(n.created_at) FROM notifications n \
               WHERE n.user_id = u.user_id AND n.party_id = u.party_id AND n.kind = '{chat}'), -1) \
               AS notified_at \
           FROM members u WHERE u.party_id > $4 OR (u.party_id = $4 AND u.user_id > $5)), \
         firsts AS ( \
           SELECT x.party_id, x.user_id, \
             (SELECT MIN(m.seq) FROM chat_messages m \
               WHERE m.party_id = x.party_id AND m.seq > x.read_seq AND m.sent_at > $1 \
                 AND m.sent_at > x.notified_at AND m.kind = 'user' AND m.deleted_at IS NULL \
                 AND m.sender_id <> x.user_id) AS first_seq \
           FROM pairs x WHERE x.notified_at <= $2) \
         SELECT f.party_id, f.user_id, p.title, f.first_seq FROM firsts f \
         JOIN parties p ON p.id = f.party_id \
         WHERE f.first_seq IS NOT NULL \
         ORDER BY f.party_id, f.user_id LIMIT $3",
        left = BookingStatus::Left,
        cancelled = PartyStatus::Cancelled,
        chat = kind::CHAT_MESSAGE,
    )))
    .bind(since)
    .bind(quiet_since)
    .bind(limit)
    .bind(after.0)
    .bind(after.1)
    .fetch_all(db.pool())
    .await?)
}
