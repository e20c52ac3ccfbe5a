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

/// One page of the sweep: the members due a notification in a page of active rooms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub due: Vec<Unseen>,
    /// The last room of the page: the next page starts after it. `None` when there were no more
    /// rooms.
    pub last_room: Option<i64>,
}

/// Members due a notification at `now`, in the next `rooms` rooms (in party order after
/// `after_room`) that had a member's message after `since` (how far back to look): messages from
/// others after the member's read cursor, sent after `since` and after their last chat
/// notification for the room, which is older than `quiet_since`. Cancelled parties and members
/// who left are skipped. The caller pages with [`Page::last_room`] until it is `None`.
///
/// The cost is per (room, member) of the page's rooms: the active rooms are read from their
/// `chat_rooms` row (which each send marks), and a member's cursor, their last chat notification
/// and their first new message are each one index probe, however many messages they have not
/// read.
pub async fn due(
    db: &Db,
    since: i64,
    quiet_since: i64,
    after_room: i64,
    rooms: i64,
) -> Result<Page> {
    let page: Vec<(i64,)> = sqlx::query_as(
        "SELECT party_id FROM chat_rooms WHERE last_user_at > $1 AND party_id > $2 \
         ORDER BY party_id LIMIT $3",
    )
    .bind(since)
    .bind(after_room)
    .bind(rooms)
    .fetch_all(db.pool())
    .await?;
    let (Some(&(first,)), Some(&(last,))) = (page.first(), page.last()) else {
        return Ok(Page::default());
    };
    let due = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH rooms AS ( \
           SELECT c.party_id FROM chat_rooms c JOIN parties p ON p.id = c.party_id \
           WHERE c.party_id >= $3 AND c.party_id <= $4 AND c.last_user_at > $1 \
             AND p.status <> '{cancelled}'), \
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
           FROM members u), \
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
         ORDER BY f.party_id, f.user_id",
        left = BookingStatus::Left,
        cancelled = PartyStatus::Cancelled,
        chat = kind::CHAT_MESSAGE,
    )))
    .bind(since)
    .bind(quiet_since)
    .bind(first)
    .bind(last)
    .fetch_all(db.pool())
    .await?;
    Ok(Page {
        due,
        last_room: Some(last),
    })
}
