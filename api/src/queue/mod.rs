//! Waiting rooms: a fair FIFO queue in front of hot parties.
//!
//! While a party's room is on, booking it needs an admission pass. People enter the queue, follow
//! their position (SSE or polling), and the one admitter of the deployment ([`admitter`]) lets them
//! in at the room's rate, never more than the free seats. The queue is live state
//! (`store::live::queue`, in-process or Redis); the room's switch and counters are in SQL
//! (`store::rooms`).

pub mod admitter;
pub mod cache;
mod follow;
mod gate;
pub mod pass;
mod room;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use store::live::queue::Entered;
use store::parties::{self, Party, PartyError, PartyStatus};
use store::rooms::{self, Room, RoomState};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use gate::{check_booking, Gate, PASS_HEADER};
pub use room::QueueStatus;

use crate::auth::AuthUser;
use crate::config::defaults::QUEUE_RATE_PER_MIN as RATE_PER_MIN;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{parse_json, require_json_if_present, Path};
use crate::state::AppState;
use cache::{rate_per_min, room_or_off};
use room::{admitted_status, notify, status_of, Notice};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enter_queue, get_queue))
        .routes(routes!(get_my_queue_status, leave_queue))
        .routes(routes!(follow_my_queue_status))
        .routes(routes!(open_queue))
        .routes(routes!(pause_queue))
        .routes(routes!(resume_queue))
        .routes(routes!(close_queue))
}

async fn party_or_404(state: &AppState, id: i64) -> ApiResult<Party> {
    Ok(parties::get_party(&state.db, id)
        .await?
        .ok_or(PartyError::NotFound)?)
}

fn not_in_queue() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_in_queue",
        "you are not in this party's waiting room",
    )
}

fn room_closed(room: &Room) -> ApiError {
    ApiError::conflict(
        "queue_closed",
        format!(
            "the waiting room closed ({})",
            room.close_reason.as_deref().unwrap_or("closed")
        ),
    )
}

/// Enter the party's waiting room (idempotent: entering again keeps the first position).
#[utoipa::path(post, path = "/parties/{id}/queue", tag = "queue", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id")),
    responses(
        (status = 201, description = "Entered: position, people ahead, estimated wait", body = QueueStatus),
        (status = 200, description = "Already in the room: the current status", body = QueueStatus),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`party_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`queue_off`, `queue_closed`, `already_member`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn enter_queue(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<impl IntoResponse> {
    party_or_404(&state, id).await?;
    let room = room_or_off(&state.db, id).await?;
    if !room.gates_bookings() {
        return Err(room_closed(&room));
    }
    if store::bookings::is_active_member(&state.db, id, user.id).await? {
        return Err(ApiError::conflict(
            "already_member",
            "you are already a member of this party",
        ));
    }
    let now = state.now();
    // No notice: joining the back of the line moves nobody's place.
    let entered = state.live.queue.enter(id, user.id, now).await?;
    let rate = rate_per_min(state.live.cache.as_ref(), &room).await;
    let (code, status) = match entered {
        Entered::Waiting { ahead } => (StatusCode::CREATED, QueueStatus::waiting(id, ahead, rate)),
        Entered::AlreadyWaiting { ahead } => {
            (StatusCode::OK, QueueStatus::waiting(id, ahead, rate))
        }
        Entered::Admitted { expires_at } => (
            StatusCode::OK,
            admitted_status(&state, id, user.id, expires_at)?,
        ),
    };
    tracing::info!(party.id = id, user.id = user.id, "entered waiting room");
    // A status may carry a pass: never cached, never kept by the idempotency layer.
    Ok((code, crate::limits::no_store(), axum::Json(status)))
}

/// My place in the party's waiting room; the admission pass once admitted. Polling counts as
/// following: an entry nobody follows is dropped when its turn comes.
#[utoipa::path(get, path = "/parties/{id}/queue/me", tag = "queue", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id")),
    responses(
        (status = 200, description = "`waiting`, `admitted` (with the pass), `expired` or `closed`", body = QueueStatus),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_in_queue`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`queue_off`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_my_queue_status(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<impl IntoResponse> {
    let (room, rate) = state
        .rooms
        .get(&state.db, state.live.cache.as_ref(), id)
        .await?;
    let status = status_of(&state, &room, rate, user.id, true)
        .await?
        .ok_or_else(not_in_queue)?;
    Ok((crate::limits::no_store(), axum::Json(status)))
}

/// Leave the waiting room (waiting, or admitted and giving the pass back).
#[utoipa::path(delete, path = "/parties/{id}/queue/me", tag = "queue", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id")),
    responses(
        (status = 204, description = "Left"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_in_queue`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`queue_off`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn leave_queue(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    room_or_off(&state.db, id).await?;
    if !state.live.queue.leave(id, user.id).await? {
        return Err(not_in_queue());
    }
    notify(&state, id, &Notice::Changed).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Follow my place over Server-Sent Events: `position` events while waiting, then one of
/// `admitted` (with the pass), `expired`, `closed`, `left` or `ended` (I logged out), after which
/// the stream ends. At most `GONGGU_MAX_STREAMS_PER_USER` streams per user (429 `too_many_streams`).
/// Comments keep the connection alive; an open stream counts as following.
#[utoipa::path(get, path = "/parties/{id}/queue/me/events", tag = "queue", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id")),
    responses(
        (status = 200, description = "An event stream; each event's data is a QueueStatus", content_type = "text/event-stream", body = follow::QueueEvent),
        (status = 401, description = "`unauthorized`, `invalid_ticket`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_streams`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_in_queue`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`queue_off`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn follow_my_queue_status(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    user: crate::auth::StreamUser,
) -> ApiResult<impl IntoResponse> {
    let (slot, sessions) = crate::streams::open(
        &state.streams,
        state.live.bus.as_ref(),
        user.id,
        state.settings.max_streams_per_user,
    )
    .await?;
    let sub = state.live.bus.subscribe(&room::topic(id)).await?;
    let room = room_or_off(&state.db, id).await?;
    let rate = rate_per_min(state.live.cache.as_ref(), &room).await;
    if status_of(&state, &room, rate, user.id, true)
        .await?
        .is_none()
    {
        return Err(not_in_queue());
    }
    follow::follow(state, room, user.id, sub, sessions, slot).await
}

/// A waiting room as its leader sees it.
#[derive(Serialize, ToSchema)]
pub struct RoomView {
    pub party_id: i64,
    /// `open`, `paused` or `closed`.
    pub state: String,
    /// Configured admissions per minute.
    pub rate_per_min: i64,
    /// Admissions per minute measured over the last minute (the configured rate until measured).
    pub admission_rate_per_min: f64,
    /// Whether a burst of join attempts turned the room on.
    pub auto_opened: bool,
    pub waiting: u64,
    /// Unexpired, unused admission passes.
    pub passes_in_flight: u64,
    pub admitted_total: i64,
    pub dropped_total: i64,
    pub expired_total: i64,
    pub free_seats: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<String>,
}

async fn room_view(state: &AppState, room: Room, party: &Party) -> ApiResult<RoomView> {
    let counts = state.live.queue.counts(room.party_id, state.now()).await?;
    Ok(RoomView {
        party_id: room.party_id,
        admission_rate_per_min: rate_per_min(state.live.cache.as_ref(), &room).await,
        state: room.state.to_string(),
        rate_per_min: room.rate_per_min,
        auto_opened: room.auto_opened != 0,
        waiting: counts.waiting,
        passes_in_flight: counts.in_flight,
        admitted_total: room.admitted_total,
        dropped_total: room.dropped_total,
        expired_total: room.expired_total,
        free_seats: party.capacity - party.joined,
        close_reason: room.close_reason,
    })
}

/// The party, when `user` leads it or is an operator (`GONGGU_OPERATOR_EMAILS`).
async fn led_party(state: &AppState, id: i64, user: AuthUser) -> ApiResult<Party> {
    let party = party_or_404(state, id).await?;
    if party.leader_id != user.id && !is_operator(state, user).await? {
        return Err(ApiError::forbidden(
            "not_party_leader",
            "only the party's leader (or an operator) may do this",
        ));
    }
    Ok(party)
}

async fn is_operator(state: &AppState, user: AuthUser) -> ApiResult<bool> {
    crate::auth::is_operator(state, user.id).await
}

/// The waiting room of a party I lead: waiting, passes in flight, admission rate, counters.
#[utoipa::path(get, path = "/parties/{id}/queue", tag = "queue", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id")),
    responses(
        (status = 200, description = "The room", body = RoomView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_party_leader`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`party_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`queue_off`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_queue(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RoomView>> {
    let party = led_party(&state, id, user).await?;
    let room = room_or_off(&state.db, id).await?;
    Ok(axum::Json(room_view(&state, room, &party).await?))
}

/// Options of an opening room.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct OpenQueueRequest {
    /// Admissions per minute, 1 to 60000 (default `GONGGU_QUEUE_RATE_PER_MIN`).
    #[schema(minimum = 1, maximum = 60000)]
    pub rate_per_min: Option<i64>,
}

/// Turn the waiting room on (or back on after it closed). From then on, booking needs a pass.
#[utoipa::path(post, path = "/parties/{id}/queue/open", tag = "queue", security(("bearer" = [])),
    request_body(content = Option<OpenQueueRequest>, description = "Optional; an empty body keeps the defaults"),
    params(("id" = i64, Path, description = "Party id")),
    responses(
        (status = 200, description = "The room, open", body = RoomView),
        (status = 400, description = "`malformed_request`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_party_leader`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`party_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_party_status` (only a recruiting party)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: a body that is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` naming `rate_per_min`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn open_queue(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> ApiResult<axum::Json<RoomView>> {
    require_json_if_present(&headers, &body)?;
    let trimmed = body.trim_ascii();
    let req: OpenQueueRequest = if trimmed.is_empty() || trimmed == b"null" {
        OpenQueueRequest::default()
    } else {
        parse_json(&body)?
    };
    let rate = match req.rate_per_min {
        None => state.settings.queue.rate_per_min,
        Some(r) if RATE_PER_MIN.contains(&r) => r,
        Some(_) => {
            return Err(ApiError::invalid(
                "rate_per_min",
                format!(
                    "rate_per_min must be between {} and {}",
                    RATE_PER_MIN.start(),
                    RATE_PER_MIN.end()
                ),
            ))
        }
    };
    let party = led_party(&state, id, user).await?;
    if party.status != PartyStatus::Recruiting {
        return Err(ApiError::conflict(
            "invalid_party_status",
            format!(
                "only a recruiting party can open a waiting room; it is {}",
                party.status
            ),
        ));
    }
    let room = rooms::open_room(&state.db, id, rate, state.now()).await?;
    tracing::info!(party.id = id, rate_per_min = rate, "waiting room opened");
    Ok(axum::Json(room_view(&state, room, &party).await?))
}

/// Moves a led party's room between states, or says why it cannot.
async fn switch_room(
    state: &AppState,
    id: i64,
    user: AuthUser,
    from: RoomState,
    to: RoomState,
) -> ApiResult<axum::Json<RoomView>> {
    let party = led_party(state, id, user).await?;
    let Some(room) = rooms::change_state(&state.db, id, &[from], to, None, state.now()).await?
    else {
        // Read the room only to say why: it is off, or in another state.
        let current = room_or_off(&state.db, id).await?;
        return Err(ApiError::conflict(
            "invalid_queue_state",
            format!("the waiting room is {}, not {from}", current.state),
        ));
    };
    notify(state, id, &Notice::Changed).await;
    Ok(axum::Json(room_view(state, room, &party).await?))
}

/// Pause admissions; people can still enter and keep their places.
#[utoipa::path(post, path = "/parties/{id}/queue/pause", tag = "queue", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id")),
    responses(
        (status = 200, description = "The room, paused", body = RoomView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_party_leader`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`party_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`queue_off`, `invalid_queue_state`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn pause_queue(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RoomView>> {
    switch_room(&state, id, user, RoomState::Open, RoomState::Paused).await
}

/// Resume admissions of a paused room.
#[utoipa::path(post, path = "/parties/{id}/queue/resume", tag = "queue", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id")),
    responses(
        (status = 200, description = "The room, open", body = RoomView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_party_leader`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`party_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`queue_off`, `invalid_queue_state`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn resume_queue(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RoomView>> {
    switch_room(&state, id, user, RoomState::Paused, RoomState::Open).await
}

/// Turn the waiting room off (leader or operator): everyone waiting is told `closed` with reason
/// `leader`, unused passes lapse, and bookings no longer need a pass. A burst of join attempts does
/// not turn a room back on once it has been closed; the leader may open it again.
#[utoipa::path(post, path = "/parties/{id}/queue/close", tag = "queue", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id")),
    responses(
        (status = 200, description = "The room, closed", body = RoomView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_party_leader`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`party_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`queue_off`, `invalid_queue_state` (already closed)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn close_queue(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RoomView>> {
    let party = led_party(&state, id, user).await?;
    let room = room_or_off(&state.db, id).await?;
    if !room.gates_bookings() {
        return Err(ApiError::conflict(
            "invalid_queue_state",
            format!("the waiting room is {}", room.state),
        ));
    }
    admitter::close(&state, &room, rooms::reason::LEADER, state.now()).await?;
    let room = room_or_off(&state.db, id).await?;
    tracing::info!(
        party.id = id,
        user.id = user.id,
        "waiting room closed by its leader"
    );
    Ok(axum::Json(room_view(&state, room, &party).await?))
}
