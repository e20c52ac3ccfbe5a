//! Parties and bookings: create, read, list, edit, cancel; join and leave.

pub mod attendance;
pub mod types;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use store::bookings;
use store::parties::{self, PartyError, PartyFilter, PartyStatus, Role};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use types::{CancelPartyRequest, CreatePartyRequest, PartyView, UpdatePartyRequest};

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Path, Query};
use crate::paging::{self, Page};
use crate::state::AppState;
use crate::time::Timestamp;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_party, list_parties))
        .routes(routes!(get_party, update_party))
        .routes(routes!(cancel_party))
        .routes(routes!(join_party))
        .routes(routes!(leave_party))
        .routes(routes!(list_my_parties))
        .routes(routes!(
            attendance::mark_attendance,
            attendance::get_attendance
        ))
}

/// Create a party; the caller leads it and holds its first seat.
#[utoipa::path(post, path = "/parties", tag = "parties", request_body = CreatePartyRequest,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe (at most 255 characters)")),
    responses(
        (status = 201, description = "Created", body = PartyView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`user_banned`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, `market_not_found`, `item_not_found`, `market_without_location`, naming the field", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_party(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<CreatePartyRequest>,
) -> ApiResult<impl IntoResponse> {
    let new = req.parse(user.id, state.now(), state.latest_meet())?;
    let party = parties::create_party(&state.db, &new, state.now()).await?;
    tracing::info!(party.id = party.id, user.id = user.id, "party created");
    let location = format!("/api/v1/parties/{}", party.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(PartyView::from(party)),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PartyQuery {
    market_id: Option<i64>,
    item_id: Option<i64>,
    /// recruiting, full, closed, completed or cancelled.
    status: Option<String>,
    cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// List parties, newest first.
#[utoipa::path(get, path = "/parties", tag = "parties", params(PartyQuery),
    responses(
        (status = 200, description = "A page of parties", body = Page<PartyView>),
        (status = 400, description = "`malformed_request` naming the parameter", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` naming the parameter", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_parties(
    State(state): State<AppState>,
    Query(q): Query<PartyQuery>,
) -> ApiResult<axum::Json<Page<PartyView>>> {
    let limit = paging::limit(q.limit)?;
    let before = paging::cursor(q.cursor.as_deref())?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<PartyStatus>)
        .transpose()
        .map_err(|_| {
            ApiError::invalid(
                "status",
                format!("status must be one of {}", PartyStatus::names()),
            )
        })?;
    let filter = PartyFilter {
        market_id: q.market_id,
        item_id: q.item_id,
        status,
    };
    let (rows, next_cursor) = parties::list_parties(&state.db, &filter, before, limit).await?;
    Ok(axum::Json(Page {
        items: rows.into_iter().map(PartyView::from).collect(),
        next_cursor,
    }))
}

/// One party.
#[utoipa::path(get, path = "/parties/{id}", tag = "parties", params(("id" = i64, Path, description = "Party id")),
    responses(
        (status = 200, description = "The party", body = PartyView),
        (status = 404, description = "`party_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_party(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<PartyView>> {
    let party = parties::get_party(&state.db, id)
        .await?
        .ok_or(PartyError::NotFound)?;
    Ok(axum::Json(party.into()))
}

/// Edit title, description or meet time (leader only, before the meet).
#[utoipa::path(patch, path = "/parties/{id}", tag = "parties", request_body = UpdatePartyRequest,
    security(("bearer" = [])), params(("id" = i64, Path, description = "Party id")),
    responses(
        (status = 200, description = "Updated", body = PartyView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_party_leader`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`party_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_party_status`, `party_already_met`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` naming the field", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_party(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
    Json(req): Json<UpdatePartyRequest>,
) -> ApiResult<axum::Json<PartyView>> {
    let patch = req.parse(state.now(), state.latest_meet())?;
    let party = parties::update_party(&state.db, id, user.id, &patch, state.now()).await?;
    Ok(axum::Json(party.into()))
}

/// Cancel a party before it meets (leader only).
#[utoipa::path(post, path = "/parties/{id}/cancel", tag = "parties", request_body = CancelPartyRequest,
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 200, description = "Cancelled", body = PartyView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_party_leader`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`party_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_party_status`, `party_already_met`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` naming `reason`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn cancel_party(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
    Json(req): Json<CancelPartyRequest>,
) -> ApiResult<axum::Json<PartyView>> {
    let reason = req.parse()?;
    let party = parties::cancel_party(&state.db, id, user.id, &reason, state.now()).await?;
    tracing::info!(party.id = id, user.id = user.id, "party cancelled");
    Ok(axum::Json(party.into()))
}

/// A seat taken.
#[derive(Serialize, ToSchema)]
pub struct BookingView {
    pub id: i64,
    pub party_id: i64,
    pub user_id: i64,
    /// joined, left, attended or no_show.
    pub status: String,
    pub created_at: Timestamp,
    /// The party after the booking.
    pub party: PartyView,
}

/// Join a party: takes one seat, never more than the capacity, whatever the concurrency.
#[utoipa::path(post, path = "/parties/{id}/bookings", tag = "bookings", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
        ("Admission-Pass" = Option<String>, Header, description = "The waiting room's pass; required while the party's room is on")),
    responses(
        (status = 201, description = "Joined", body = BookingView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`user_banned`; with a waiting room on: `admission_required`, `invalid_admission_pass`, `admission_pass_wrong_party`, `admission_pass_wrong_user`, `admission_pass_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`party_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`party_full`, `deadline_passed`, `party_cancelled`, `party_closed`, `already_member`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn join_party(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let gate = crate::queue::check_booking(&state, id, user.id, &headers).await?;
    let (party, booking) = bookings::join_party(&state.db, id, user.id, state.now()).await?;
    gate.consume(&state, id, user.id).await;
    tracing::info!(party.id = id, user.id = user.id, "joined party");
    Ok((
        StatusCode::CREATED,
        axum::Json(BookingView {
            id: booking.id,
            party_id: booking.party_id,
            user_id: booking.user_id,
            status: booking.status.to_string(),
            created_at: Timestamp(booking.created_at),
            party: party.into(),
        }),
    ))
}

/// Leave a party before its booking deadline; the seat goes back.
#[utoipa::path(delete, path = "/parties/{id}/bookings/me", tag = "bookings", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id")),
    responses(
        (status = 200, description = "Left; the party after", body = PartyView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`party_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`not_a_member`, `leader_cannot_leave`, `deadline_passed`, `party_cancelled`, `party_closed`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn leave_party(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<PartyView>> {
    let party = bookings::leave_party(&state.db, id, user.id, state.now()).await?;
    tracing::info!(party.id = id, user.id = user.id, "left party");
    Ok(axum::Json(party.into()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MyPartyQuery {
    /// `leader`, `member` (parties led by others) or `any` (default).
    role: Option<String>,
    cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// One of my parties.
#[derive(Serialize, ToSchema)]
pub struct MyPartyView {
    #[serde(flatten)]
    pub party: PartyView,
    /// `leader` or `member`.
    pub role: &'static str,
    /// My booking: joined, attended or no_show.
    pub booking_status: String,
}

/// The parties I lead or belong to, newest first.
#[utoipa::path(get, path = "/me/parties", tag = "parties", security(("bearer" = [])), params(MyPartyQuery),
    responses(
        (status = 200, description = "A page of my parties", body = Page<MyPartyView>),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` naming the parameter", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_my_parties(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<MyPartyQuery>,
) -> ApiResult<axum::Json<Page<MyPartyView>>> {
    let limit = paging::limit(q.limit)?;
    let before = paging::cursor(q.cursor.as_deref())?;
    let role = match q.role.as_deref() {
        None | Some("any") => Role::Any,
        Some("leader") => Role::Leader,
        Some("member") => Role::Member,
        Some(_) => {
            return Err(ApiError::invalid(
                "role",
                "role must be leader, member or any",
            ))
        }
    };
    let (rows, next_cursor) =
        parties::list_user_parties(&state.db, user.id, role, before, limit).await?;
    Ok(axum::Json(Page {
        items: rows
            .into_iter()
            .map(|mp| MyPartyView {
                role: if mp.party.leader_id == user.id {
                    "leader"
                } else {
                    "member"
                },
                booking_status: mp.booking_status.to_string(),
                party: mp.party.into(),
            })
            .collect(),
        next_cursor,
    }))
}
