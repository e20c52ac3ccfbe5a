//! `PUT/GET /parties/{id}/attendance`: the leader marks who came, from the meet until the
//! attendance window closes. A `no_show` becomes a penalty through a job (see `jobs`), not here.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::attendance::{self, AttendanceError, Mark, MemberMark};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::state::{millis, AppState};
use crate::time::Timestamp;

/// One member's mark.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberMarkRequest {
    #[schema(minimum = 1)]
    pub user_id: i64,
    pub attended: bool,
}

/// Marks to set; members not named keep theirs.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttendanceRequest {
    #[schema(max_items = 50)]
    pub members: Vec<MemberMarkRequest>,
}

/// A member's booking at the meet.
#[derive(Serialize, ToSchema)]
pub struct MemberMarkView {
    pub user_id: i64,
    /// `joined` (not marked yet), `attended` or `no_show`.
    pub status: String,
    pub marked_at: Option<Timestamp>,
}

/// Every member's mark (the leader is not marked).
#[derive(Serialize, ToSchema)]
pub struct AttendanceView {
    pub party_id: i64,
    pub members: Vec<MemberMarkView>,
}

fn view(party_id: i64, marks: Vec<MemberMark>) -> AttendanceView {
    AttendanceView {
        party_id,
        members: marks
            .into_iter()
            .map(|m| MemberMarkView {
                user_id: m.user_id,
                status: m.status.to_string(),
                marked_at: m.marked_at.map(Timestamp),
            })
            .collect(),
    }
}

impl From<AttendanceError> for ApiError {
    fn from(err: AttendanceError) -> Self {
        match err {
            AttendanceError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "party_not_found", "party not found")
            }
            AttendanceError::NotLeader => {
                ApiError::forbidden("not_party_leader", "only the party's leader may do this")
            }
            AttendanceError::TooEarly(opens) => ApiError::conflict(
                "too_early",
                format!(
                    "attendance opens at the meet time, {}",
                    Timestamp(opens).to_rfc3339()
                ),
            ),
            AttendanceError::Closed(closed) => ApiError::conflict(
                "attendance_closed",
                format!("attendance closed at {}", Timestamp(closed).to_rfc3339()),
            ),
            AttendanceError::WrongStatus(status) => ApiError::conflict(
                "invalid_party_status",
                format!(
                    "attendance is taken for closed or completed parties; this one is {status}"
                ),
            ),
            AttendanceError::Invalid(invalid) => invalid.into(),
            AttendanceError::Store(e) => e.into(),
        }
    }
}

/// Mark who came (leader only), from the meet time until the attendance window closes
/// (`GONGGU_ATTENDANCE_WINDOW_DAYS`). A `no_show` earns a penalty; changing it back to attended
/// within the window revokes it.
#[utoipa::path(put, path = "/parties/{id}/attendance", tag = "bookings", request_body = AttendanceRequest,
    security(("bearer" = [])), params(("id" = i64, Path, description = "Party id")),
    responses(
        (status = 200, description = "Every member's mark", body = AttendanceView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_party_leader`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`party_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`too_early`, `attendance_closed`, `invalid_party_status`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: `members[i].user_id` is not a member, is the leader, or is named twice", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mark_attendance(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
    Json(req): Json<AttendanceRequest>,
) -> ApiResult<axum::Json<AttendanceView>> {
    let marks: Vec<Mark> = req
        .members
        .iter()
        .map(|m| Mark {
            user_id: m.user_id,
            attended: m.attended,
        })
        .collect();
    let window = millis(state.settings.lifecycle.attendance_window);
    let after = attendance::mark(&state.db, id, user.id, &marks, state.now(), window).await?;
    tracing::info!(party.id = id, marks = marks.len(), "attendance marked");
    Ok(axum::Json(view(id, after)))
}

/// Every member's mark.
#[utoipa::path(get, path = "/parties/{id}/attendance", tag = "bookings",
    security(("bearer" = [])), params(("id" = i64, Path, description = "Party id")),
    responses(
        (status = 200, description = "Every member's mark", body = AttendanceView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`party_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_attendance(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<AttendanceView>> {
    store::parties::get_party(&state.db, id)
        .await?
        .ok_or(AttendanceError::NotFound)?;
    Ok(axum::Json(view(
        id,
        attendance::marks(&state.db, id).await?,
    )))
}
