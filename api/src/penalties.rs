//! Penalties and the public profile: `GET /me/penalties`, `GET /users/{id}` (the trust signal
//! shoppers read before joining), and an operator's `DELETE /penalties/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::penalties::{self, Penalty};
use store::users;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Path, Query};
use crate::paging::{self, Page};
use crate::state::AppState;
use crate::time::Timestamp;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_my_penalties))
        .routes(routes!(get_profile))
        .routes(routes!(revoke_penalty))
}

/// A no-show penalty.
#[derive(Serialize, ToSchema)]
pub struct PenaltyView {
    pub id: i64,
    pub party_id: i64,
    pub created_at: Timestamp,
    /// Set when the leader corrected the mark or an operator revoked it.
    pub revoked_at: Option<Timestamp>,
}

impl From<Penalty> for PenaltyView {
    fn from(p: Penalty) -> Self {
        Self {
            id: p.id,
            party_id: p.party_id,
            created_at: Timestamp(p.created_at),
            revoked_at: p.revoked_at.map(Timestamp),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PenaltyQuery {
    cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// My penalties, newest first (revoked ones included, with when).
#[utoipa::path(get, path = "/me/penalties", tag = "auth", security(("bearer" = [])), params(PenaltyQuery),
    responses(
        (status = 200, description = "A page of my penalties", body = Page<PenaltyView>),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_my_penalties(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<PenaltyQuery>,
) -> ApiResult<axum::Json<Page<PenaltyView>>> {
    let limit = paging::limit(q.limit)?;
    let before = paging::cursor(q.cursor.as_deref())?;
    let (rows, next_cursor) = penalties::list_for_user(&state.db, user.id, before, limit).await?;
    Ok(axum::Json(Page {
        items: rows.into_iter().map(PenaltyView::from).collect(),
        next_cursor,
    }))
}

/// A user as other shoppers see them.
#[derive(Serialize, ToSchema)]
pub struct ProfileView {
    pub id: i64,
    pub nickname: String,
    pub member_since: Timestamp,
    /// Penalties of the last `GONGGU_PENALTY_WINDOW_DAYS` not revoked.
    pub active_penalties: i64,
    /// Set while the user is banned from creating and joining parties.
    pub banned_until: Option<Timestamp>,
    pub parties_led: i64,
    pub parties_attended: i64,
}

/// A user's public profile.
#[utoipa::path(get, path = "/users/{id}", tag = "auth", params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "The profile", body = ProfileView),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_profile(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<ProfileView>> {
    let user = users::get_user(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let now = state.now();
    let active = penalties::active_count(
        &state.db,
        state.live.cache.as_ref(),
        id,
        now,
        &state.settings.lifecycle.penalties,
    )
    .await?;
    let (parties_led, parties_attended) = users::party_counts(&state.db, id).await?;
    Ok(axum::Json(ProfileView {
        id: user.id,
        nickname: user.nickname,
        member_since: Timestamp(user.created_at),
        active_penalties: active,
        banned_until: user.banned_until.filter(|t| *t > now).map(Timestamp),
        parties_led,
        parties_attended,
    }))
}

/// Revoke a penalty (operators only): final, and the user's ban is recomputed.
#[utoipa::path(delete, path = "/penalties/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Penalty id")),
    responses(
        (status = 200, description = "The penalty, revoked", body = PenaltyView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: operators only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such penalty, or it is revoked already", body = Problem, content_type = "application/problem+json"),
    ))]
async fn revoke_penalty(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, axum::Json<PenaltyView>)> {
    if !crate::auth::is_operator(&state, user.id).await? {
        return Err(ApiError::forbidden(
            "forbidden",
            "only operators may revoke penalties",
        ));
    }
    let policy = state.settings.lifecycle.penalties;
    let revoked = penalties::revoke(&state.db, id, user.id, state.now(), &policy)
        .await?
        .ok_or_else(|| ApiError::not_found("penalty"))?;
    penalties::forget_count(state.live.cache.as_ref(), revoked.user_id).await;
    tracing::info!(penalty.id = id, operator.id = user.id, "penalty revoked");
    Ok((StatusCode::OK, axum::Json(revoked.into())))
}
