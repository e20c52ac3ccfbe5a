//! `gonggu ingest items|markets`: one run of the nightly import, with a progress bar on a terminal,
//! plain log lines otherwise, a summary at the end and exit codes a cron job can act on:
//! 0 succeeded, 3 partial (some pages failed; the rest applied), 1 failed, 2 bad usage.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Args, ValueEnum};
use ingest::config::{self as defaults, ConfigError, IngestConfig, IngestError};
use ingest::csv::CsvEncoding;
use ingest::run::{Kind, Outcome, Progress, RunContext, RunOptions, RunReport, Snapshot};
use store::live::Live;
use store::{Clock, Db};

/// What to ingest.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum IngestWhat {
    Items,
    Markets,
}

pub use crate::config::IngestSource;

/// `gonggu ingest` arguments.
#[derive(Args, Debug, Clone)]
pub struct IngestArgs {
    /// items or markets.
    #[arg(value_enum)]
    pub what: IngestWhat,

    /// The CSV file, with --source csv.
    pub file: Option<PathBuf>,

    /// Where the rows come from.
    #[arg(long, value_enum)]
    pub source: IngestSource,

    /// The paged operation's address, or the price API's service root.
    #[arg(long, env = "GONGGU_INGEST_URL")]
    pub url: Option<String>,

    /// The data.go.kr service key, encoded or decoded as the portal shows it. Prefer the variable:
    /// a flag is visible to other users of the machine. Never logged.
    #[arg(long, env = "GONGGU_SERVICE_KEY", hide_env_values = true)]
    pub service_key: Option<String>,

    /// A file holding the service key (surrounding whitespace ignored): keeps it out of the
    /// process list and the environment.
    #[arg(long, env = "GONGGU_SERVICE_KEY_FILE", conflicts_with = "service_key")]
    pub service_key_file: Option<PathBuf>,

    /// Pages requested at once (paged sources).
    #[arg(long, env = "GONGGU_INGEST_CONCURRENCY", default_value_t = defaults::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,

    /// CSV encoding: auto (UTF-8 when valid, else CP949), cp949 or utf-8. A BOM always means UTF-8.
    #[arg(long, default_value = "auto", value_parser = parse_encoding)]
    pub encoding: CsvEncoding,

    /// Fetch, validate and compare with the database, report, and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// The natural-key namespace of the rows (default: paged-api:<operation>, price-api, or
    /// csv:<layout>). Rows of one source are deactivated only by runs of that source.
    #[arg(long)]
    pub source_name: Option<String>,

    /// The share of rows (0 to 1) that may be rejected before the run counts as partial (exit 3);
    /// a run that stores nothing from a non-empty source fails (exit 1).
    #[arg(long, env = "GONGGU_INGEST_MAX_REJECTED_SHARE", default_value_t = defaults::DEFAULT_MAX_REJECTED_SHARE)]
    pub max_rejected_share: f64,

    /// The source is not a full list: do not deactivate rows missing from it.
    #[arg(long)]
    pub incremental: bool,

    /// Rows per chunk, one transaction each, at most 10000 (default: 10000 on SQLite, 1000 on
    /// PostgreSQL).
    #[arg(long, env = "GONGGU_INGEST_CHUNK_SIZE")]
    pub chunk_size: Option<usize>,

    /// Chunk transactions in flight (default: 1 on SQLite, 4 on PostgreSQL).
    #[arg(long)]
    pub write_concurrency: Option<usize>,

    /// numOfRows per page (paged sources, at most 1000).
    #[arg(long, default_value_t = defaults::DEFAULT_ROWS_PER_PAGE)]
    pub rows_per_page: u32,

    /// Name of the paged API's format switch: type, _type, returnType or dataType ("" for none).
    #[arg(long, default_value = defaults::DEFAULT_FORMAT_PARAM)]
    pub format_param: String,

    /// Value of the format switch: json, JSON or xml. Replies are recognised whatever they are.
    #[arg(long, default_value = defaults::DEFAULT_FORMAT_VALUE)]
    pub format_value: String,

    /// Name of the key parameter: serviceKey (some operations want ServiceKey).
    #[arg(long, default_value = defaults::DEFAULT_KEY_PARAM)]
    pub key_param: String,

    /// Extra query pairs for the paged operation, NAME=VALUE (repeatable).
    #[arg(long = "param", value_parser = parse_pair)]
    pub params: Vec<(String, String)>,

    /// Retries of a failed call (timeouts, 5xx, 429, quota codes), with exponential backoff.
    #[arg(long, default_value_t = defaults::DEFAULT_MAX_RETRIES)]
    pub max_retries: u32,

    /// Delay before the first retry, in milliseconds (doubles each time, with jitter, up to 30 s).
    #[arg(long, default_value_t = defaults::DEFAULT_RETRY_BASE_MS)]
    pub retry_base_ms: u64,

    /// Whole-request timeout in seconds.
    #[arg(long, default_value_t = defaults::DEFAULT_TIMEOUT_SECS)]
    pub timeout_secs: u64,
}

fn parse_encoding(s: &str) -> Result<CsvEncoding, String> {
    s.parse()
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))
}

/// A run that did not succeed, for the process exit code.
#[derive(Debug, thiserror::Error)]
#[error("ingest run {}{}", .outcome.as_str(), .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct IngestFailed {
    pub outcome: Outcome,
    detail: Option<String>,
}

impl IngestFailed {
    /// The exit code: 3 for a partial run, 1 for a failed one.
    pub fn exit_code(&self) -> u8 {
        self.outcome.exit_code()
    }
}

impl IngestArgs {
    /// The import these arguments describe, with the service key read (from its file if given).
    pub fn config(&self) -> Result<IngestConfig> {
        let service_key = crate::config::secret_from(
            self.service_key.as_deref(),
            self.service_key_file.as_deref(),
            "GONGGU_SERVICE_KEY_FILE",
        )?
        .unwrap_or_default();
        let source = self.source.kind();
        let kind = match self.what {
            IngestWhat::Items => Kind::Items,
            IngestWhat::Markets => Kind::Markets,
        };
        let config = IngestConfig {
            file: self.file.clone(),
            url: self.url.clone(),
            service_key,
            concurrency: self.concurrency,
            encoding: self.encoding,
            rows_per_page: self.rows_per_page,
            format_param: self.format_param.clone(),
            format_value: self.format_value.clone(),
            key_param: self.key_param.clone(),
            params: self.params.clone(),
            max_retries: self.max_retries,
            retry_base: Duration::from_millis(self.retry_base_ms),
            timeout: Duration::from_secs(self.timeout_secs),
            options: RunOptions {
                max_rejected_share: self.max_rejected_share,
                source_name: self.source_name.clone(),
                chunk_size: self.chunk_size,
                write_concurrency: self.write_concurrency,
                dry_run: self.dry_run,
                full_source: !self.incremental,
            },
            ..IngestConfig::new(kind, source)
        };
        // Refuse a source without what it needs before anything is opened.
        config.source_spec()?;
        Ok(config)
    }
}

/// Runs one ingest against `db` (and `live`'s cache), printing progress and the summary.
pub async fn run(db: &Db, live: &Live, clock: &Clock, config: &IngestConfig) -> Result<RunReport> {
    let progress = ConsoleProgress::new(std::io::stderr().is_terminal());
    let ctx = RunContext {
        db,
        cache: Some(live.cache.as_ref()),
        clock,
        progress: &progress,
    };
    let report = config.run(&ctx).await?;
    progress.done();
    println!("{}", summary(&report));
    Ok(report)
}

/// Turns a report into the command's result: an error (with its exit code) unless it succeeded.
pub fn check(report: &RunReport) -> Result<()> {
    match report.outcome {
        Outcome::Succeeded => Ok(()),
        outcome => Err(IngestFailed {
            outcome,
            detail: report.error.clone(),
        }
        .into()),
    }
}

/// The exit code for an error returned by a subcommand: 2 for bad usage, 3 for a partial
/// ingest, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let usage = |e: &(dyn std::error::Error + 'static)| {
        e.is::<ConfigError>() || matches!(e.downcast_ref(), Some(IngestError::Config(_)))
    };
    if err.chain().any(usage) {
        return 2;
    }
    err.downcast_ref::<IngestFailed>()
        .map_or(1, IngestFailed::exit_code)
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The end-of-run summary.
pub fn summary(r: &RunReport) -> String {
    let t = &r.totals;
    let run = match r.run_id {
        Some(id) => format!("run {id}"),
        None => "dry run, nothing written".to_owned(),
    };
    let mut lines = vec![
        format!(
            "ingest {} from {}: {} in {:.1?} ({run})",
            r.kind.as_str(),
            r.source,
            r.outcome.as_str(),
            r.elapsed
        ),
        format!(
            "  calls {}, pages {}, rows fetched {} (rejected {}, duplicates {})",
            thousands(t.calls),
            thousands(t.pages),
            thousands(t.rows_fetched),
            thousands(t.rejected),
            thousands(t.duplicates)
        ),
        format!(
            "  inserted {}, updated {}, unchanged {}, deactivated {}",
            thousands(t.inserted),
            thousands(t.updated),
            thousands(t.unchanged),
            thousands(t.deactivated)
        ),
    ];
    if t.no_coordinates > 0 {
        lines.push(format!(
            "  kept without usable coordinates (not in nearby search): {} (e.g. {})",
            thousands(t.no_coordinates),
            r.no_coordinates_sample.join(", ")
        ));
    }
    for rejection in &r.rejections {
        lines.push(format!("  rejected {rejection}"));
    }
    if !r.failed_pages.is_empty() {
        let pages: Vec<String> = r.failed_pages.iter().map(u32::to_string).collect();
        lines.push(format!("  failed pages: {}", pages.join(", ")));
    }
    if let Some(error) = &r.error {
        lines.push(format!("  error: {error}"));
    }
    lines.join("\n")
}

/// A one-line progress bar redrawn on a terminal; plain log lines every 50 pages otherwise.
struct ConsoleProgress {
    terminal: bool,
    last: Mutex<(Instant, u64)>,
}

impl ConsoleProgress {
    fn new(terminal: bool) -> Self {
        Self {
            terminal,
            last: Mutex::new((Instant::now(), 0)),
        }
    }

    fn done(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

const LOG_EVERY_PAGES: u64 = 50;

impl Progress for ConsoleProgress {
    fn update(&self, s: &Snapshot) {
        let rate = s.rows_fetched as f64 / s.elapsed.as_secs_f64().max(0.001);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if self.terminal {
            let finished = s.total_pages.is_some_and(|t| s.pages >= t);
            if last.0.elapsed() < Duration::from_millis(100) && !finished {
                return;
            }
            *last = (Instant::now(), s.pages);
            let total = s.total_pages.unwrap_or(0);
            let width = 30usize;
            let filled = (s.pages.min(total) * width as u64)
                .checked_div(total)
                .unwrap_or(0) as usize;
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[2K[{}{}] {}/{} pages  {} rows  {:.0} rows/s  {} failed",
                "#".repeat(filled),
                ".".repeat(width - filled),
                s.pages,
                s.total_pages
                    .map_or_else(|| "?".to_owned(), |t| t.to_string()),
                thousands(s.rows_fetched),
                rate,
                s.failed_pages
            );
            let _ = err.flush();
        } else if s.pages >= last.1 + LOG_EVERY_PAGES {
            *last = (Instant::now(), s.pages);
            tracing::info!(
                pages = s.pages,
                total_pages = s.total_pages,
                rows_fetched = s.rows_fetched,
                applied = s.applied,
                failed_pages = s.failed_pages,
                rows_per_sec = rate as u64,
                "ingest progress"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(300_000), "300,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn pairs_need_a_name() {
        assert_eq!(parse_pair("a=b=c"), Ok(("a".to_owned(), "b=c".to_owned())));
        assert!(parse_pair("=x").is_err());
        assert!(parse_pair("nothing").is_err());
    }

    #[test]
    fn a_partial_run_exits_with_3_and_a_failed_one_with_1() {
        let partial: anyhow::Error = IngestFailed {
            outcome: Outcome::Partial,
            detail: None,
        }
        .into();
        assert_eq!(exit_code(&partial), 3);
        assert_eq!(exit_code(&anyhow::anyhow!("no database")), 1);
        let usage = anyhow::Error::from(ConfigError("--url is required")).context("ingest");
        assert_eq!(exit_code(&usage), 2);
    }
}
