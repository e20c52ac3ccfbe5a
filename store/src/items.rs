//! Items: the public standard item list (품목). Written by ingest and seed, read by the API.

use serde::Serialize;
use sqlx::{AnyConnection, FromRow};

use crate::cursor;
use crate::db::Db;
use crate::error::Result;
use crate::query::Filter;

#[derive(Clone, Debug, FromRow, Serialize, PartialEq)]
pub struct Item {
    pub id: i64,
    pub source: String,
    pub source_id: String,
    pub name: String,
    pub category_code: Option<String>,
    pub unit: Option<String>,
    pub base_count: Option<f64>,
    pub total_count: Option<f64>,
    pub total_unit: Option<String>,
    pub active: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, source, source_id, name, category_code, unit, base_count, total_count, \
                       total_unit, active, created_at, updated_at";

/// Filters for [`list_items`]; empty fields do not filter.
#[derive(Clone, Debug, Default)]
pub struct ItemFilter {
    /// Keyword: part of the name.
    pub q: Option<String>,
    /// Category code or a prefix of it (`03` grains, `0301` ...).
    pub category: Option<String>,
    pub include_inactive: bool,
}

pub async fn get_item(db: &Db, id: i64) -> Result<Option<Item>> {
    get_item_on(&mut *db.pool().acquire().await?, id).await
}

pub async fn get_item_on(conn: &mut AnyConnection, id: i64) -> Result<Option<Item>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "SELECT {COLUMNS} FROM items WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// A page of items in id order, after `after` (exclusive), and the cursor of the next page.
pub async fn list_items(
    db: &Db,
    filter: &ItemFilter,
    after: Option<i64>,
    limit: usize,
) -> Result<(Vec<Item>, Option<String>)> {
    let mut f = Filter::new();
    if !filter.include_inactive {
        f.raw("active = 1");
    }
    if let Some(q) = &filter.q {
        f.contains("name", q);
    }
    if let Some(category) = &filter.category {
        f.starts_with("category_code", category);
    }
    f.gt_i64("id", after.unwrap_or(0));
    let sql = format!(
        "SELECT {COLUMNS} FROM items {} ORDER BY id LIMIT {}",
        f.where_clause(),
        limit + 1
    );
    let rows: Vec<Item> = f
        .bind_all(sqlx::query_as(sqlx::AssertSqlSafe(&*sql)))
        .fetch_all(db.pool())
        .await?;
    Ok(cursor::page(rows, limit, |i| i.id))
}

/// Category code of every item, for filtering search results by category in memory.
pub async fn category_codes(db: &Db) -> Result<Vec<(i64, Option<String>)>> {
    Ok(sqlx::query_as("SELECT id, category_code FROM items")
        .fetch_all(db.pool())
        .await?)
}
