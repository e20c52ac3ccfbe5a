//! Items (read side): get one, list and keyword search. Keyword searches are cached for
//! `GONGGU_SEARCH_CACHE_TTL_SECS`; any item change bumps a generation number that is part of every
//! cache key, which drops all cached searches at once on every instance.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::items::{self, Item, ItemFilter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Path, Query};
use crate::paging::{self, optional_text, Page};
use crate::state::AppState;

/// Cache key of the item generation counter (shared with ingest, which bumps it).
const GENERATION_KEY: &str = store::catalog::ITEM_SEARCH_GENERATION_KEY;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_items))
        .routes(routes!(get_item))
}

/// An item of the public item list.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ItemView {
    pub id: i64,
    pub name: String,
    /// 9-digit category code of the public list.
    pub category_code: Option<String>,
    pub unit: Option<String>,
    pub base_count: Option<f64>,
    pub total_count: Option<f64>,
    pub total_unit: Option<String>,
    pub source: String,
    pub source_id: String,
    pub active: bool,
}

impl From<Item> for ItemView {
    fn from(i: Item) -> Self {
        Self {
            id: i.id,
            name: i.name,
            category_code: i.category_code,
            unit: i.unit,
            base_count: i.base_count,
            total_count: i.total_count,
            total_unit: i.total_unit,
            source: i.source,
            source_id: i.source_id,
            active: i.active == 1,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemQuery {
    /// Keyword: part of the item's name. Searches are cached.
    #[param(max_length = 100)]
    q: Option<String>,
    /// Category code or its prefix (`03` grains and noodles, `0301` ...).
    #[param(max_length = 9)]
    category: Option<String>,
    cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// List or search items.
#[utoipa::path(get, path = "/items", tag = "items", params(ItemQuery),
    responses(
        (status = 200, description = "A page of items", body = Page<ItemView>),
        (status = 400, description = "`malformed_request` naming the parameter", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` naming the parameter", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_items(
    State(state): State<AppState>,
    Query(q): Query<ItemQuery>,
) -> ApiResult<axum::Json<Page<ItemView>>> {
    let limit = paging::limit(q.limit)?;
    let after = paging::cursor(q.cursor.as_deref())?;
    let category = paging::category(q.category)?;
    let filter = ItemFilter {
        q: optional_text(q.q, "q", 100)?,
        category,
        include_inactive: false,
    };
    let cache_key = match &filter.q {
        Some(keyword) => {
            let generation = state
                .live
                .cache
                .get(GENERATION_KEY)
                .await?
                .and_then(|b| std::str::from_utf8(&b).ok()?.parse::<i64>().ok())
                .unwrap_or(0);
            let digest = Sha256::digest(
                format!(
                    "{keyword}\u{0}{:?}\u{0}{after:?}\u{0}{limit}",
                    filter.category
                )
                .as_bytes(),
            );
            Some(format!("items:search:{generation}:{}", hex::encode(digest)))
        }
        None => None,
    };
    if let Some(key) = &cache_key {
        if let Some(hit) = state.live.cache.get(key).await? {
            if let Ok(page) = serde_json::from_slice::<Page<ItemView>>(&hit) {
                state.metrics.record(|| {
                    metrics::counter!("gonggu_item_search_cache_total", "result" => "hit")
                        .increment(1)
                });
                return Ok(axum::Json(page));
            }
        }
        state.metrics.record(|| {
            metrics::counter!("gonggu_item_search_cache_total", "result" => "miss").increment(1)
        });
    }
    let (rows, next_cursor) = items::list_items(&state.db, &filter, after, limit).await?;
    let page = Page {
        items: rows.into_iter().map(ItemView::from).collect(),
        next_cursor,
    };
    if let Some(key) = &cache_key {
        let bytes = serde_json::to_vec(&page).map_err(ApiError::internal)?;
        state
            .live
            .cache
            .set(key, &bytes, state.settings.search_cache_ttl)
            .await?;
    }
    Ok(axum::Json(page))
}

/// One item.
#[utoipa::path(get, path = "/items/{id}", tag = "items", params(("id" = i64, Path, description = "Item id")),
    responses(
        (status = 200, description = "The item", body = ItemView),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_item(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<ItemView>> {
    let item = items::get_item(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("item"))?;
    Ok(axum::Json(item.into()))
}
