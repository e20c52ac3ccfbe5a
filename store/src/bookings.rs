//! Bookings: joining and leaving parties.
//!
//! A seat is taken by one conditional `UPDATE parties SET joined = joined + 1 ... WHERE` the party
//! accepts bookings ([`crate::lifecycle::accepts_bookings_sql`]: recruiting, `joined < capacity`,
//! deadline ahead), in the same transaction as the booking row. The database serialises updates of one row, so no interleaving can overbook: on PostgreSQL
//! a concurrent update waits for the row lock and re-checks the condition; on SQLite writers take
//! turns. The partial unique index on active bookings stops a user holding two seats.

use crate::db::Db;
use crate::error::{is_unique_violation, Result};
use crate::lifecycle::{accepts_bookings_sql, BookingStatus, PartyStatus};
use crate::parties::{get_party_on, write_event, Party, PartyEvent, COLUMNS};
use crate::topics::party_kind;
use crate::users::banned_until;

/// Why a join or leave was refused.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error("party not found")]
    NotFound,
    #[error("the party is full")]
    Full,
    #[error("the booking deadline has passed")]
    DeadlinePassed,
    #[error("the party was cancelled")]
    Cancelled,
    #[error("the party is {0}")]
    Closed(PartyStatus),
    #[error("already a member of this party")]
    AlreadyMember,
    #[error("not a member of this party")]
    NotMember,
    #[error("the leader cannot leave their own party")]
    LeaderCannotLeave,
    #[error("user is banned until {0}")]
    Banned(i64),
    #[error("the user does not exist")]
    UnknownUser,
    #[error("booking storage failure")]
    Store(#[from] crate::Error),
}

impl From<sqlx::Error> for BookingError {
    fn from(err: sqlx::Error) -> Self {
        crate::Error::from(err).into()
    }
}

pub use crate::members::Booking;
use crate::members::{insert_booking, is_member};

/// Whether the user holds an active seat in the party.
pub async fn is_active_member(db: &Db, party_id: i64, user_id: i64) -> Result<bool> {
    is_member(&mut *db.pool().acquire().await?, party_id, user_id).await
}

/// Explains why the seat-taking update matched no row.
fn join_refusal(party: Option<Party>, now: i64) -> BookingError {
    match party {
        None => BookingError::NotFound,
        Some(p) if p.status == PartyStatus::Cancelled => BookingError::Cancelled,
        Some(p) if !p.status.is_open() => BookingError::Closed(p.status),
        Some(p) if p.deadline_at <= now => BookingError::DeadlinePassed,
        Some(_) => BookingError::Full,
    }
}

/// Takes a seat in the party for the user.
pub async fn join_party(
    db: &Db,
    party_id: i64,
    user_id: i64,
    now: i64,
) -> Result<(Party, Booking), BookingError> {
    let mut tx = db.begin().await?;
    if let Some(until) = banned_until(tx.conn(), user_id)
        .await?
        .ok_or(BookingError::UnknownUser)?
        .filter(|until| *until > now)
    {
        return Err(BookingError::Banned(until));
    }
    if is_member(tx.conn(), party_id, user_id).await? {
        return Err(BookingError::AlreadyMember);
    }
    let taken: Option<Party> = sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "UPDATE parties SET joined = joined + 1, \
         status = CASE WHEN joined + 1 >= capacity THEN '{full}' ELSE status END, \
         version = version + 1, updated_at = $2 \
         WHERE id = $1 AND {open} RETURNING {COLUMNS}",
        full = PartyStatus::Full,
        open = accepts_bookings_sql("$2"),
    )))
    .bind(party_id)
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    let Some(party) = taken else {
        let current = get_party_on(tx.conn(), party_id).await?;
        return Err(join_refusal(current, now));
    };
    let booking = match insert_booking(tx.conn(), party_id, user_id, now).await {
        Ok(b) => b,
        // A concurrent join by the same user committed first.
        Err(err) if is_unique_violation(&err) => return Err(BookingError::AlreadyMember),
        Err(err) => return Err(err.into()),
    };
    let event = PartyEvent {
        party: &party,
        user_id: Some(user_id),
        member_ids: None,
        meet_moved_from: None,
    };
    write_event(tx.conn(), party_kind::JOINED, &event, now).await?;
    if party.status == PartyStatus::Full {
        write_event(tx.conn(), party_kind::FULL, &event, now).await?;
    }
    tx.commit().await?;
    Ok((party, booking))
}

/// Gives the user's seat back before the deadline; a full party reopens.
pub async fn leave_party(
    db: &Db,
    party_id: i64,
    user_id: i64,
    now: i64,
) -> Result<Party, BookingError> {
    let mut tx = db.begin().await?;
    let Some(current) = get_party_on(tx.conn(), party_id).await? else {
        return Err(BookingError::NotFound);
    };
    if current.leader_id == user_id {
        return Err(BookingError::LeaderCannotLeave);
    }
    let left = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE bookings SET status = '{}', updated_at = $3 \
         WHERE party_id = $1 AND user_id = $2 AND status IN ({})",
        BookingStatus::Left,
        BookingStatus::sources_sql(BookingStatus::Left)
    )))
    .bind(party_id)
    .bind(user_id)
    .bind(now)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if left == 0 {
        return Err(BookingError::NotMember);
    }
    let freed: Option<Party> = sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "UPDATE parties SET joined = joined - 1, \
         status = CASE WHEN status = '{full}' THEN '{recruiting}' ELSE status END, \
         version = version + 1, updated_at = $2 \
         WHERE id = $1 AND status IN ({open}) AND deadline_at > $2 \
         RETURNING {COLUMNS}",
        full = PartyStatus::Full,
        recruiting = PartyStatus::Recruiting,
        open = PartyStatus::open_sql(),
    )))
    .bind(party_id)
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    let Some(party) = freed else {
        // Dropping `tx` rolls the booking change back.
        return Err(match join_refusal(Some(current), now) {
            BookingError::Full => BookingError::DeadlinePassed,
            other => other,
        });
    };
    let event = PartyEvent {
        party: &party,
        user_id: Some(user_id),
        member_ids: None,
        meet_moved_from: None,
    };
    write_event(tx.conn(), party_kind::LEFT, &event, now).await?;
    // A party is full exactly when joined == capacity, so it reopened iff it was at capacity.
    if party.joined + 1 == party.capacity {
        write_event(tx.conn(), party_kind::REOPENED, &event, now).await?;
    }
    tx.commit().await?;
    Ok(party)
}

/// Count of active bookings of a party (for consistency checks).
pub async fn count_active(db: &Db, party_id: i64) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM bookings WHERE party_id = $1 AND status = '{}'",
        BookingStatus::Joined
    )))
    .bind(party_id)
    .fetch_one(db.pool())
    .await?;
    Ok(n)
}
