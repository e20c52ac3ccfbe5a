//! A party's members: the booking rows themselves. Both the party operations (a leader's first
//! seat, the members told of a cancellation) and the booking operations use these, so they sit
//! below both: `bookings` uses `parties` and `members`; `parties` uses `members`, never `bookings`.

use sqlx::{AnyConnection, FromRow};

use crate::error::Result;
use crate::lifecycle::BookingStatus;

#[derive(Clone, Debug, FromRow, serde::Serialize, PartialEq)]
pub struct Booking {
    pub id: i64,
    pub party_id: i64,
    pub user_id: i64,
    #[sqlx(try_from = "String")]
    pub status: BookingStatus,
    pub created_at: i64,
}

pub(crate) async fn insert_booking(
    conn: &mut AnyConnection,
    party_id: i64,
    user_id: i64,
    now: i64,
) -> std::result::Result<Booking, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO bookings (party_id, user_id, status, created_at, updated_at) \
         VALUES ($1, $2, '{}', $3, $3) RETURNING id, party_id, user_id, status, created_at",
        BookingStatus::Joined
    )))
    .bind(party_id)
    .bind(user_id)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Ids of the party's current members (leader included).
pub async fn member_ids(conn: &mut AnyConnection, party_id: i64) -> Result<Vec<i64>> {
    let rows: Vec<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT user_id FROM bookings WHERE party_id = $1 AND status = '{}' ORDER BY id",
        BookingStatus::Joined
    )))
    .bind(party_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

pub(crate) async fn is_member(
    conn: &mut AnyConnection,
    party_id: i64,
    user_id: i64,
) -> Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM bookings WHERE party_id = $1 AND user_id = $2 AND status = '{}'",
        BookingStatus::Joined
    )))
    .bind(party_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}
