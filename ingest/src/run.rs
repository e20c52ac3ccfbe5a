//! One ingest run, end to end: fetch → validate → de-duplicate → chunked upserts → run record.
//!
//! ```text
//! feed task (pages, bounded) ──► Dedup ──► chunk buffer ──► apply_chunk (one transaction each)
//!                                                   │              ├─► rows stamped `seen_run`
//!                                                   │              └─► outbox event (markets)
//!                                                   └─► after a complete run of a full source:
//!                                                       deactivate active rows with an older stamp
//! ```
//!
//! Memory is bounded by the chunks in flight, not by the list's length: the rows themselves carry
//! which run last saw them, so the run keeps no set of every id (see [`Dedup`]).
//!
//! Outcomes: **succeeded** (every page applied, vanished rows deactivated), **partial** (some pages
//! failed after their retries, or more than [`RunOptions::max_rejected_share`] of the rows were
//! rejected: everything else applied, nothing deactivated, the pages and the rejections reported),
//! **failed** (the source stopped, a write failed, or the source had rows and none could be
//! stored: the chunks committed before stay, the rows buffered for the next chunk are dropped, so
//! the database never holds half a chunk).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use store::catalog::{self, CatalogRow, ChunkCounts, ItemRow, MarketRow};
use store::ingest_runs::{self, status, RunTotals};
use store::live::Cache;
use store::{Clock, Db, Dialect};
use tokio::task::JoinSet;

use crate::feed::{self, error_chain, Batch, Event, FeedRecord, SourceSpec};
use crate::record::Rejection;
use crate::Dedup;

/// What a run ingests: one of the catalog tables.
pub type Kind = store::catalog::Table;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Partial,
    Failed,
}

impl Outcome {
    /// The run record's status.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => status::SUCCEEDED,
            Outcome::Partial => status::PARTIAL,
            Outcome::Failed => status::FAILED,
        }
    }

    /// The process exit code a cron job can act on: 0 succeeded, 3 partial, 1 failed.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Succeeded => 0,
            Outcome::Partial => 3,
            Outcome::Failed => 1,
        }
    }
}

/// Default rows per chunk (one transaction) on PostgreSQL, where four chunks are written at once.
pub const DEFAULT_CHUNK_SIZE: usize = 1000;
/// Default rows per chunk on SQLite, whose one writer gains from fewer, larger transactions
/// (300,000 rows inserted: 61k rows/s at 1,000 per chunk, 117k at 4,000, 140-190k at 10,000; see
/// BENCHMARKS.md). A chunk holds the write lock for about 50-130 ms.
pub const DEFAULT_SQLITE_CHUNK_SIZE: usize = 10_000;
/// Rows per chunk when [`RunOptions::chunk_size`] is not set.
pub fn default_chunk_size(dialect: Dialect) -> usize {
    match dialect {
        Dialect::Sqlite => DEFAULT_SQLITE_CHUNK_SIZE,
        Dialect::Postgres => DEFAULT_CHUNK_SIZE,
    }
}

/// Chunk transactions in flight when [`RunOptions::write_concurrency`] is not set: SQLite has one
/// writer anyway; PostgreSQL gains up to about four on two cores (see BENCHMARKS.md).
pub fn default_write_concurrency(dialect: Dialect) -> usize {
    match dialect {
        Dialect::Sqlite => 1,
        Dialect::Postgres => 4,
    }
}

/// Rejections kept in the report (all are counted).
const REJECTION_SAMPLE: usize = 20;

/// The share of a run's rows (rejected / fetched) that may be rejected before the run is
/// `partial`. A public list has a few broken rows on a good night; many more mean the layout or
/// the values changed (a renamed column, new kind labels) and someone should look.
pub const DEFAULT_MAX_REJECTED_SHARE: f64 = 0.01;

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The natural-key namespace (`source` column); `None`: [`SourceSpec::default_name`].
    pub source_name: Option<String>,
    /// Rows per chunk, 1..=[`catalog::MAX_CHUNK`]; `None`: [`DEFAULT_SQLITE_CHUNK_SIZE`] on SQLite,
    /// [`DEFAULT_CHUNK_SIZE`] on PostgreSQL.
    pub chunk_size: Option<usize>,
    /// Chunk transactions in flight at once; `None`: 1 on SQLite (one writer anyway), 4 on PostgreSQL.
    pub write_concurrency: Option<usize>,
    /// Classify against the database and report, but write nothing (no run record either).
    pub dry_run: bool,
    /// The source lists everything it has, so rows missing from a complete run are deactivated.
    pub full_source: bool,
    /// The share of the rows fetched (0.0..=1.0) that may be rejected; a run that rejects more is
    /// [`Outcome::Partial`] and deactivates nothing. Default [`DEFAULT_MAX_REJECTED_SHARE`] (1 %).
    pub max_rejected_share: f64,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            source_name: None,
            chunk_size: None,
            write_concurrency: None,
            dry_run: false,
            full_source: true,
            max_rejected_share: DEFAULT_MAX_REJECTED_SHARE,
        }
    }
}

/// Where a run stands, for progress displays.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub pages: u64,
    pub total_pages: Option<u64>,
    pub rows_fetched: u64,
    /// Rows applied (inserted + updated + unchanged) so far.
    pub applied: u64,
    pub failed_pages: usize,
    pub elapsed: Duration,
}

/// Receives progress after every batch. `()` ignores it.
pub trait Progress: Send + Sync {
    fn update(&self, snapshot: &Snapshot);
}

impl Progress for () {
    fn update(&self, _: &Snapshot) {}
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run record, `None` for dry runs.
    pub run_id: Option<i64>,
    pub source: String,
    pub kind: Kind,
    pub outcome: Outcome,
    pub totals: RunTotals,
    pub failed_pages: Vec<u32>,
    pub error: Option<String>,
    pub dry_run: bool,
    /// The first rejections (all are counted in `totals.rejected`).
    pub rejections: Vec<Rejection>,
    /// Up to 20 ids of markets kept without usable coordinates.
    pub no_coordinates_sample: Vec<String>,
    pub elapsed: Duration,
    /// Time spent in chunk transactions, summed over the writers.
    pub write_time: Duration,
}

/// Why a run could not even be recorded (the database is unreachable). Every other failure is
/// an [`Outcome::Failed`] in the report and the run record.
#[derive(Debug, thiserror::Error)]
#[error("ingest run: {what}")]
pub struct RunError {
    what: &'static str,
    #[source]
    source: store::Error,
}

fn db_error(what: &'static str) -> impl FnOnce(store::Error) -> RunError {
    move |source| RunError { what, source }
}

/// A record kind that can be written to its catalog table.
pub trait Ingestible: FeedRecord + CatalogRow + Send + Sync + 'static {
    /// True for markets without usable coordinates (kept, reported).
    fn lacks_coordinates(&self) -> bool {
        false
    }
}

impl Ingestible for ItemRow {}

impl Ingestible for MarketRow {
    fn lacks_coordinates(&self) -> bool {
        !self.has_coordinates()
    }
}

/// Everything a run needs from the application.
pub struct RunContext<'a> {
    pub db: &'a Db,
    /// The live cache whose item search generation is bumped when items change.
    pub cache: Option<&'a dyn Cache>,
    pub clock: &'a Clock,
    pub progress: &'a dyn Progress,
}

/// Ingests items or markets from `spec`.
pub async fn run(
    ctx: &RunContext<'_>,
    kind: Kind,
    spec: &SourceSpec,
    opts: &RunOptions,
) -> Result<RunReport, RunError> {
    match kind {
        Kind::Items => run_kind::<ItemRow>(ctx, spec, opts).await,
        Kind::Markets => run_kind::<MarketRow>(ctx, spec, opts).await,
    }
}

/// Ingests one kind of record.
pub async fn run_kind<T: Ingestible>(
    ctx: &RunContext<'_>,
    spec: &SourceSpec,
    opts: &RunOptions,
) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let buffer = match spec {
        SourceSpec::Paged(cfg) => cfg.concurrency.max(1),
        _ => 1,
    };
    let mut feed = feed::start::<T>(spec, buffer).await;
    let source = opts
        .source_name
        .clone()
        .unwrap_or_else(|| spec.default_name(feed.layout));
    let kind = T::TABLE;
    let run_id = if opts.dry_run {
        None
    } else {
        let id = ingest_runs::start_run(ctx.db, &source, kind.as_str(), ctx.clock.now_ms())
            .await
            .map_err(db_error("opening the run record"))?;
        Some(id)
    };
    tracing::info!(run.id = ?run_id, source = %source, kind = kind.as_str(), dry_run = opts.dry_run, "ingest run started");

    let mut state = RunState::<T>::new(ctx, &source, opts, run_id, started);
    while let Some(event) = feed.events.recv().await {
        match event {
            Event::Batch(batch) => {
                if let Err(e) = state.take_batch(batch).await {
                    state.fail(e, None);
                    break;
                }
            }
            Event::PageFailed(e) => {
                tracing::warn!(run.id = ?run_id, error = %error_chain(&e), "page failed after its retries; going on");
                if let Some(page) = e.page {
                    state.failed_pages.push(page);
                }
                if state.error.is_none() {
                    state.error = Some(error_chain(&e));
                }
            }
            Event::Stopped(message, page) => {
                state.fail(message, page);
                break;
            }
        }
        state.report_progress();
    }
    state.totals.calls = feed.stats.snapshot().calls;
    // Stops the requests still in flight when the run stopped early.
    drop(feed);
    state.finish().await;
    let report = state.into_report(run_id);
    if let Some(id) = run_id {
        ingest_runs::finish_run(
            ctx.db,
            id,
            report.outcome.as_str(),
            &report.totals,
            report.error.as_deref(),
            &report.failed_pages,
            ctx.clock.now_ms(),
        )
        .await
        .map_err(db_error("closing the run record"))?;
    }
    tracing::info!(
        run.id = ?run_id,
        status = report.outcome.as_str(),
        inserted = report.totals.inserted,
        updated = report.totals.updated,
        unchanged = report.totals.unchanged,
        deactivated = report.totals.deactivated,
        rejected = report.totals.rejected,
        calls = report.totals.calls,
        "ingest run finished"
    );
    Ok(report)
}

/// What a chunk writer hands back: its counts, its time, and the chunk (whose ids then leave
/// the [`Dedup`] window).
struct Written<R> {
    counts: Result<ChunkCounts, store::Error>,
    took: Duration,
    chunk: Vec<R>,
}

/// The mutable state of one run.
struct RunState<'a, T: Ingestible> {
    ctx: &'a RunContext<'a>,
    source: &'a str,
    opts: &'a RunOptions,
    started: Instant,
    /// The run record's id (`None` for dry runs): the stamp of every row the run applies.
    run_id: Option<i64>,
    dedup: Dedup,
    /// Ids of rejected rows: present in the source, so not deactivated. Grows with the rejected
    /// rows only.
    rejected_ids: HashSet<String>,
    buffer: Vec<T>,
    writers: JoinSet<Written<T>>,
    write_concurrency: usize,
    totals: RunTotals,
    total_pages: Option<u64>,
    failed_pages: Vec<u32>,
    stopped: bool,
    /// More rows were rejected than [`RunOptions::max_rejected_share`] allows.
    rejected_too_many: bool,
    error: Option<String>,
    rejections: Vec<Rejection>,
    no_coordinates_sample: Vec<String>,
    write_time: Duration,
}

impl<'a, T: Ingestible> RunState<'a, T> {
    fn new(
        ctx: &'a RunContext<'a>,
        source: &'a str,
        opts: &'a RunOptions,
        run_id: Option<i64>,
        started: Instant,
    ) -> Self {
        let write_concurrency = opts
            .write_concurrency
            .unwrap_or(default_write_concurrency(ctx.db.dialect()));
        Self {
            ctx,
            source,
            opts,
            started,
            run_id,
            dedup: match run_id {
                Some(_) => Dedup::windowed(),
                None => Dedup::whole_run(),
            },
            rejected_ids: HashSet::new(),
            buffer: Vec::new(),
            writers: JoinSet::new(),
            write_concurrency: write_concurrency.max(1),
            totals: RunTotals::default(),
            total_pages: None,
            failed_pages: Vec::new(),
            stopped: false,
            rejected_too_many: false,
            error: None,
            rejections: Vec::new(),
            no_coordinates_sample: Vec::new(),
            write_time: Duration::ZERO,
        }
    }

    fn chunk_size(&self) -> usize {
        self.opts
            .chunk_size
            .unwrap_or(default_chunk_size(self.ctx.db.dialect()))
            .clamp(1, catalog::MAX_CHUNK)
    }

    /// Validates (counts the rejections), de-duplicates and buffers a batch; writes full chunks.
    async fn take_batch(&mut self, batch: Batch<T>) -> Result<(), String> {
        let Batch {
            total_pages,
            mut records,
            rejected,
            ..
        } = batch;
        self.totals.pages += 1;
        self.total_pages = total_pages.map(u64::from).or(self.total_pages);
        self.totals.rows_fetched += (records.len() + rejected.len()) as u64;
        self.totals.rejected += rejected.len() as u64;
        for rejection in rejected {
            if self.rejections.len() < REJECTION_SAMPLE {
                tracing::warn!(source = %self.source, rejection = %rejection, "row rejected");
                self.rejections.push(rejection.clone());
            }
            if let Some(id) = rejection.source_id {
                self.rejected_ids.insert(id);
            }
        }
        self.totals.duplicates += self.dedup.retain(&mut records) as u64;
        let size = self.chunk_size();
        for record in records {
            if record.lacks_coordinates() {
                self.totals.no_coordinates += 1;
                if self.no_coordinates_sample.len() < REJECTION_SAMPLE {
                    self.no_coordinates_sample
                        .push(record.source_id().to_owned());
                }
            }
            self.buffer.push(record);
            // Written as soon as it is full: a whole-list source (CSV, price API) arrives as one
            // batch, and splitting that afterwards would copy the rest at every chunk.
            if self.buffer.len() >= size {
                let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(size));
                self.write(chunk).await?;
            }
        }
        Ok(())
    }

    /// Starts writing a chunk, first waiting for a writer slot.
    async fn write(&mut self, chunk: Vec<T>) -> Result<(), String> {
        while self.writers.len() >= self.write_concurrency {
            self.join_one().await?;
        }
        let db = self.ctx.db.clone();
        let source = self.source.to_owned();
        let now = self.ctx.clock.now_ms();
        let run_id = self.run_id;
        self.writers.spawn(async move {
            let started = Instant::now();
            let counts = match run_id {
                Some(run) => catalog::apply_chunk(&db, &source, &chunk, now, run).await,
                None => catalog::classify_chunk(&db, &source, &chunk).await,
            };
            Written {
                counts,
                took: started.elapsed(),
                chunk,
            }
        });
        Ok(())
    }

    /// Waits for one chunk writer and adds its counts.
    async fn join_one(&mut self) -> Result<(), String> {
        let Some(joined) = self.writers.join_next().await else {
            return Ok(());
        };
        match joined {
            Ok(Written {
                counts: Ok(counts),
                took,
                chunk,
            }) => {
                self.write_time += took;
                self.totals += counts;
                self.dedup.release(chunk.iter().map(|r| r.source_id()));
                Ok(())
            }
            Ok(Written { counts: Err(e), .. }) => {
                Err(format!("writing a chunk failed: {}", error_chain(&e)))
            }
            Err(e) => Err(format!("a chunk writer stopped: {e}")),
        }
    }

    /// Waits for every chunk writer, keeping the first error.
    async fn drain_writers(&mut self) -> Result<(), String> {
        let mut first = Ok(());
        while !self.writers.is_empty() {
            if let Err(e) = self.join_one().await {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    fn fail(&mut self, message: String, page: Option<u32>) {
        tracing::error!(source = %self.source, error = %message, "ingest run stopped");
        self.stopped = true;
        if let Some(page) = page {
            self.failed_pages.push(page);
        }
        self.error = Some(message);
    }

    /// Writes the last chunk (unless the run stopped), waits for the writers, deactivates the rows
    /// that vanished after a complete run of a full source, and invalidates cached searches.
    async fn finish(&mut self) {
        if !self.stopped && !self.buffer.is_empty() {
            let last = std::mem::take(&mut self.buffer);
            if let Err(e) = self.write(last).await {
                self.fail(e, None);
            }
        }
        // Rows buffered for an unfinished chunk are dropped: a chunk is applied whole or not at all.
        self.buffer.clear();
        if let Err(e) = self.drain_writers().await {
            self.fail(e, None);
        }
        // Judged before deactivating: a list whose rows were mostly rejected does not say which
        // rows vanished (a rejected row without an id cannot be told from a missing one).
        self.judge_rejections();
        let complete = !self.stopped && self.failed_pages.is_empty() && !self.rejected_too_many;
        if complete && self.opts.full_source {
            if let Err(e) = self.deactivate_vanished().await {
                self.fail(e, None);
            }
        }
        let changed = self.totals.inserted + self.totals.updated + self.totals.deactivated;
        if T::TABLE == Kind::Items && changed > 0 && !self.opts.dry_run {
            if let Some(cache) = self.ctx.cache {
                if let Err(e) = catalog::invalidate_item_search(cache).await {
                    tracing::warn!(error = %e, "could not invalidate cached item searches; they expire with their TTL");
                }
            }
        }
    }

    /// Fails a run that stored nothing from a source that had rows, and marks one that rejected
    /// more than its allowed share; either way the report's error says why.
    fn judge_rejections(&mut self) {
        if self.stopped {
            return;
        }
        let t = &self.totals;
        let (fetched, rejected) = (t.rows_fetched, t.rejected);
        let stored = t.inserted + t.updated + t.unchanged;
        let first = match self.rejections.first() {
            Some(r) => format!("; first: {r}"),
            None => String::new(),
        };
        if fetched > 0 && stored == 0 {
            // Exit 0 here would tell cron all is well while the database got nothing.
            let why = if rejected == fetched {
                format!("all {fetched} rows were rejected{first}")
            } else {
                let duplicates = t.duplicates;
                format!("none of the {fetched} rows fetched was stored ({rejected} rejected, {duplicates} duplicates){first}")
            };
            let why = self.with_earlier_error(why);
            self.fail(why, None);
        } else if fetched > 0 && rejected as f64 > self.opts.max_rejected_share * fetched as f64 {
            let share = percent(rejected as f64 / fetched as f64);
            let allowed = percent(self.opts.max_rejected_share);
            let why = format!(
                "{rejected} of {fetched} rows were rejected ({share}, more than the {allowed} allowed){first}"
            );
            tracing::warn!(source = %self.source, error = %why, "too many rows rejected");
            self.rejected_too_many = true;
            self.error = Some(self.with_earlier_error(why));
        }
    }

    /// `message`, followed by the error already recorded (a failed page), so neither is lost.
    fn with_earlier_error(&self, message: String) -> String {
        match &self.error {
            Some(earlier) => format!("{message}; also {earlier}"),
            None => message,
        }
    }

    /// Marks the source's active rows that this run did not see as inactive, in chunks.
    async fn deactivate_vanished(&mut self) -> Result<(), String> {
        if self.totals.inserted + self.totals.updated + self.totals.unchanged == 0 {
            // An empty list from a source that had rows is far likelier a fault than the truth.
            tracing::warn!(source = %self.source, "the source returned no rows; nothing deactivated");
            return Ok(());
        }
        let table = T::TABLE;
        // A dry run stamps nothing: its in-memory set says what it saw.
        let (seen, rejected) = (&self.dedup, &self.rejected_ids);
        let vanished = catalog::vanished_ids(self.ctx.db, table, self.source, self.run_id, |sid| {
            (self.run_id.is_none() && seen.contains(sid)) || rejected.contains(sid)
        })
        .await
        .map_err(|e| format!("listing active rows failed: {}", error_chain(&e)))?;
        if self.opts.dry_run {
            self.totals.deactivated = vanished.len() as u64;
            return Ok(());
        }
        for ids in vanished.chunks(self.chunk_size()) {
            let done = catalog::deactivate(self.ctx.db, table, ids, self.ctx.clock.now_ms())
                .await
                .map_err(|e| format!("deactivating vanished rows failed: {}", error_chain(&e)))?;
            self.totals.deactivated += done;
        }
        if !vanished.is_empty() {
            tracing::info!(source = %self.source, deactivated = self.totals.deactivated, "rows that vanished from the source marked inactive");
        }
        Ok(())
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            pages: self.totals.pages,
            total_pages: self.total_pages,
            rows_fetched: self.totals.rows_fetched,
            applied: self.totals.inserted + self.totals.updated + self.totals.unchanged,
            failed_pages: self.failed_pages.len(),
            elapsed: self.started.elapsed(),
        }
    }

    fn report_progress(&self) {
        self.ctx.progress.update(&self.snapshot());
    }

    fn into_report(self, run_id: Option<i64>) -> RunReport {
        self.ctx.progress.update(&self.snapshot());
        let outcome = if self.stopped {
            Outcome::Failed
        } else if !self.failed_pages.is_empty() || self.rejected_too_many {
            Outcome::Partial
        } else {
            Outcome::Succeeded
        };
        RunReport {
            run_id,
            source: self.source.to_owned(),
            kind: T::TABLE,
            outcome,
            totals: self.totals,
            failed_pages: self.failed_pages,
            error: self.error,
            dry_run: self.opts.dry_run,
            rejections: self.rejections,
            no_coordinates_sample: self.no_coordinates_sample,
            elapsed: self.started.elapsed(),
            write_time: self.write_time,
        }
    }
}

/// A share as a percentage for people: `0.01` is `1 %`, `1/3` is `33.33 %`.
fn percent(share: f64) -> String {
    let text = format!("{:.2}", share * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} %")
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn shares_read_as_percentages_without_trailing_zeros() {
        assert_eq!(percent(0.01), "1 %");
        assert_eq!(percent(0.005), "0.5 %");
        assert_eq!(percent(0.07), "7 %");
        assert_eq!(percent(1.0 / 3.0), "33.33 %");
        assert_eq!((percent(0.0), percent(1.0)), ("0 %".into(), "100 %".into()));
    }
}
