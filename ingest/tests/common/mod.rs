//! Helpers shared by the integration tests: a mock per test on port 0, quick retries.
#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt;
use ingest::mock::{FaultRule, MockConfig, MockData, MockServer};
use ingest::paged::{fetch_items, Page, PagedConfig};
use ingest::{FetchError, HttpSettings, ItemRow, RetryPolicy};

pub const KEY_DECODED: &str = "a1B2+c3/d4==";
pub const KEY_ENCODED: &str = "a1B2%2Bc3%2Fd4%3D%3D";

pub fn quick_http() -> HttpSettings {
    HttpSettings {
        retry: RetryPolicy {
            max_retries: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        },
        timeout: Duration::from_secs(5),
    }
}

pub async fn mock(data: MockData, faults: &[&str]) -> MockServer {
    let faults = faults
        .iter()
        .map(|f| f.parse::<FaultRule>().expect("fault spec"))
        .collect();
    let cfg = MockConfig {
        service_key: Some(KEY_DECODED.into()),
        faults,
        ..MockConfig::default()
    };
    MockServer::start(data, cfg).await.expect("mock starts")
}

pub fn paged_config(url: String, rows_per_page: u32, concurrency: usize) -> PagedConfig {
    let mut cfg = PagedConfig::new(url, KEY_ENCODED);
    cfg.rows_per_page = rows_per_page;
    cfg.concurrency = concurrency;
    cfg.http = quick_http();
    cfg
}

/// Every page's outcome, in arrival order.
pub async fn collect(
    cfg: &PagedConfig,
) -> (Vec<Result<Page<ItemRow>, FetchError>>, ingest::CallCounts) {
    let mut pages = fetch_items(cfg).expect("config");
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        out.push(page);
    }
    (out, pages.stats().snapshot())
}

/// All records of a run that must succeed, sorted by id.
pub async fn records(cfg: &PagedConfig) -> (Vec<ItemRow>, ingest::CallCounts) {
    let (pages, stats) = collect(cfg).await;
    let mut records = Vec::new();
    for page in pages {
        let page = page.unwrap_or_else(|e| panic!("page failed: {e}"));
        records.extend(page.records);
    }
    records.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    (records, stats)
}
