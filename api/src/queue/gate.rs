//! The booking gate: while a party's waiting room is on, a booking needs the user's own, unexpired,
//! unused admission pass for that party. With the room off, a burst of join attempts turns it on.

use axum::http::HeaderMap;
use store::live::queue::QueueSpot;
use store::parties;
use store::rooms;

use super::pass::PassError;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The header that carries the pass.
pub const PASS_HEADER: &str = "admission-pass";

/// How a booking got through the gate.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    /// No waiting room is on.
    Free,
    /// With an admission; consume it once the seat is taken.
    Admitted,
}

impl Gate {
    /// Uses the admission up after the booking it allowed. The seat is already taken, so a failure
    /// here is logged, not answered: the unused admission only counts as a pass in flight (keeping
    /// its seat from being offered twice) until it expires.
    pub async fn consume(&self, state: &AppState, party_id: i64, user_id: i64) {
        if *self == Gate::Admitted {
            if let Err(err) = state
                .live
                .queue
                .consume(party_id, user_id, state.now())
                .await
            {
                tracing::warn!(party.id = party_id, user.id = user_id, error = %err, "admission not consumed after booking");
            }
        }
    }
}

fn admission_required() -> ApiError {
    ApiError::forbidden(
        "admission_required",
        "this party has a waiting room: enter it (POST /api/v1/parties/{id}/queue) and book with the \
         Admission-Pass you are given",
    )
    .with_field(PASS_HEADER)
}

fn pass_refused(code: &'static str, detail: &str) -> ApiError {
    ApiError::forbidden(code, detail).with_field(PASS_HEADER)
}

/// Lets a booking of `party_id` by `user_id` through, or says why not.
pub async fn check_booking(
    state: &AppState,
    party_id: i64,
    user_id: i64,
    headers: &HeaderMap,
) -> ApiResult<Gate> {
    let room = rooms::get_room(&state.db, party_id).await?;
    if room.as_ref().is_some_and(|r| r.gates_bookings()) {
        let Some(value) = headers.get(PASS_HEADER) else {
            return Err(admission_required());
        };
        let token = value.to_str().map_err(|_| {
            pass_refused("invalid_admission_pass", "the admission pass is not ours")
        })?;
        let now = state.now();
        state
            .passes
            .check(token.trim(), user_id, party_id, now)
            .map_err(|err| match err {
                PassError::Invalid => {
                    pass_refused("invalid_admission_pass", "the admission pass is not ours")
                }
                PassError::WrongParty => pass_refused(
                    "admission_pass_wrong_party",
                    "the admission pass is for another party",
                ),
                PassError::WrongUser => pass_refused(
                    "admission_pass_wrong_user",
                    "the admission pass belongs to another user",
                ),
                PassError::Expired => {
                    pass_refused("admission_pass_expired", "the admission pass has expired")
                }
            })?;
        return match state.live.queue.spot(party_id, user_id, now).await? {
            QueueSpot::Admitted { .. } => Ok(Gate::Admitted),
            _ => Err(pass_refused(
                "admission_pass_expired",
                "the admission pass has expired or was already used",
            )),
        };
    }
    if room.is_none() {
        auto_open_on_burst(state, party_id, user_id).await?;
    }
    Ok(Gate::Free)
}

/// Counts the distinct users attempting to join a party; past the threshold within the window,
/// turns the waiting room on for a recruiting party and refuses this attempt with
/// `admission_required`. One account retrying counts once, so nobody can switch on the room of a
/// party they do not lead by hammering it. A room its leader closed stays closed (only a party
/// with no room row is opened automatically).
async fn auto_open_on_burst(state: &AppState, party_id: i64, user_id: i64) -> ApiResult<()> {
    let settings = &state.settings.queue;
    if settings.auto_threshold == 0 {
        return Ok(());
    }
    // The first attempt of this user in the window passes this limit of one; later ones do not
    // and are not counted again.
    let first_attempt = state
        .live
        .limiter
        .hit(
            &format!("join-burst:{party_id}:{user_id}"),
            1,
            settings.auto_window,
        )
        .await?
        .allowed;
    if !first_attempt {
        return Ok(());
    }
    let decision = state
        .live
        .limiter
        .hit(
            &format!("join-burst:{party_id}"),
            settings.auto_threshold,
            settings.auto_window,
        )
        .await?;
    if decision.allowed {
        return Ok(());
    }
    let bookable = parties::get_party(&state.db, party_id)
        .await?
        .is_some_and(|p| p.accepts_bookings(state.now()));
    if !bookable {
        // Full, cancelled or unknown: the booking itself says so.
        return Ok(());
    }
    if rooms::auto_open_room(&state.db, party_id, settings.rate_per_min, state.now()).await? {
        tracing::info!(
            party.id = party_id,
            "burst of join attempts: waiting room turned on"
        );
    }
    Err(admission_required())
}
