//! Run records of `gonggu ingest`: one row per run, opened as `running` and closed with the counts
//! and the outcome, so operators (and `GET /api/v1/ingest/runs`) can see what each night did.

use serde::Serialize;
use sqlx::FromRow;

use crate::cursor;
use crate::db::Db;
use crate::error::Result;
use crate::query::Filter;

/// Run statuses.
pub mod status {
    pub const RUNNING: &str = "running";
    /// Every page arrived and was applied (and vanished rows were deactivated).
    pub const SUCCEEDED: &str = "succeeded";
    /// Some pages failed after their retries; the others were applied; nothing was deactivated.
    pub const PARTIAL: &str = "partial";
    /// The run stopped; chunks committed before the failure stay applied.
    pub const FAILED: &str = "failed";
}

/// A stored run.
#[derive(Clone, Debug, FromRow, Serialize, PartialEq)]
pub struct IngestRun {
    pub id: i64,
    pub source: String,
    pub kind: String,
    pub status: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub calls: i64,
    pub pages: i64,
    pub rows_fetched: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub deactivated: i64,
    pub rejected: i64,
    pub duplicates: i64,
    pub no_coordinates: i64,
    pub error: Option<String>,
    /// As stored: the page numbers comma-separated, ascending; read them with
    /// [`IngestRun::failed_page_numbers`].
    pub failed_pages: Option<String>,
}

impl IngestRun {
    /// The pages that failed, ascending.
    pub fn failed_page_numbers(&self) -> Vec<u32> {
        self.failed_pages
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }
}

const COLUMNS: &str = "id, source, kind, status, started_at, finished_at, calls, pages, rows_fetched, \
                       inserted, updated, unchanged, deactivated, rejected, duplicates, no_coordinates, \
                       error, failed_pages";

/// The counts a run reports when it ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunTotals {
    pub calls: u64,
    pub pages: u64,
    pub rows_fetched: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deactivated: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub no_coordinates: u64,
}

impl std::ops::AddAssign<crate::catalog::ChunkCounts> for RunTotals {
    fn add_assign(&mut self, chunk: crate::catalog::ChunkCounts) {
        self.inserted += chunk.inserted;
        self.updated += chunk.updated;
        self.unchanged += chunk.unchanged;
        self.duplicates += chunk.duplicates;
    }
}

/// Opens a run as `running`; returns its id.
pub async fn start_run(db: &Db, source: &str, kind: &str, now: i64) -> Result<i64> {
    let mut tx = db.begin().await?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO ingest_runs (source, kind, status, started_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(source)
    .bind(kind)
    .bind(status::RUNNING)
    .bind(now)
    .fetch_one(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(id)
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Closes run `id` with its outcome and counts.
pub async fn finish_run(
    db: &Db,
    id: i64,
    status: &str,
    totals: &RunTotals,
    error: Option<&str>,
    failed_pages: &[u32],
    now: i64,
) -> Result<()> {
    let mut pages = failed_pages.to_vec();
    pages.sort_unstable();
    let failed_pages = (!pages.is_empty()).then(|| {
        pages
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    });
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE ingest_runs SET status = $2, finished_at = $3, calls = $4, pages = $5, rows_fetched = $6, \
         inserted = $7, updated = $8, unchanged = $9, deactivated = $10, rejected = $11, duplicates = $12, \
         no_coordinates = $13, error = $14, failed_pages = $15 WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(now)
    .bind(as_i64(totals.calls))
    .bind(as_i64(totals.pages))
    .bind(as_i64(totals.rows_fetched))
    .bind(as_i64(totals.inserted))
    .bind(as_i64(totals.updated))
    .bind(as_i64(totals.unchanged))
    .bind(as_i64(totals.deactivated))
    .bind(as_i64(totals.rejected))
    .bind(as_i64(totals.duplicates))
    .bind(as_i64(totals.no_coordinates))
    .bind(error)
    .bind(failed_pages)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn get_run(db: &Db, id: i64) -> Result<Option<IngestRun>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "SELECT {COLUMNS} FROM ingest_runs WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

/// Filters for [`list_runs`]; empty fields do not filter.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    /// `items` or `markets`.
    pub kind: Option<String>,
    pub source: Option<String>,
    pub status: Option<String>,
}

/// A page of runs, newest first, before `before` (exclusive), and the cursor of the next page.
pub async fn list_runs(
    db: &Db,
    filter: &RunFilter,
    before: Option<i64>,
    limit: usize,
) -> Result<(Vec<IngestRun>, Option<String>)> {
    let mut f = Filter::new();
    if let Some(kind) = &filter.kind {
        f.eq_str("kind", kind);
    }
    if let Some(source) = &filter.source {
        f.eq_str("source", source);
    }
    if let Some(status) = &filter.status {
        f.eq_str("status", status);
    }
    f.lt_i64("id", before.unwrap_or(i64::MAX));
    let sql = format!(
        "SELECT {COLUMNS} FROM ingest_runs {} ORDER BY id DESC LIMIT {}",
        f.where_clause(),
        limit + 1
    );
    let rows: Vec<IngestRun> = f
        .bind_all(sqlx::query_as(sqlx::AssertSqlSafe(&*sql)))
        .fetch_all(db.pool())
        .await?;
    Ok(cursor::page(rows, limit, |r| r.id))
}
