//! Waiting rooms: the durable switch and counters of the queue in front of a hot party.
//!
//! Who waits and who holds a pass is live state ([`crate::live::queue`]); this table says whether a
//! room is on, so every instance refuses pass-less bookings the same way, and keeps the counters the
//! leader sees. Every state change is a conditional update naming the states it may leave, as for
//! parties, so a pause racing the admitter's close cannot reopen a closed room.

use sqlx::FromRow;

use crate::db::Db;
use crate::error::Result;

pub use crate::lifecycle::RoomState;

/// Why a room closed, as stored in `close_reason`.
pub mod reason {
    pub const FULL: &str = "full";
    pub const CANCELLED: &str = "cancelled";
    /// The booking deadline passed or the party closed otherwise.
    pub const CLOSED: &str = "closed";
    /// The leader (or an operator) turned the room off.
    pub const LEADER: &str = "leader";
}

#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct Room {
    pub party_id: i64,
    #[sqlx(try_from = "String")]
    pub state: RoomState,
    pub rate_per_min: i64,
    pub auto_opened: i64,
    pub admitted_total: i64,
    pub dropped_total: i64,
    pub expired_total: i64,
    pub close_reason: Option<String>,
    pub opened_at: i64,
    pub updated_at: i64,
}

impl Room {
    /// Whether bookings of the party need an admission pass (open or paused).
    pub fn gates_bookings(&self) -> bool {
        self.state.gates_bookings()
    }
}

const COLUMNS: &str = "party_id, state, rate_per_min, auto_opened, admitted_total, dropped_total, \
                       expired_total, close_reason, opened_at, updated_at";

/// The party's room, if it was ever turned on.
pub async fn get_room(db: &Db, party_id: i64) -> Result<Option<Room>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "SELECT {COLUMNS} FROM waiting_rooms WHERE party_id = $1"
    )))
    .bind(party_id)
    .fetch_optional(db.pool())
    .await?)
}

/// Turns the room on (or back on after it closed) at `rate_per_min`. A leader's explicit open also
/// resets a paused room to open. Returns the room as it is now.
pub async fn open_room(db: &Db, party_id: i64, rate_per_min: i64, now: i64) -> Result<Room> {
    let mut tx = db.begin().await?;
    let room: Room = sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "INSERT INTO waiting_rooms (party_id, state, rate_per_min, auto_opened, opened_at, updated_at) \
         VALUES ($1, '{open}', $2, 0, $3, $3) \
         ON CONFLICT (party_id) DO UPDATE SET state = '{open}', rate_per_min = $2, \
         close_reason = NULL, updated_at = $3 RETURNING {COLUMNS}",
        open = RoomState::Open
    )))
    .bind(party_id)
    .bind(rate_per_min)
    .bind(now)
    .fetch_one(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(room)
}

/// Turns the room on because of a burst of join attempts; never overrides a room that exists (a
/// leader's pause or a close stands). Returns whether this call turned it on.
pub async fn auto_open_room(db: &Db, party_id: i64, rate_per_min: i64, now: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let done = sqlx::query(sqlx::AssertSqlSafe(&*format!(
        "INSERT INTO waiting_rooms (party_id, state, rate_per_min, auto_opened, opened_at, updated_at) \
         VALUES ($1, '{}', $2, 1, $3, $3) ON CONFLICT (party_id) DO NOTHING",
        RoomState::Open
    )))
    .bind(party_id)
    .bind(rate_per_min)
    .bind(now)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// Moves the room from one of `from` to `to` (with `reason` when closing); only the states of
/// `from` that [`RoomState::can_become`] `to` count. `None` when the room is in none of them (or
/// does not exist): the caller reads it again to say why.
pub async fn change_state(
    db: &Db,
    party_id: i64,
    from: &[RoomState],
    to: RoomState,
    reason: Option<&str>,
    now: i64,
) -> Result<Option<Room>> {
    let allowed: Vec<RoomState> = from.iter().copied().filter(|s| s.can_become(to)).collect();
    if allowed.is_empty() {
        return Ok(None);
    }
    let allowed = RoomState::sql_list(allowed);
    let mut tx = db.begin().await?;
    let room: Option<Room> = sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "UPDATE waiting_rooms SET state = $2, close_reason = $3, updated_at = $4 \
         WHERE party_id = $1 AND state IN ({allowed}) RETURNING {COLUMNS}"
    )))
    .bind(party_id)
    .bind(to.as_str())
    .bind(reason)
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(room)
}

/// Rooms the admitter looks after: open or paused.
pub async fn list_live_rooms(db: &Db) -> Result<Vec<Room>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "SELECT {COLUMNS} FROM waiting_rooms WHERE state IN ({}) ORDER BY party_id",
        RoomState::sql_list(
            RoomState::ALL
                .iter()
                .copied()
                .filter(|s| s.gates_bookings())
        )
    )))
    .fetch_all(db.pool())
    .await?)
}

/// Adds one admitter round's outcome to the room's counters.
pub async fn add_counts(
    db: &Db,
    party_id: i64,
    admitted: i64,
    dropped: i64,
    expired: i64,
    now: i64,
) -> Result<()> {
    if admitted == 0 && dropped == 0 && expired == 0 {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE waiting_rooms SET admitted_total = admitted_total + $2, \
         dropped_total = dropped_total + $3, expired_total = expired_total + $4, updated_at = $5 \
         WHERE party_id = $1",
    )
    .bind(party_id)
    .bind(admitted)
    .bind(dropped)
    .bind(expired)
    .bind(now)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(())
}
