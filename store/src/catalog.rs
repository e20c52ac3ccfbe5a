//! Catalog writes for ingest: items and markets upserted by their natural key `(source, source_id)`
//! in chunks, one transaction per chunk, and rows that vanished from a full source deactivated.
//!
//! Each chunk first reads the stored rows with the chunk's ids, so every row is classified as
//! inserted, updated or unchanged, and only new and changed rows are written, in one multi-row
//! `INSERT … SELECT … ON CONFLICT DO UPDATE` fed by one JSON parameter. Re-running identical
//! data therefore changes no content and reports every row unchanged; a dry run uses the same
//! classification without writing.
//!
//! Every row a run reads is stamped with the run's id (`seen_run`), written or not. The rows that
//! vanished from a full source are then the ones with another stamp, and a row already stamped
//! by the running run is a duplicate, so a run needs no in-memory set of every id it has seen.
//!
//! Market changes must reach every instance's nearby index: the chunk's transaction also writes an
//! outbox event on [`MARKETS_TOPIC`] naming the changed ids. Item changes make cached item searches
//! stale: callers bump the generation with [`invalidate_item_search`] once they are done.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow};

use crate::db::{Db, Dialect, Tx};
use crate::error::{Error, Result};
use crate::live::{Cache, LiveError};
use crate::outbox;

pub use crate::topics::{market_kind, MARKETS_TOPIC};

/// Payload of the market events.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
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

/// Most rows one chunk may hold. Rows travel as one JSON parameter per statement, so no bind
/// limit applies; the cap bounds how long one chunk holds SQLite's single writer and how much
/// memory a chunk takes.
pub const MAX_CHUNK: usize = 10_000;

/// An item (품목) as the public list describes it.
#[derive(Clone, Debug, Default, PartialEq, FromRow)]
pub struct ItemRow {
    /// The public id (`goodId`); natural key with the source.
    pub source_id: String,
    pub name: String,
    /// The 9-digit small-class category (`goodSmlclsCode`).
    pub category_code: Option<String>,
    /// Unit of the base count (`goodUnitDivCode`, e.g. `g`, `ml`, `개`).
    pub unit: Option<String>,
    pub base_count: Option<f64>,
    pub total_count: Option<f64>,
    pub total_unit: Option<String>,
    /// Maker or entry company code (`productEntpCode`).
    pub maker: Option<String>,
}

/// A market as the public list describes it.
#[derive(Clone, Debug, Default, PartialEq, FromRow)]
pub struct MarketRow {
    /// The public id (`entpId`, or a stable key built for CSV rows); natural key with the source.
    pub source_id: String,
    pub name: String,
    /// One of the market kinds gonggu knows (`hypermarket`, `traditional_market`, …).
    pub kind: String,
    pub road_address: Option<String>,
    /// Degrees; `None` when the source had no usable coordinates: the market is stored and stays
    /// out of nearby search.
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub area_code: Option<String>,
}

impl MarketRow {
    /// True when the market can take part in nearby search.
    pub fn has_coordinates(&self) -> bool {
        self.lat.is_some() && self.lng.is_some()
    }
}

/// How the rows of a chunk compared with what was stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Rows whose id the same run had already applied in an earlier chunk (skipped: the first wins).
    pub duplicates: u64,
}

impl std::ops::AddAssign for ChunkCounts {
    fn add_assign(&mut self, other: Self) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.duplicates += other.duplicates;
    }
}

/// The SQL type of a data column, for reading it back out of a JSON row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Real,
}

/// A data column of a catalog table.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
}

const fn text(name: &'static str) -> Column {
    Column {
        name,
        ty: ColumnType::Text,
    }
}

const fn real(name: &'static str) -> Column {
    Column {
        name,
        ty: ColumnType::Real,
    }
}

/// A catalog table's row type: how it is compared, encoded and written. Its fields are the
/// table's columns of the same names (read back with `FromRow`; equal rows hold equal values).
pub trait CatalogRow:
    for<'r> FromRow<'r, AnyRow> + PartialEq + Send + Sync + Unpin + 'static
{
    const TABLE: Table;
    /// The data columns after `source_id`, in the order [`CatalogRow::values`] lists them.
    const FIELDS: &'static [Column];
    /// Whether changed rows are announced on [`MARKETS_TOPIC`].
    const EVENTS: bool;

    fn source_id(&self) -> &str;
    /// `source_id` then the [`CatalogRow::FIELDS`], as one JSON array per row.
    fn values(&self) -> impl Serialize + '_;
    /// True when `stored` holds this row's values: text exactly, numbers by [`same_real`].
    fn same_values(&self, stored: &Self) -> bool;
}

/// Whether a stored number is the value sent. PostgreSQL stores exactly the double that was
/// sent, but SQLite's JSON number parser lands one unit in the last place away from it for about
/// 1 value in 8,000 (measured over 1,000,000, short decimals included; never further). Such a
/// difference is far below the precision of any public list, and must not read as a change:
/// otherwise those rows would be rewritten, and their markets announced, on every run.
pub fn same_real(sent: Option<f64>, stored: Option<f64>) -> bool {
    match (sent, stored) {
        (None, None) => true,
        (Some(a), Some(b)) => a == b || (a - b).abs() <= f64::EPSILON * a.abs().max(b.abs()),
        _ => false,
    }
}

/// A stored catalog row as read back for classification.
#[derive(FromRow)]
struct Stored<Row> {
    id: i64,
    #[sqlx(flatten)]
    row: Row,
    active: i64,
    /// The newest ingest run that saw the row.
    seen_run: Option<i64>,
}

impl<Row: CatalogRow> Stored<Row> {
    /// True when the row is active and already holds exactly `row`'s values.
    fn same_as(&self, row: &Row) -> bool {
        self.active == 1 && row.same_values(&self.row)
    }
}

impl CatalogRow for ItemRow {
    const TABLE: Table = Table::Items;
    const FIELDS: &'static [Column] = &[
        text("name"),
        text("category_code"),
        text("unit"),
        real("base_count"),
        real("total_count"),
        text("total_unit"),
        text("maker"),
    ];
    const EVENTS: bool = false;

    fn source_id(&self) -> &str {
        &self.source_id
    }

    fn values(&self) -> impl Serialize + '_ {
        (
            &self.source_id,
            &self.name,
            &self.category_code,
            &self.unit,
            self.base_count,
            self.total_count,
            &self.total_unit,
            &self.maker,
        )
    }

    fn same_values(&self, s: &Self) -> bool {
        self.source_id == s.source_id
            && self.name == s.name
            && self.category_code == s.category_code
            && self.unit == s.unit
            && same_real(self.base_count, s.base_count)
            && same_real(self.total_count, s.total_count)
            && self.total_unit == s.total_unit
            && self.maker == s.maker
    }
}

impl CatalogRow for MarketRow {
    const TABLE: Table = Table::Markets;
    const FIELDS: &'static [Column] = &[
        text("name"),
        text("kind"),
        text("road_address"),
        real("lat"),
        real("lng"),
        text("area_code"),
    ];
    const EVENTS: bool = true;

    fn source_id(&self) -> &str {
        &self.source_id
    }

    fn values(&self) -> impl Serialize + '_ {
        (
            &self.source_id,
            &self.name,
            &self.kind,
            &self.road_address,
            self.lat,
            self.lng,
            &self.area_code,
        )
    }

    fn same_values(&self, s: &Self) -> bool {
        self.source_id == s.source_id
            && self.name == s.name
            && self.kind == s.kind
            && self.road_address == s.road_address
            && same_real(self.lat, s.lat)
            && same_real(self.lng, s.lng)
            && self.area_code == s.area_code
    }
}

// Rows and id lists travel as one JSON text parameter per statement, unpacked by the database
// (`json_each` on SQLite, `json_array_elements` on PostgreSQL). Binding every value instead costs
// a parameter per value through the driver, and on SQLite a name lookup per `$n` that is linear
// in the statement's parameter count: a 1000-row chunk spent 90 % of its time there.

/// Encodes `items` as one JSON array.
fn json_array<S: Serialize>(items: impl IntoIterator<Item = S>) -> Result<String> {
    let items: Vec<S> = items.into_iter().collect();
    serde_json::to_string(&items)
        .map_err(|e| Error::Corrupt(format!("encoding a chunk as JSON: {e}")))
}

/// The JSON array parameter `$n` as a one-column table of its elements, as text, named `v(id)`.
fn json_elements(dialect: Dialect, n: usize) -> String {
    match dialect {
        Dialect::Sqlite => format!("(SELECT value AS id FROM json_each(${n})) AS v"),
        Dialect::Postgres => format!("json_array_elements_text(${n}::json) AS v(id)"),
    }
}

/// `IN (…)` over the JSON array of row ids in parameter `$n`, probing the primary key per id.
fn in_json_ids(dialect: Dialect, n: usize) -> String {
    match dialect {
        Dialect::Sqlite => format!("IN (SELECT value FROM json_each(${n}))"),
        // An array built by an init plan: the planner probes the primary key for each element
        // whatever the table's statistics say (a join could pick a scan of the whole table when
        // they are stale, as after a first import with autovacuum off).
        Dialect::Postgres => {
            format!("= ANY (ARRAY(SELECT json_array_elements_text(${n}::json)::bigint))")
        }
    }
}

/// The stored rows of `source` whose ids are among `rows`', by id.
async fn stored_rows<R: CatalogRow>(
    conn: &mut AnyConnection,
    dialect: Dialect,
    source: &str,
    rows: &[R],
) -> Result<HashMap<String, Stored<R>>> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let fields = R::FIELDS
        .iter()
        .map(|f| format!("t.{}", f.name))
        .collect::<Vec<_>>()
        .join(", ");
    let table = R::TABLE.as_str();
    let ids = json_array(rows.iter().map(|r| r.source_id()))?;
    // One index probe on (source, source_id) per id. On PostgreSQL `LIMIT 1` keeps the lateral
    // subquery from being flattened into a join the planner could hash over the whole source.
    let sql = match dialect {
        Dialect::Sqlite => format!(
            "SELECT t.id, t.source_id, {fields}, t.active, t.seen_run FROM {table} t \
             WHERE t.source = $1 AND t.source_id IN (SELECT id FROM {})",
            json_elements(dialect, 2)
        ),
        Dialect::Postgres => format!(
            "SELECT t.id, t.source_id, {fields}, t.active, t.seen_run FROM {} CROSS JOIN LATERAL \
             (SELECT * FROM {table} WHERE source = $1 AND source_id = v.id LIMIT 1) t",
            json_elements(dialect, 2)
        ),
    };
    let stored = sqlx::query_as::<_, Stored<R>>(sqlx::AssertSqlSafe(&*sql))
        .bind(source)
        .bind(ids)
        .fetch_all(conn)
        .await?;
    Ok(stored
        .into_iter()
        .map(|s| (s.row.source_id().to_owned(), s))
        .collect())
}

/// A chunk split by what must happen to each row.
struct Classified<'a, R> {
    /// New and changed rows: written.
    write: Vec<&'a R>,
    /// Stored ids of the rows that are already up to date: only stamped as seen.
    unchanged: Vec<i64>,
    counts: ChunkCounts,
}

/// Splits `rows` by comparing them with the stored ones. With `run`, a stored row already
/// stamped by that run is a duplicate: an earlier chunk of the run applied that id.
fn classify<'a, R: CatalogRow>(
    rows: &'a [R],
    stored: &HashMap<String, Stored<R>>,
    run: Option<i64>,
) -> Classified<'a, R> {
    let mut out = Classified {
        write: Vec::new(),
        unchanged: Vec::new(),
        counts: ChunkCounts::default(),
    };
    for row in rows {
        match stored.get(row.source_id()) {
            None => {
                out.counts.inserted += 1;
                out.write.push(row);
            }
            Some(s) if run.is_some() && s.seen_run == run => out.counts.duplicates += 1,
            Some(s) if s.same_as(row) => {
                out.counts.unchanged += 1;
                out.unchanged.push(s.id);
            }
            Some(_) => {
                out.counts.updated += 1;
                out.write.push(row);
            }
        }
    }
    out
}

/// Inserts or updates `rows` of `source` in one statement, stamped as seen by `run`; returns the
/// ids written when `want_ids`. The ids must be distinct (PostgreSQL refuses to update one row
/// twice per statement).
async fn write_rows<R: CatalogRow>(
    conn: &mut AnyConnection,
    dialect: Dialect,
    source: &str,
    rows: &[&R],
    now: i64,
    run: Option<i64>,
    want_ids: bool,
) -> Result<Vec<i64>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // Element i of each JSON row is column i: source_id first, then the fields.
    let (from, cell): (&str, fn(usize, ColumnType) -> String) = match dialect {
        Dialect::Sqlite => ("json_each($5) AS j", |i, _| format!("j.value ->> {i}")),
        Dialect::Postgres => (
            "json_array_elements($5::json) AS j(value)",
            |i, ty| match ty {
                ColumnType::Text => format!("j.value ->> {i}"),
                ColumnType::Real => format!("(j.value ->> {i})::double precision"),
            },
        ),
    };
    let cells: Vec<String> = std::iter::once(cell(0, ColumnType::Text))
        .chain(R::FIELDS.iter().enumerate().map(|(i, f)| cell(i + 1, f.ty)))
        .collect();
    let fields: Vec<&str> = R::FIELDS.iter().map(|f| f.name).collect();
    let updates: Vec<String> = fields
        .iter()
        .map(|f| format!("{f} = excluded.{f}"))
        .collect();
    // `WHERE true`: SQLite would read `ON CONFLICT` as part of a join without it.
    let sql = format!(
        "INSERT INTO {table} (source, source_id, {fields}, active, created_at, updated_at, seen_run) \
         SELECT $1, {cells}, 1, $2, $3, $4 FROM {from} WHERE true \
         ON CONFLICT (source, source_id) DO UPDATE SET {updates}, active = 1, \
         updated_at = excluded.updated_at, seen_run = CASE WHEN {table}.seen_run IS NULL \
         OR {table}.seen_run < excluded.seen_run THEN excluded.seen_run ELSE {table}.seen_run END\
         {returning}",
        table = R::TABLE.as_str(),
        fields = fields.join(", "),
        cells = cells.join(", "),
        updates = updates.join(", "),
        returning = if want_ids { " RETURNING id" } else { "" },
    );
    let q = sqlx::query(sqlx::AssertSqlSafe(&*sql))
        .bind(source)
        .bind(now)
        .bind(now)
        .bind(run)
        .bind(json_array(rows.iter().map(|r| r.values()))?);
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

/// Stamps the rows `ids` of `table` as seen by `run`, leaving their content and `updated_at` alone.
/// Stamps only move forward, so a row keeps the newest run that saw it even when two runs of a
/// source overlap, and the older run's deactivation (`seen_run < run`) spares it.
async fn stamp_seen(
    conn: &mut AnyConnection,
    dialect: Dialect,
    table: Table,
    ids: &[i64],
    run: i64,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE {} SET seen_run = $1 WHERE id {} AND (seen_run IS NULL OR seen_run < $1)",
        table.as_str(),
        in_json_ids(dialect, 2)
    );
    sqlx::query(sqlx::AssertSqlSafe(&*sql))
        .bind(run)
        .bind(json_array(ids)?)
        .execute(conn)
        .await?;
    Ok(())
}

/// Inserts or updates one row of `source` by its natural key inside `tx`; returns its id. For the
/// fixtures, the demo and tests; ingest writes whole chunks with [`apply_chunk`]. Leaves the row's
/// `seen_run` stamp alone, and writes no outbox event: a running server's nearby index sees these
/// rows when it next reloads its markets (at start, after missed events, or on any market event).
pub async fn upsert_row<R: CatalogRow>(
    tx: &mut Tx,
    source: &str,
    row: &R,
    now: i64,
) -> Result<i64> {
    let dialect = tx.dialect();
    let ids = write_rows(tx.conn(), dialect, source, &[row], now, None, true).await?;
    ids.first()
        .copied()
        .ok_or_else(|| Error::Corrupt(format!("upserting {} returned no id", R::TABLE.as_str())))
}

/// Applies one chunk of ingest run `run` in its own transaction: reads the stored rows, writes
/// the new and changed ones, stamps the unchanged ones as seen, and (for markets) writes an
/// outbox event naming the written ones. Rows the run already applied in an earlier chunk are
/// skipped and counted as duplicates. Either the whole chunk is applied or, on error, none of it.
pub async fn apply_chunk<R: CatalogRow>(
    db: &Db,
    source: &str,
    rows: &[R],
    now: i64,
    run: i64,
) -> Result<ChunkCounts> {
    if rows.is_empty() {
        return Ok(ChunkCounts::default());
    }
    let dialect = db.dialect();
    let mut tx = db.begin().await?;
    let stored = stored_rows(tx.conn(), dialect, source, rows).await?;
    let plan = classify(rows, &stored, Some(run));
    drop(stored);
    if !plan.write.is_empty() {
        let ids = write_rows(
            tx.conn(),
            dialect,
            source,
            &plan.write,
            now,
            Some(run),
            R::EVENTS,
        )
        .await?;
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
    stamp_seen(tx.conn(), dialect, R::TABLE, &plan.unchanged, run).await?;
    tx.commit().await?;
    Ok(plan.counts)
}

/// Classifies a chunk against the stored rows without writing (dry runs, which have no run id:
/// they de-duplicate in memory).
pub async fn classify_chunk<R: CatalogRow>(
    db: &Db,
    source: &str,
    rows: &[R],
) -> Result<ChunkCounts> {
    let mut conn = db.pool().acquire().await?;
    let stored = stored_rows(&mut conn, db.dialect(), source, rows).await?;
    Ok(classify(rows, &stored, None).counts)
}

/// Ids of the active rows of `source` in `table` that neither run `run` nor a later one saw, except
/// those whose public id passes `keep` (e.g. rows the run rejected: present in the source, only
/// invalid). These rows vanished from the source. Without `run` (a dry run stamps nothing) every
/// active row is offered to `keep`. The rows are streamed, so only the vanished ids are held.
pub async fn vanished_ids(
    db: &Db,
    table: Table,
    source: &str,
    run: Option<i64>,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<i64>> {
    use futures::TryStreamExt;
    let sql = format!(
        "SELECT id, source_id FROM {} WHERE source = $1 AND active = 1 \
         AND (seen_run IS NULL OR seen_run < $2)",
        table.as_str()
    );
    let mut rows = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(&*sql))
        .bind(source)
        .bind(run.unwrap_or(i64::MAX))
        .fetch(db.pool());
    let mut vanished = Vec::new();
    while let Some((id, source_id)) = rows.try_next().await? {
        if !keep(&source_id) {
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
    /// The table's name, also how runs and the CLI name what they ingest.
    pub fn as_str(self) -> &'static str {
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
    let sql = format!(
        "UPDATE {} SET active = 0, updated_at = $1 WHERE active = 1 AND id {}",
        table.as_str(),
        in_json_ids(tx.dialect(), 2)
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(&*sql))
        .bind(now)
        .bind(json_array(ids)?)
        .execute(tx.conn())
        .await?
        .rows_affected();
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
    fn rows_encode_as_json_arrays_in_column_order() {
        let row = ItemRow {
            source_id: "A1".into(),
            name: "생수 \"2L\"".into(),
            category_code: None,
            unit: Some("ml".into()),
            base_count: Some(2000.0),
            total_count: Some(0.5),
            total_unit: None,
            maker: None,
        };
        let json = json_array([row.values()]).unwrap();
        assert_eq!(
            json,
            r#"[["A1","생수 \"2L\"",null,"ml",2000.0,0.5,null,null]]"#
        );
        assert_eq!(json_array([3_i64, 4]).unwrap(), "[3,4]");
        assert_eq!(json_array(Vec::<i64>::new()).unwrap(), "[]");
    }

    #[test]
    fn numbers_one_unit_in_the_last_place_apart_are_the_same() {
        let x = 27_166_344.400_836_41_f64;
        let next = f64::from_bits(x.to_bits() + 1);
        assert!(same_real(Some(x), Some(next)) && same_real(Some(next), Some(x)));
        assert!(same_real(Some(0.0), Some(0.0)) && same_real(None, None));
        assert!(!same_real(Some(x), Some(x + 1e-6)));
        assert!(!same_real(Some(0.0), Some(5e-324)));
        assert!(!same_real(Some(1.0), None) && !same_real(None, Some(1.0)));
        let mut moved = MarketRow {
            lat: Some(37.566_5),
            ..MarketRow::default()
        };
        let stored = moved.clone();
        moved.lat = Some(37.566_6);
        assert!(!moved.same_values(&stored));
        moved.lat = stored.lat.map(|l| f64::from_bits(l.to_bits() - 1));
        assert!(moved.same_values(&stored));
    }

    #[test]
    fn every_field_has_a_json_cell() {
        let item = ItemRow::default();
        let cells: serde_json::Value = serde_json::to_value(item.values()).unwrap();
        assert_eq!(
            cells.as_array().map(Vec::len),
            Some(1 + ItemRow::FIELDS.len())
        );
        let market = MarketRow::default();
        let cells: serde_json::Value = serde_json::to_value(market.values()).unwrap();
        assert_eq!(
            cells.as_array().map(Vec::len),
            Some(1 + MarketRow::FIELDS.len())
        );
    }
}
