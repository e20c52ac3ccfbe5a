//! Markets: offline marts and traditional markets where parties meet. Written by ingest and seed,
//! read by the API.

use serde::Serialize;
use sqlx::{AnyConnection, FromRow};

use crate::cursor;
use crate::db::Db;
use crate::error::Result;
use crate::query::Filter;

#[derive(Clone, Debug, FromRow, Serialize, PartialEq)]
pub struct Market {
    pub id: i64,
    pub source: String,
    pub source_id: String,
    pub name: String,
    pub kind: String,
    pub road_address: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub active: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, source, source_id, name, kind, road_address, lat, lng, active, created_at, updated_at";

/// Filters for [`list_markets`]; empty fields do not filter.
#[derive(Clone, Debug, Default)]
pub struct MarketFilter {
    pub kind: Option<String>,
    /// Part of the name.
    pub q: Option<String>,
    /// Start of the road address, e.g. `서울특별시` or `부산광역시 해운대구`.
    pub region: Option<String>,
    pub include_inactive: bool,
}

pub async fn get_market(db: &Db, id: i64) -> Result<Option<Market>> {
    get_market_on(&mut *db.pool().acquire().await?, id).await
}

pub async fn get_market_on(conn: &mut AnyConnection, id: i64) -> Result<Option<Market>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "SELECT {COLUMNS} FROM markets WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// A page of markets in id order, after `after` (exclusive), and the cursor of the next page.
pub async fn list_markets(
    db: &Db,
    filter: &MarketFilter,
    after: Option<i64>,
    limit: usize,
) -> Result<(Vec<Market>, Option<String>)> {
    let mut f = Filter::new();
    if !filter.include_inactive {
        f.raw("active = 1");
    }
    if let Some(kind) = &filter.kind {
        f.eq_str("kind", kind);
    }
    if let Some(q) = &filter.q {
        f.contains("name", q);
    }
    if let Some(region) = &filter.region {
        f.starts_with("road_address", region);
    }
    f.gt_i64("id", after.unwrap_or(0));
    let sql = format!(
        "SELECT {COLUMNS} FROM markets {} ORDER BY id LIMIT {}",
        f.where_clause(),
        limit + 1
    );
    let rows: Vec<Market> = f
        .bind_all(sqlx::query_as(sqlx::AssertSqlSafe(&*sql)))
        .fetch_all(db.pool())
        .await?;
    Ok(cursor::page(rows, limit, |m| m.id))
}

/// Number of markets (active or not).
pub async fn count_markets(db: &Db) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM markets")
        .fetch_one(db.pool())
        .await?;
    Ok(n)
}

/// Active markets that have coordinates (what the nearby index holds).
pub async fn list_located_markets(db: &Db) -> Result<Vec<Market>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "SELECT {COLUMNS} FROM markets WHERE active = 1 AND lat IS NOT NULL AND lng IS NOT NULL ORDER BY id"
    )))
    .fetch_all(db.pool())
    .await?)
}
