//! End-to-end ingest benchmark: synthetic items served by the in-process mock with a latency per
//! page, fetched with a concurrency, validated, de-duplicated and written in chunks to SQLite or
//! PostgreSQL, with the run record. Prints wall time, rows/s, the latency bound, the time spent in
//! chunk transactions and peak memory; then, with `--db-only`, the database alone.
//!
//! ```text
//! cargo run --release -p gonggu-ingest --example ingest_bench -- \
//!     [--rows 300000] [--latency-ms 50] [--concurrency 16] [--db sqlite|postgres] \
//!     [--pg-url postgres://postgres@127.0.0.1:5432/test] [--chunk N] [--writers N] [--db-only]
//! ```
//! PostgreSQL runs in a fresh schema (dropped at the end). Peak RSS is the process's, mock included.

use std::time::{Duration, Instant};

use ingest::feed::SourceSpec;
use ingest::mock::{synthetic_item, MockConfig, MockData, MockServer};
use ingest::paged::PagedConfig;
use ingest::run::{self, Kind, RunContext, RunOptions, RunReport};
use store::catalog::{self, ItemRow};
use store::{Clock, Db};

struct Args {
    rows: usize,
    latency_ms: u64,
    concurrency: usize,
    db: String,
    pg_url: String,
    chunk: Option<usize>,
    writers: Option<usize>,
    db_only: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        rows: 300_000,
        latency_ms: 50,
        concurrency: 16,
        db: "sqlite".into(),
        pg_url: "postgres://postgres@127.0.0.1:5432/test".into(),
        chunk: None,
        writers: None,
        db_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--rows" => a.rows = num(value()?)?,
            "--latency-ms" => a.latency_ms = num(value()?)? as u64,
            "--concurrency" => a.concurrency = num(value()?)?,
            "--db" => a.db = value()?,
            "--pg-url" => a.pg_url = value()?,
            "--chunk" => a.chunk = Some(num(value()?)?),
            "--writers" => a.writers = Some(num(value()?)?),
            "--db-only" => a.db_only = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// Peak resident memory of this process in MiB (Linux), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

async fn open_db(
    a: &Args,
    dir: &std::path::Path,
) -> Result<(Db, Option<String>), Box<dyn std::error::Error>> {
    let (url, schema) = match a.db.as_str() {
        "sqlite" => (Db::sqlite_url(&dir.join("bench.db")), None),
        "postgres" => {
            let url = store::testing::fresh_pg_url(&a.pg_url).await;
            let schema = url.rsplit("search_path%3D").next().map(str::to_owned);
            (url, schema)
        }
        other => return Err(format!("--db {other}: expected sqlite or postgres").into()),
    };
    let db = Db::connect(&url, 8).await?;
    db.migrate().await?;
    Ok((db, schema))
}

fn print_run(label: &str, r: &RunReport, a: &Args) {
    let t = &r.totals;
    let written = t.inserted + t.updated + t.unchanged;
    let bound =
        Duration::from_millis(a.latency_ms).mul_f64(t.calls as f64 / a.concurrency.max(1) as f64);
    println!(
        "{label}: {} rows ({} inserted, {} unchanged) in {:.2?} = {:.0} rows/s; {} calls, latency bound {:.2?}; \
         chunk transactions {:.2?} summed over the writers ({:.0} rows/s per writer); status {}",
        written,
        t.inserted,
        t.unchanged,
        r.elapsed,
        written as f64 / r.elapsed.as_secs_f64(),
        t.calls,
        bound,
        r.write_time,
        written as f64 / r.write_time.as_secs_f64().max(1e-9),
        r.outcome.as_str(),
    );
}

/// The database alone: the same rows written in chunks, no HTTP, with as many chunk transactions
/// in flight as a run uses (`--writers`; by default 1 on SQLite, 4 on PostgreSQL).
async fn db_only(db: &Db, a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let clock = Clock::system();
    let chunk = a.chunk.unwrap_or(run::default_chunk_size(db.dialect()));
    let writers = a
        .writers
        .unwrap_or(run::default_write_concurrency(db.dialect()))
        .max(1);
    for (run, pass) in [(1, "insert"), (2, "unchanged"), (3, "update")] {
        let started = Instant::now();
        let mut counts = catalog::ChunkCounts::default();
        let mut in_flight = tokio::task::JoinSet::new();
        let mut start = 0;
        while start < a.rows {
            let end = (start + chunk).min(a.rows);
            let rows: Vec<ItemRow> = (start..end)
                .filter_map(|i| ingest::record::item_from_goods(&synthetic_item(i)).ok())
                .map(|mut r| {
                    if pass == "update" {
                        r.name.push_str(" v2");
                    }
                    r
                })
                .collect();
            while in_flight.len() >= writers {
                if let Some(done) = in_flight.join_next().await {
                    counts += done??;
                }
            }
            let (db, now) = (db.clone(), clock.now_ms());
            in_flight
                .spawn(async move { catalog::apply_chunk(&db, "db-only", &rows, now, run).await });
            start = end;
        }
        while let Some(done) = in_flight.join_next().await {
            counts += done??;
        }
        let took = started.elapsed();
        println!(
            "db-only {pass} ({chunk} rows per chunk, {writers} writers): {} rows in {took:.2?} = {:.0} rows/s ({counts:?})",
            a.rows,
            a.rows as f64 / took.as_secs_f64(),
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    let dir = tempfile_dir()?;
    let (db, schema) = open_db(&a, &dir).await?;
    if a.db_only {
        db_only(&db, &a).await?;
    } else {
        let server = MockServer::start(
            MockData::synthetic_items(a.rows),
            MockConfig {
                latency: Duration::from_millis(a.latency_ms),
                ..MockConfig::default()
            },
        )
        .await?;
        let mut cfg = PagedConfig::new(server.items_url(), "");
        cfg.concurrency = a.concurrency;
        let spec = SourceSpec::Paged(cfg);
        let opts = RunOptions {
            chunk_size: a.chunk,
            write_concurrency: a.writers,
            ..RunOptions::default()
        };
        let clock = Clock::system();
        let ctx = RunContext {
            db: &db,
            cache: None,
            clock: &clock,
            progress: &(),
        };
        let first = run::run(&ctx, Kind::Items, &spec, &opts).await?;
        print_run(
            &format!("{} c={} first run", a.db, a.concurrency),
            &first,
            &a,
        );
        let second = run::run(&ctx, Kind::Items, &spec, &opts).await?;
        print_run(
            &format!("{} c={} same data again", a.db, a.concurrency),
            &second,
            &a,
        );
    }
    println!("peak RSS {:.1} MiB", peak_rss_mib().unwrap_or(f64::NAN));
    if let Some(schema) = schema {
        sqlx::query(sqlx::AssertSqlSafe(&*format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(db.pool())
        .await?;
    }
    db.close().await;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// A scratch folder for the SQLite file.
fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(store::testing::unique_name("ingest-bench"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
