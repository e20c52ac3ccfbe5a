//! Operators' view of the background jobs: `GET /admin/jobs` lists them with their attempts and
//! last error, `POST /admin/jobs/{id}/retry` puts a failed or dead one back in the queue.

use axum::extract::State;
use serde::{Deserialize, Serialize};
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
        .routes(routes!(list_jobs))
        .routes(routes!(retry_job))
}

/// A background job.
#[derive(Serialize, ToSchema)]
pub struct JobView {
    /// A ULID.
    pub id: String,
    /// `close`, `complete`, `remind`, `settle_penalty`, `ingest` or `housekeeping`.
    pub kind: String,
    /// The idempotency key it was pushed under (names the job and what made it due).
    pub key: Option<String>,
    /// `pending`, `scheduled`, `running`, `done`, `failed` (will retry) or `dead`.
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: Timestamp,
    pub done_at: Option<Timestamp>,
    /// The last error, when the last attempt failed.
    pub last_error: Option<String>,
}

impl From<jobs::store::JobRow> for JobView {
    fn from(row: jobs::store::JobRow) -> Self {
        let last_error = row
            .last_result
            .as_deref()
            .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
            .and_then(|v| {
                v.get("Err")
                    .map(|e| e.as_str().map_or(e.to_string(), str::to_owned))
            });
        Self {
            id: row.id,
            kind: row.kind,
            key: row.idempotency_key,
            state: row.state,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            run_at: Timestamp(row.run_at.saturating_mul(1000)),
            done_at: row.done_at.map(|t| Timestamp(t.saturating_mul(1000))),
            last_error,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// `pending`, `scheduled`, `running`, `done`, `failed` or `dead`.
    state: Option<String>,
    /// `close`, `complete`, `remind`, `settle_penalty`, `ingest` or `housekeeping`.
    #[param(max_length = 40)]
    kind: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

fn runtime(state: &AppState) -> ApiResult<&jobs::Jobs> {
    state.jobs.get().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "jobs_unavailable",
            "this instance has no job runtime",
        )
    })
}

/// Background jobs, newest first (operators only).
#[utoipa::path(get, path = "/admin/jobs", tag = "admin", security(("bearer" = [])), params(JobQuery),
    responses(
        (status = 200, description = "A page of jobs", body = Page<JobView>),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: operators only", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`jobs_unavailable`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_jobs(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<JobQuery>,
) -> ApiResult<axum::Json<Page<JobView>>> {
    crate::auth::require_operator(&state, &user).await?;
    let limit = paging::limit(q.limit)?;
    let job_state = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            jobs::store::JobState::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "state",
                    "state must be pending, scheduled, running, done, failed or dead",
                )
            })
        })
        .transpose()?;
    let kind = paging::optional_text(q.kind, "kind", 40)?;
    let before = q.cursor.filter(|c| !c.is_empty());
    let runtime = runtime(&state)?;
    let mut rows = runtime
        .store
        .list(
            job_state,
            kind.as_deref(),
            before.as_deref(),
            limit as i64 + 1,
            state.now() / 1000,
        )
        .await
        .map_err(ApiError::internal)?;
    let next_cursor = (rows.len() > limit).then(|| {
        rows.truncate(limit);
        rows.last().map(|r| r.id.clone())
    });
    Ok(axum::Json(Page {
        items: rows.into_iter().map(JobView::from).collect(),
        next_cursor: next_cursor.flatten(),
    }))
}

/// Put a failed or dead job back in the queue, attempts reset (operators only).
#[utoipa::path(post, path = "/admin/jobs/{id}/retry", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Job id (a ULID)")),
    responses(
        (status = 204, description = "Queued again"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: operators only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no failed or dead job with this id", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`jobs_unavailable`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn retry_job(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::http::StatusCode> {
    crate::auth::require_operator(&state, &user).await?;
    let retried = runtime(&state)?
        .store
        .retry(&id)
        .await
        .map_err(ApiError::internal)?;
    if !retried {
        return Err(ApiError::not_found("failed or dead job"));
    }
    tracing::info!(job.id = %id, operator.id = user.id, "job queued again by an operator");
    Ok(axum::http::StatusCode::NO_CONTENT)
}
