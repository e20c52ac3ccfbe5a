//! What the waiting-room handlers, the admitter and the SSE followers share: the notice published
//! when a room changes, the caller's status in a room, and the wait estimate.
use serde::{Deserialize, Serialize};
use store::live::queue::QueueSpot;
use store::rooms::{self, Room, RoomState};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::time::Timestamp;

/// Bus topic of one room's changes; every instance's followers of that room listen to it.
pub fn topic(party_id: i64) -> String {
    store::topics::queue(party_id)
}

/// What the bus carries for a room. Followers recompute their own spot on `Changed`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    Changed,
    Closed { reason: String },
}

/// Publishes a room notice. Failures are logged, not returned: the bus is fire and forget, and
/// followers also recompute on their heartbeat, so a lost notice only delays an update.
pub async fn notify(state: &AppState, party_id: i64, notice: &Notice) {
    let payload = match serde_json::to_vec(notice) {
        Ok(p) => p,
        Err(err) => {
            tracing::error!(error = %err, "cannot encode a queue notice");
            return;
        }
    };
    if let Err(err) = state.live.bus.publish(&topic(party_id), &payload).await {
        tracing::warn!(party.id = party_id, error = %err, "queue notice not published");
    }
}

/// Seconds until a user with `ahead` people in front is admitted, at `rate` admissions per minute.
pub fn estimate_secs(ahead: u64, rate_per_min: f64) -> u64 {
    if rate_per_min <= 0.0 {
        return 0;
    }
    ((ahead + 1) as f64 * 60.0 / rate_per_min).ceil() as u64
}

/// The caller's place in a waiting room.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq)]
pub struct QueueStatus {
    pub party_id: i64,
    /// `waiting`, `admitted`, `expired` (the turn passed unused) or `closed` (the room closed).
    pub state: &'static str,
    /// 1 for the next person to be admitted (waiting only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// People in front (waiting only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ahead: Option<u64>,
    /// Estimated seconds until admission, from the measured admission rate (waiting only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_secs: Option<u64>,
    /// The admission pass to send as `Admission-Pass` when booking (admitted only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_expires_at: Option<Timestamp>,
    /// Why the room closed: `full`, `cancelled` or `closed` (closed only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<String>,
}

impl QueueStatus {
    fn bare(party_id: i64, state: &'static str) -> Self {
        Self {
            party_id,
            state,
            position: None,
            ahead: None,
            estimated_wait_secs: None,
            pass: None,
            pass_expires_at: None,
            close_reason: None,
        }
    }

    pub fn waiting(party_id: i64, ahead: u64, rate_per_min: f64) -> Self {
        Self {
            position: Some(ahead + 1),
            ahead: Some(ahead),
            estimated_wait_secs: Some(estimate_secs(ahead, rate_per_min)),
            ..Self::bare(party_id, "waiting")
        }
    }

    pub fn closed(party_id: i64, reason: Option<String>) -> Self {
        Self {
            close_reason: reason,
            ..Self::bare(party_id, "closed")
        }
    }

    pub fn expired(party_id: i64) -> Self {
        Self::bare(party_id, "expired")
    }

    /// Whether a follower can stop: nothing more will happen to this entry.
    pub fn is_final(&self) -> bool {
        self.state != "waiting"
    }
}

/// The user's status in the room, estimating waits at `rate` admissions per minute. With `touch`,
/// a waiting user is marked as followed, which keeps the entry from being dropped as abandoned.
/// An admitted user's status, with a pass valid until `expires_at`.
pub fn admitted_status(
    state: &AppState,
    party_id: i64,
    user_id: i64,
    expires_at: i64,
) -> ApiResult<QueueStatus> {
    let pass = state
        .passes
        .issue(user_id, party_id, expires_at)
        .map_err(ApiError::internal)?;
    Ok(QueueStatus {
        pass: Some(pass),
        pass_expires_at: Some(Timestamp(expires_at)),
        ..QueueStatus::bare(party_id, "admitted")
    })
}

/// `None` when the user is not in the room.
pub async fn status_of(
    state: &AppState,
    room: &Room,
    rate: f64,
    user_id: i64,
    touch: bool,
) -> ApiResult<Option<QueueStatus>> {
    let party_id = room.party_id;
    if room.state == RoomState::Closed {
        return Ok(Some(QueueStatus::closed(
            party_id,
            room.close_reason.clone(),
        )));
    }
    let now = state.now();
    let queue = &state.live.queue;
    // Touching someone who is not waiting changes nothing, so both go out at once (one round trip
    // on Redis instead of two).
    let touched = async {
        if touch {
            queue.touch(party_id, user_id, now).await
        } else {
            Ok(())
        }
    };
    let (spot, touched) = tokio::join!(queue.spot(party_id, user_id, now), touched);
    touched?;
    match spot? {
        QueueSpot::Waiting { ahead } => Ok(Some(QueueStatus::waiting(party_id, ahead, rate))),
        QueueSpot::Admitted { expires_at } => {
            admitted_status(state, party_id, user_id, expires_at).map(Some)
        }
        QueueSpot::Gone { .. } => Ok(Some(QueueStatus::expired(party_id))),
        QueueSpot::Absent => {
            // The room may have closed since `room` was read (closing marks the row, then empties
            // the queue): read it again rather than answer "not in the queue".
            if let Some(now_room) = rooms::get_room(&state.db, party_id).await? {
                if now_room.state == RoomState::Closed {
                    return Ok(Some(QueueStatus::closed(party_id, now_room.close_reason)));
                }
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_counts_the_caller_and_everyone_ahead() {
        assert_eq!(estimate_secs(0, 60.0), 1);
        assert_eq!(estimate_secs(59, 60.0), 60);
        assert_eq!(estimate_secs(9, 600.0), 1);
        assert_eq!(estimate_secs(10, 600.0), 2);
        assert_eq!(estimate_secs(5, 0.0), 0);
    }

    #[test]
    fn notices_travel_as_tagged_json() {
        let closed = Notice::Closed {
            reason: "full".into(),
        };
        let json = serde_json::to_string(&closed).unwrap();
        assert_eq!(json, r#"{"kind":"closed","reason":"full"}"#);
        assert_eq!(serde_json::from_str::<Notice>(&json).unwrap(), closed);
        assert_eq!(
            serde_json::from_str::<Notice>(r#"{"kind":"changed"}"#).unwrap(),
            Notice::Changed
        );
    }
}
