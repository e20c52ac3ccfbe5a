//! Catalog writes for ingest: items and markets upserted by their natural key `(source, source_id)`
//! in chunks, one transaction per chunk, and rows that vanished from a full source deactivated.
//!
//! Each chunk first reads the stored rows with the chunk's ids, so every row is classified as
//! inserted, updated or unchanged, and only new and changed rows are written, in one multi-row
//! `INSERT … ON CONFLICT DO UPDATE`. Re-running identical data therefore writes nothing and
//! reports every row unchanged; a dry run uses the same classification without writing.
//!
//! Market changes must reach every instance's nearby index: the chunk's transaction also writes an
//! outbox event on [`MARKETS_TOPIC`] naming the changed ids. Item changes make cached item searches
//! stale: callers bump the generation with [`invalidate_item_search`] once they are done.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, FromRow};

use crate::db::Db;
use crate::error::Result;
use crate::live::{Cache, LiveError};
use crate::outbox;

/// Topic of market changes; the nearby index reloads its markets on any event there.
pub const MARKETS_TOPIC: &str = "markets";

/// Event kinds on [`MARKETS_TOPIC`]. The payload is [`MarketIds`].
pub mod market_kind {
    /// Markets inserted or changed (coordinates, name, kind, reactivation).
    pub const UPSERTED: &str = "market.upserted";
    /// Markets that vanished from their source and were marked inactive.
    pub const DEACTIVATED: &str = "market.deactivated";
}

/// Payload of the market events.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MarketIds {
    pub ids: Vec<i64>,
}

/// Cache key of the item search generation: part of every cached search's key, so one bump
/// drops every cached search on every instance.
pub const ITEM_SEARCH_GENERATION_KEY: &str = "items:generation";

/// Marks every cached item search stale. Call after items change.
pub async fn invalidate_item_search(cache: &dyn Cache) -> Result<(), LiveError> {
    cache.incr(ITEM_SEARCH_GENERATION_KEY).await.map(|_| ())
}

/// Most rows one chunk may hold: keeps a statement under the bind limits of both databases
/// (PostgreSQL allows 65,535 parameters; a market row takes 7).
pub const MAX_CHUNK: usize = 4000;

/// An item as the public list describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemRow {
    pub source_id: String,
    pub name: String,
    pub category_code: Option<String>,
    pub unit: Option<String>,
    pub base_count: Option<f64>,
    pub total_count: Option<f64>,
    pub total_unit: Option<String>,
    pub maker: Option<String>,
}

/// A market as the public list describes it. `lat`/`lng` are `None` when the source had no usable
/// coordinates: the market is stored and stays out of nearby search.
#[derive(Clone, Debug, PartialEq)]
pub struct MarketRow {
    pub source_id: String,
    pub name: String,
    pub kind: String,
    pub road_address: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub area_code: Option<String>,
}

/// How the rows of a chunk compared with what was stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl std::ops::AddAssign for ChunkCounts {
    fn add_assign(&mut self, other: Self) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// A catalog table's row type: how it is compared, bound and written.
pub trait CatalogRow: Sync {
    /// The table.
    const TABLE: &'static str;
    /// The data columns after `source_id`, in the order [`CatalogRow::bind_fields`] binds them.
    const FIELDS: &'static [&'static str];
    /// Whether changed rows are announced on [`MARKETS_TOPIC`].
    const EVENTS: bool;
    /// The stored row as read back for comparison.
    type Stored: for<'r> FromRow<'r, AnyRow> + Send + Unpin + StoredRow;

    fn source_id(&self) -> &str;
    /// Binds the [`CatalogRow::FIELDS`] in order.
    fn bind_fields<'q>(&'q self, q: AnyQuery<'q>) -> AnyQuery<'q>;
    /// True when the stored row already holds exactly these values.
    fn same_as(&self, stored: &Self::Stored) -> bool;
}

/// What every stored row exposes for classification.
pub trait StoredRow {
    fn source_id(&self) -> &str;
    fn is_active(&self) -> bool;
}

#[doc(hidden)]
#[derive(FromRow)]
pub struct StoredItem {
    source_id: String,
    name: String,
    category_code: Option<String>,
    unit: Option<String>,
    base_count: Option<f64>,
    total_count: Option<f64>,
    total_unit: Option<String>,
    maker: Option<String>,
    active: i64,
}

impl StoredRow for StoredItem {
    fn source_id(&self) -> &str {
        &self.source_id
    }
    fn is_active(&self) -> bool {
        self.active == 1
    }
}

impl CatalogRow for ItemRow {
    const TABLE: &'static str = "items";
    const FIELDS: &'static [&'static str] = &[
        "name",
        "category_code",
        "unit",
        "base_count",
        "total_count",
        "total_unit",
        "maker",
    ];
    const EVENTS: bool = false;
    type Stored = StoredItem;

    fn source_id(&self) -> &str {
        &self.source_id
    }

    fn bind_fields<'q>(&'q self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        q.bind(&self.name)
            .bind(&self.category_code)
            .bind(&self.unit)
            .bind(self.base_count)
            .bind(self.total_count)
            .bind(&self.total_unit)
            .bind(&self.maker)
    }

    fn same_as(&self, s: &StoredItem) -> bool {
        s.is_active()
            && self.name == s.name
            && self.category_code == s.category_code
            && self.unit == s.unit
            && self.base_count == s.base_count
            && self.total_count == s.total_count
            && self.total_unit == s.total_unit
            && self.maker == s.maker
    }
}

#[doc(hidden)]
#[derive(FromRow)]
pub struct StoredMarket {
    source_id: String,
    name: String,
    kind: String,
    road_address: Option<String>,
    lat: Option<f64>,
    lng: Option<f64>,
    area_code: Option<String>,
    active: i64,
}

impl StoredRow for StoredMarket {
    fn source_id(&self) -> &str {
        &self.source_id
    }
    fn is_active(&self) -> bool {
        self.active == 1
    }
}

impl CatalogRow for MarketRow {
    const TABLE: &'static str = "markets";
    const FIELDS: &'static [&'static str] =
        &["name", "kind", "road_address", "lat", "lng", "area_code"];
    const EVENTS: bool = true;
    type Stored = StoredMarket;

    fn source_id(&self) -> &str {
        &self.source_id
    }

    fn bind_fields<'q>(&'q self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        q.bind(&self.name)
            .bind(&self.kind)
            .bind(&self.road_address)
            .bind(self.lat)
            .bind(self.lng)
            .bind(&self.area_code)
    }

    fn same_as(&self, s: &StoredMarket) -> bool {
        s.is_active()
            && self.name == s.name
            && self.kind == s.kind
            && self.road_address == s.road_address
            && self.lat == s.lat
            && self.lng == s.lng
            && self.area_code == s.area_code
    }
}

/// `$from, $from+1, …` for `n` parameters.
fn placeholders(from: usize, n: usize) -> String {
    let mut out = String::with_capacity(n * 6);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('$');
        out.push_str(&(from + i).to_string());
    }
    out
}

/// Whether statements on `conn` take anonymous `?` parameters, bound in order of appearance.
/// SQLite does: sqlx asks SQLite for the name of every parameter it binds, and SQLite finds the
/// name of a `$n` by scanning all the named parameters of the statement, so binding a 1000-row
/// chunk (9,000 `$n`) is quadratic: 90 ms per chunk, 90 % of an import. Anonymous parameters
/// have no names to scan. PostgreSQL needs `$n`.
fn anonymous_params(conn: &AnyConnection) -> bool {
    conn.backend_name() == "SQLite"
}

/// Rows per INSERT on SQLite, where each row binds source and time itself: SQLite takes at most
/// 32,766 parameters per statement.
const SQLITE_ROWS_PER_STATEMENT: usize = 1000;

// The stored-row lookup binds a whole chunk's ids in one statement.
const _: () = assert!(1 + MAX_CHUNK < 32_766);

/// `n` parameters: `?, ?, …` when `anonymous`, else numbered from `from`.
fn marks(anonymous: bool, from: usize, n: usize) -> String {
    if anonymous {
        vec!["?"; n].join(", ")
    } else {
        placeholders(from, n)
    }
}

/// The stored rows of `source` whose ids are among `rows`', by id.
pub async fn stored_rows<R: CatalogRow>(
    conn: &mut AnyConnection,
    source: &str,
    rows: &[R],
) -> Result<HashMap<String, R::Stored>> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let fields = R::FIELDS
        .iter()
        .map(|f| format!("t.{f}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = if conn.backend_name() == "PostgreSQL" {
        // One index probe per id, whatever the statistics say. With `source_id IN ($2, …)` the
        // generic plan of a table whose statistics are stale (a first import, or autovacuum off)
        // scans every row of the source and compares each with the whole list: seconds per chunk
        // at 100,000 rows. `LIMIT 1` keeps the lateral subquery from being flattened into a join
        // the planner could hash.
        let ids: Vec<String> = (0..rows.len()).map(|i| format!("(${})", i + 2)).collect();
        format!(
            "SELECT t.source_id, {fields}, t.active FROM (VALUES {}) AS v (id) CROSS JOIN LATERAL \
             (SELECT * FROM {} WHERE source = $1 AND source_id = v.id LIMIT 1) t",
            ids.join(", "),
            R::TABLE,
        )
    } else {
        // SQLite probes the (source, source_id) index for each member of an IN list.
        format!(
            "SELECT t.source_id, {fields}, t.active FROM {} t WHERE t.source = ? AND t.source_id IN ({})",
            R::TABLE,
            marks(true, 2, rows.len())
        )
    };
    let mut q = sqlx::query_as::<_, R::Stored>(&sql).bind(source);
    for row in rows {
        q = q.bind(row.source_id());
    }
    let stored = q.fetch_all(conn).await?;
    Ok(stored
        .into_iter()
        .map(|s| (s.source_id().to_owned(), s))
        .collect())
}

/// Splits `rows` into those to write (new or changed) and the counts.
fn classify<'a, R: CatalogRow>(
    rows: &'a [R],
    stored: &HashMap<String, R::Stored>,
) -> (Vec<&'a R>, ChunkCounts) {
    let mut counts = ChunkCounts::default();
    let mut write = Vec::new();
    for row in rows {
        match stored.get(row.source_id()) {
            None => {
                counts.inserted += 1;
                write.push(row);
            }
            Some(s) if row.same_as(s) => counts.unchanged += 1,
            Some(_) => {
                counts.updated += 1;
                write.push(row);
            }
        }
    }
    (write, counts)
}

/// Inserts or updates `rows` of `source` in one multi-row statement; returns the ids written when
/// `want_ids`. The ids must be distinct (PostgreSQL refuses to update one row twice per statement).
pub async fn write_rows<R: CatalogRow>(
    conn: &mut AnyConnection,
    source: &str,
    rows: &[&R],
    now: i64,
    want_ids: bool,
) -> Result<Vec<i64>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let anonymous = anonymous_params(conn);
    if anonymous && rows.len() > SQLITE_ROWS_PER_STATEMENT {
        let mut ids = Vec::new();
        for part in rows.chunks(SQLITE_ROWS_PER_STATEMENT) {
            ids.extend(Box::pin(write_rows(conn, source, part, now, want_ids)).await?);
        }
        return Ok(ids);
    }
    let per_row = 1 + R::FIELDS.len();
    let mut values = String::with_capacity(rows.len() * per_row * 6);
    for i in 0..rows.len() {
        if i > 0 {
            values.push_str(", ");
        }
        if anonymous {
            // Each row binds its own source and time (see `anonymous_params`).
            values.push_str("(?, ");
            values.push_str(&marks(true, 0, per_row));
            values.push_str(", 1, ?, ?)");
        } else {
            // $1 is the source and $2 the time, shared by every row.
            values.push_str("($1, ");
            values.push_str(&placeholders(3 + i * per_row, per_row));
            values.push_str(", 1, $2, $2)");
        }
    }
    let updates: Vec<String> = R::FIELDS
        .iter()
        .map(|f| format!("{f} = excluded.{f}"))
        .collect();
    let sql = format!(
        "INSERT INTO {table} (source, source_id, {fields}, active, created_at, updated_at) VALUES {values} \
         ON CONFLICT (source, source_id) DO UPDATE SET {updates}, active = 1, updated_at = excluded.updated_at{returning}",
        table = R::TABLE,
        fields = R::FIELDS.join(", "),
        updates = updates.join(", "),
        returning = if want_ids { " RETURNING id" } else { "" },
    );
    let mut q = sqlx::query(&sql);
    if anonymous {
        for row in rows {
            q = row
                .bind_fields(q.bind(source).bind(row.source_id()))
                .bind(now)
                .bind(now);
        }
    } else {
        q = q.bind(source).bind(now);
        for row in rows {
            q = row.bind_fields(q.bind(row.source_id()));
        }
    }
    if want_ids {
        use sqlx::Row;
        let written = q.fetch_all(conn).await?;
        written
            .iter()
            .map(|r| r.try_get::<i64, _>(0).map_err(Into::into))
            .collect()
    } else {
        q.execute(conn).await?;
        Ok(Vec::new())
    }
}

/// Applies one chunk in its own transaction: reads the stored rows, writes the new and changed
/// ones, and (for markets) an outbox event naming them. Either the whole chunk is applied or,
/// on error, none of it.
pub async fn apply_chunk<R: CatalogRow>(
    db: &Db,
    source: &str,
    rows: &[R],
    now: i64,
) -> Result<ChunkCounts> {
    if rows.is_empty() {
        return Ok(ChunkCounts::default());
    }
    let mut tx = db.begin().await?;
    let stored = stored_rows(tx.conn(), source, rows).await?;
    let (write, counts) = classify(rows, &stored);
    drop(stored);
    if !write.is_empty() {
        let ids = write_rows(tx.conn(), source, &write, now, R::EVENTS).await?;
        if R::EVENTS {
            let payload = MarketIds { ids };
            outbox::insert(
                tx.conn(),
                MARKETS_TOPIC,
                market_kind::UPSERTED,
                &payload,
                now,
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(counts)
}

/// Classifies a chunk against the stored rows without writing (dry runs).
pub async fn classify_chunk<R: CatalogRow>(
    db: &Db,
    source: &str,
    rows: &[R],
) -> Result<ChunkCounts> {
    let mut conn = db.pool().acquire().await?;
    let stored = stored_rows(&mut conn, source, rows).await?;
    Ok(classify(rows, &stored).1)
}

/// Ids of the active rows of `source` in `table` whose public id fails `seen`: the rows that
/// vanished from the source. The rows are streamed, so only the vanished ids are held.
pub async fn vanished_ids(
    db: &Db,
    table: Table,
    source: &str,
    seen: impl Fn(&str) -> bool,
) -> Result<Vec<i64>> {
    use futures::TryStreamExt;
    let sql = format!(
        "SELECT id, source_id FROM {} WHERE source = $1 AND active = 1",
        table.name()
    );
    let mut rows = sqlx::query_as::<_, (i64, String)>(&sql)
        .bind(source)
        .fetch(db.pool());
    let mut vanished = Vec::new();
    while let Some((id, source_id)) = rows.try_next().await? {
        if !seen(&source_id) {
            vanished.push(id);
        }
    }
    Ok(vanished)
}

/// The two catalog tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Items,
    Markets,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Items => "items",
            Table::Markets => "markets",
        }
    }
}

/// Marks the rows `ids` of `table` inactive in one transaction (with a `market.deactivated` event
/// for markets). Rows are never deleted: parties refer to them. Returns how many changed.
pub async fn deactivate(db: &Db, table: Table, ids: &[i64], now: i64) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let anonymous = anonymous_params(tx.conn());
    let sql = format!(
        "UPDATE {} SET active = 0, updated_at = {} WHERE active = 1 AND id IN ({})",
        table.name(),
        marks(anonymous, 1, 1),
        marks(anonymous, 2, ids.len())
    );
    let mut q = sqlx::query(&sql).bind(now);
    for id in ids {
        q = q.bind(*id);
    }
    let done = q.execute(tx.conn()).await?.rows_affected();
    if table == Table::Markets && done > 0 {
        let payload = MarketIds { ids: ids.to_vec() };
        outbox::insert(
            tx.conn(),
            MARKETS_TOPIC,
            market_kind::DEACTIVATED,
            &payload,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_from_the_start() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(placeholders(1, 0), "");
        assert_eq!(marks(false, 2, 2), "$2, $3");
        assert_eq!(marks(true, 2, 3), "?, ?, ?");
    }

    #[test]
    fn a_market_row_fits_the_bind_limit_at_the_largest_chunk() {
        assert!(MAX_CHUNK * (1 + MarketRow::FIELDS.len()) + 2 < 65_535);
        assert!(MAX_CHUNK * (1 + ItemRow::FIELDS.len()) + 2 < 65_535);
        // SQLite binds source and time per row, at most 32,766 parameters per statement.
        assert!(SQLITE_ROWS_PER_STATEMENT * (4 + MarketRow::FIELDS.len()) < 32_766);
        assert!(SQLITE_ROWS_PER_STATEMENT * (4 + ItemRow::FIELDS.len()) < 32_766);
    }
}
