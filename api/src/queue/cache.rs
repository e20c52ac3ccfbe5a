//! Room rows and admission rates as position requests read them: from the database and the live
//! cache they need, never the whole app, so the app state can hold the cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use store::live::Cache;
use store::rooms::{self, Room};
use store::Db;

use crate::error::{ApiError, ApiResult};

/// Cache key of the admission rate the admitter measured for a room (admissions per minute).
pub fn rate_key(party_id: i64) -> String {
    format!("queue:rate:{party_id}")
}

/// The party's room, or `queue_off` when it was never turned on.
pub async fn room_or_off(db: &Db, party_id: i64) -> ApiResult<Room> {
    rooms::get_room(db, party_id)
        .await?
        .ok_or_else(|| ApiError::conflict("queue_off", "this party has no waiting room"))
}

/// How long a position read may use a room row and rate read before. A room's switch and rate
/// change rarely, while every waiting client asks for its position every few seconds: reading the
/// row once a second per instance instead of once per request is what lets an instance answer
/// tens of thousands of positions a second. Bookings never use this: the gate reads the row.
const ROOM_TTL: Duration = Duration::from_secs(1);

/// Room rows and admission rates recently read, per party.
#[derive(Default)]
pub struct RoomCache {
    rooms: Mutex<HashMap<i64, (Instant, Room, f64)>>,
}

impl RoomCache {
    /// The party's room (as of at most [`ROOM_TTL`] ago) and its admission rate, or `queue_off`.
    pub async fn get(&self, db: &Db, cache: &dyn Cache, party_id: i64) -> ApiResult<(Room, f64)> {
        if let Some((at, room, rate)) = self.lock().get(&party_id) {
            if at.elapsed() < ROOM_TTL {
                return Ok((room.clone(), *rate));
            }
        }
        let room = room_or_off(db, party_id).await?;
        let rate = rate_per_min(cache, &room).await;
        let mut rooms = self.lock();
        if rooms.len() >= 10_000 {
            rooms.retain(|_, (at, _, _)| at.elapsed() < ROOM_TTL);
        }
        rooms.insert(party_id, (Instant::now(), room.clone(), rate));
        Ok((room, rate))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (Instant, Room, f64)>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The admission rate in force: the measured one when the admitter published it, else the room's
/// configured rate.
pub async fn rate_per_min(cache: &dyn Cache, room: &Room) -> f64 {
    let measured = cache
        .get(&rate_key(room.party_id))
        .await
        .ok()
        .flatten()
        .and_then(|b| std::str::from_utf8(&b).ok()?.parse::<f64>().ok())
        .filter(|r| *r > 0.0);
    measured.unwrap_or(room.rate_per_min as f64)
}
