//! Attendance: after the meet the leader marks each member `attended` or `no_show`. A mark is a
//! conditional update of the booking naming the states it may leave (`lifecycle::BookingStatus`),
//! and every change writes `party.attendance_marked` in the same transaction: the penalty job is
//! made from that event by a durable consumer, never by this request, so a mark and its penalty
//! cannot be split by a crash.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::db::Db;
use crate::error::Result;
use crate::lifecycle::{BookingStatus, PartyStatus};
use crate::outbox;
use crate::parties::get_party_on;
use crate::rules::Invalid;
use crate::topics::{party_kind, PARTIES_TOPIC};

/// One member's mark as the leader gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub user_id: i64,
    pub attended: bool,
}

/// A member's booking as attendance shows it.
#[derive(Clone, Debug, PartialEq, Eq, FromRow, Serialize)]
pub struct MemberMark {
    pub user_id: i64,
    #[sqlx(try_from = "String")]
    pub status: BookingStatus,
    pub marked_at: Option<i64>,
}

/// The payload of `party.attendance_marked`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marked {
    pub party_id: i64,
    pub user_id: i64,
    pub status: BookingStatus,
}

/// Why marks were refused.
#[derive(Debug, thiserror::Error)]
pub enum AttendanceError {
    #[error("party not found")]
    NotFound,
    #[error("only the leader may mark attendance")]
    NotLeader,
    /// Attendance opens at the meet time (given).
    #[error("attendance opens at the meet time")]
    TooEarly(i64),
    /// Attendance closed at this time.
    #[error("attendance is closed")]
    Closed(i64),
    #[error("the party is {0}")]
    WrongStatus(PartyStatus),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Store(#[from] crate::Error),
}

impl From<sqlx::Error> for AttendanceError {
    fn from(err: sqlx::Error) -> Self {
        AttendanceError::Store(err.into())
    }
}

/// Every member's booking but the leader's (members who left are not listed).
pub async fn marks(db: &Db, party_id: i64) -> Result<Vec<MemberMark>> {
    let mut conn = db.pool().acquire().await?;
    marks_on(&mut conn, party_id).await
}

async fn marks_on(conn: &mut sqlx::AnyConnection, party_id: i64) -> Result<Vec<MemberMark>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT b.user_id, b.status, b.marked_at FROM bookings b JOIN parties p ON p.id = b.party_id \
         WHERE b.party_id = $1 AND b.user_id <> p.leader_id AND b.status <> '{}' ORDER BY b.id",
        BookingStatus::Left
    )))
    .bind(party_id)
    .fetch_all(conn)
    .await?)
}

/// Marks members of a closed or completed party, from its meet until `window_ms` after. Members
/// not named keep their marks. Returns every member's mark after the change.
pub async fn mark(
    db: &Db,
    party_id: i64,
    leader_id: i64,
    marks: &[Mark],
    now: i64,
    window_ms: i64,
) -> Result<Vec<MemberMark>, AttendanceError> {
    let mut tx = db.begin().await?;
    let party = get_party_on(tx.conn(), party_id)
        .await?
        .ok_or(AttendanceError::NotFound)?;
    if party.leader_id != leader_id {
        return Err(AttendanceError::NotLeader);
    }
    // Before the meet, "too early" says more than the status (still recruiting, or closed).
    if party.status != PartyStatus::Cancelled && now < party.meet_at {
        return Err(AttendanceError::TooEarly(party.meet_at));
    }
    if !matches!(party.status, PartyStatus::Closed | PartyStatus::Completed) {
        return Err(AttendanceError::WrongStatus(party.status));
    }
    let closes_at = party.meet_at.saturating_add(window_ms);
    if now > closes_at {
        return Err(AttendanceError::Closed(closes_at));
    }
    let members: HashSet<i64> = marks_on(tx.conn(), party_id)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    let mut named = HashSet::new();
    for (i, m) in marks.iter().enumerate() {
        let field = format!("members[{i}].user_id");
        if m.user_id == leader_id {
            return Err(Invalid::new(field, "the leader is not marked").into());
        }
        if !members.contains(&m.user_id) {
            return Err(Invalid::new(field, "not a member of this party").into());
        }
        if !named.insert(m.user_id) {
            return Err(Invalid::new(field, "this member is named twice").into());
        }
    }
    for m in marks {
        let target = if m.attended {
            BookingStatus::Attended
        } else {
            BookingStatus::NoShow
        };
        let changed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE bookings SET status = '{target}', marked_at = $3, updated_at = $3 \
             WHERE party_id = $1 AND user_id = $2 AND status IN ({})",
            BookingStatus::sources_sql(target)
        )))
        .bind(party_id)
        .bind(m.user_id)
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if changed > 0 {
            let event = Marked {
                party_id,
                user_id: m.user_id,
                status: target,
            };
            outbox::insert(
                tx.conn(),
                PARTIES_TOPIC,
                party_kind::ATTENDANCE_MARKED,
                &event,
                now,
            )
            .await?;
        }
    }
    let after = marks_on(tx.conn(), party_id).await?;
    tx.commit().await?;
    Ok(after)
}

/// The booking status of a user in a party, if they are a member (not left).
pub async fn booking_status(
    conn: &mut sqlx::AnyConnection,
    party_id: i64,
    user_id: i64,
) -> Result<Option<BookingStatus>> {
    let row: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT status FROM bookings WHERE party_id = $1 AND user_id = $2 AND status <> '{}' \
         ORDER BY id DESC LIMIT 1",
        BookingStatus::Left
    )))
    .bind(party_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    row.map(|(s,)| {
        s.parse::<BookingStatus>()
            .map_err(|e| crate::Error::Corrupt(e.to_string()))
    })
    .transpose()
}
