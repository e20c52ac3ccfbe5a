//! Fetch-only throughput against the in-process mock: wall time, rows/s, calls and peak memory.
//!
//! ```text
//! cargo run --release -p gonggu-ingest --example paged_throughput -- [ROWS] [LATENCY_MS] [CONCURRENCY]
//! ```
//! Defaults: 300,000 rows, 50 ms a page, concurrency 16. The database is not involved: this
//! measures the client and its parsing; the latency bound is `pages × latency / concurrency`.

use std::time::{Duration, Instant};

use futures::StreamExt;
use ingest::mock::{MockConfig, MockData, MockServer};
use ingest::paged::{fetch_items, PagedConfig};

fn arg<T: std::str::FromStr>(n: usize, default: T) -> T {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Peak resident memory of this process in KiB (Linux), if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = arg(1, 300_000);
    let latency = Duration::from_millis(arg(2, 50));
    let concurrency: usize = arg(3, 16);
    let server = MockServer::start(
        MockData::synthetic_items(rows),
        MockConfig {
            latency,
            ..MockConfig::default()
        },
    )
    .await?;
    let mut cfg = PagedConfig::new(server.items_url(), "");
    cfg.concurrency = concurrency;

    let started = Instant::now();
    let mut pages = fetch_items(&cfg)?;
    let (mut records, mut rejected) = (0usize, 0usize);
    while let Some(page) = pages.next().await {
        let page = page?;
        records += page.records.len();
        rejected += page.rejected.len();
    }
    let elapsed = started.elapsed();
    let calls = pages.stats().snapshot().calls;
    let bound = latency.mul_f64(calls as f64 / concurrency as f64);
    println!(
        "rows {records} (rejected {rejected}), calls {calls}, concurrency {concurrency}, latency {latency:?}: \
         {elapsed:.2?} ({:.0} rows/s), latency bound {bound:.2?}, peak RSS {} KiB",
        records as f64 / elapsed.as_secs_f64(),
        peak_rss_kib().map_or_else(|| "?".to_owned(), |k| k.to_string()),
    );
    Ok(())
}
