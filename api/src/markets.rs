//! Markets (read side): get one, list with filters.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::markets::{self, Market, MarketFilter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Path, Query};
use crate::paging::{self, optional_text, Page};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_markets))
        .routes(routes!(get_market))
}

/// A market where parties meet.
#[derive(Serialize, ToSchema)]
pub struct MarketView {
    pub id: i64,
    pub name: String,
    /// hypermarket, supermarket, traditional_market, department_store, warehouse_club, ...
    pub kind: String,
    pub road_address: Option<String>,
    /// Absent when the public data had no usable coordinates.
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub source: String,
    pub source_id: String,
    pub active: bool,
}

impl From<Market> for MarketView {
    fn from(m: Market) -> Self {
        Self {
            id: m.id,
            name: m.name,
            kind: m.kind,
            road_address: m.road_address,
            lat: m.lat,
            lng: m.lng,
            source: m.source,
            source_id: m.source_id,
            active: m.active == 1,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MarketQuery {
    /// Market kind, e.g. `traditional_market`.
    #[param(max_length = 40)]
    kind: Option<String>,
    /// Part of the market's name.
    #[param(max_length = 100)]
    q: Option<String>,
    /// Start of the road address, e.g. `서울특별시 마포구`.
    #[param(max_length = 100)]
    region: Option<String>,
    cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// List markets by id, with optional filters.
#[utoipa::path(get, path = "/markets", tag = "markets", params(MarketQuery),
    responses(
        (status = 200, description = "A page of markets", body = Page<MarketView>),
        (status = 400, description = "`malformed_request` naming the parameter", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` naming the parameter", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_markets(
    State(state): State<AppState>,
    Query(q): Query<MarketQuery>,
) -> ApiResult<axum::Json<Page<MarketView>>> {
    let limit = paging::limit(q.limit)?;
    let after = paging::cursor(q.cursor.as_deref())?;
    let filter = MarketFilter {
        kind: optional_text(q.kind, "kind", 40)?,
        q: optional_text(q.q, "q", 100)?,
        region: optional_text(q.region, "region", 100)?,
        include_inactive: false,
    };
    let (rows, next_cursor) = markets::list_markets(&state.db, &filter, after, limit).await?;
    Ok(axum::Json(Page {
        items: rows.into_iter().map(MarketView::from).collect(),
        next_cursor,
    }))
}

/// One market.
#[utoipa::path(get, path = "/markets/{id}", tag = "markets", params(("id" = i64, Path, description = "Market id")),
    responses(
        (status = 200, description = "The market", body = MarketView),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_market(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<MarketView>> {
    let market = markets::get_market(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("market"))?;
    Ok(axum::Json(market.into()))
}
