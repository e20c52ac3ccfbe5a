//! Ingest runs (read side): what each `gonggu ingest` run did, newest first.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::catalog::Table;
use store::ingest_runs::{self, IngestRun, RunFilter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, Problem};
use crate::extract::Query;
use crate::paging::{self, optional_text, Page};
use crate::state::AppState;
use crate::time::Timestamp;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_ingest_runs))
}

/// One run of `gonggu ingest`.
#[derive(Serialize, ToSchema)]
pub struct IngestRunView {
    pub id: i64,
    /// The natural-key namespace of the rows, e.g. `price-api`, `paged-api:getItems`,
    /// `csv:traditional-markets`.
    pub source: String,
    /// `items` or `markets`.
    pub kind: String,
    /// `running`, `succeeded`, `partial` (some pages failed after their retries; the rest applied,
    /// nothing deactivated) or `failed` (stopped; chunks committed before stay applied).
    pub status: String,
    pub started_at: Timestamp,
    /// Absent while running (or when the process died mid-run).
    pub finished_at: Option<Timestamp>,
    /// HTTP calls made, retries included: what the API quota counts.
    pub calls: i64,
    pub pages: i64,
    pub rows_fetched: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    /// Rows that vanished from the source and were marked inactive.
    pub deactivated: i64,
    /// Rows that failed validation.
    pub rejected: i64,
    /// Rows dropped because their id came earlier in the run.
    pub duplicates: i64,
    /// Markets kept without usable coordinates (left out of nearby search).
    pub no_coordinates: i64,
    pub error: Option<String>,
    /// Pages that failed, e.g. `[3, 7]`.
    pub failed_pages: Vec<u32>,
}

impl From<IngestRun> for IngestRunView {
    fn from(r: IngestRun) -> Self {
        let failed_pages = r.failed_page_numbers();
        Self {
            id: r.id,
            source: r.source,
            kind: r.kind,
            status: r.status,
            started_at: Timestamp(r.started_at),
            finished_at: r.finished_at.map(Timestamp),
            calls: r.calls,
            pages: r.pages,
            rows_fetched: r.rows_fetched,
            inserted: r.inserted,
            updated: r.updated,
            unchanged: r.unchanged,
            deactivated: r.deactivated,
            rejected: r.rejected,
            duplicates: r.duplicates,
            no_coordinates: r.no_coordinates,
            error: r.error,
            failed_pages,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IngestRunQuery {
    /// `items` or `markets`.
    kind: Option<String>,
    /// The run's source, e.g. `price-api`.
    #[param(max_length = 200)]
    source: Option<String>,
    /// `running`, `succeeded`, `partial` or `failed`.
    status: Option<String>,
    cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// Recent ingest runs, newest first. Who may read them is configured
/// (`GONGGU_INGEST_RUNS_ACCESS`: public, signed-in or operators).
#[utoipa::path(get, path = "/ingest/runs", tag = "ingest", params(IngestRunQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of runs, newest first", body = Page<IngestRunView>),
        (status = 401, description = "`unauthorized` (when not public)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`operators_only`", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`malformed_request` naming the parameter", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` naming the parameter", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_ingest_runs(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(q): Query<IngestRunQuery>,
) -> ApiResult<axum::Json<Page<IngestRunView>>> {
    crate::auth::check_access(&state, &headers, state.settings.ingest_runs_access).await?;
    let limit = paging::limit(q.limit)?;
    let before = paging::cursor(q.cursor.as_deref())?;
    let kind = paging::choice(
        q.kind,
        "kind",
        &[Table::Items.as_str(), Table::Markets.as_str()],
    )?;
    let status = paging::choice(
        q.status,
        "status",
        &[
            ingest_runs::status::RUNNING,
            ingest_runs::status::SUCCEEDED,
            ingest_runs::status::PARTIAL,
            ingest_runs::status::FAILED,
        ],
    )?;
    let filter = RunFilter {
        kind,
        source: optional_text(q.source, "source", 200)?,
        status,
    };
    let (rows, next_cursor) = ingest_runs::list_runs(&state.db, &filter, before, limit).await?;
    Ok(axum::Json(Page {
        items: rows.into_iter().map(IngestRunView::from).collect(),
        next_cursor,
    }))
}
