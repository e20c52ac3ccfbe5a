//! Ingest runs against the in-process mock of the public APIs, on both backends: every row exactly
//! once, retries, whole chunks only, unchanged re-runs, deactivation, coordinates, CSV encodings,
//! cache invalidation and the run records behind `GET /api/v1/ingest/runs`.

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use common::{assert_problem, TestApp};
use ingest::csv::CsvEncoding;
use ingest::feed::SourceSpec;
use ingest::mock::{FaultRule, MockConfig, MockData, MockServer};
use ingest::paged::PagedConfig;
use ingest::price::PriceConfig;
use ingest::run::{self, Kind, Outcome, RunContext, RunOptions, RunReport};
use ingest::{HttpSettings, RetryPolicy, Row};
use serde_json::Value;

on_both_backends!(
    every_row_arrives_exactly_once_with_concurrency_1,
    every_row_arrives_exactly_once_with_concurrency_16,
    injected_transient_failures_are_retried_and_the_result_is_identical,
    a_permanent_failure_leaves_whole_chunks_and_names_the_page,
    a_bad_key_fails_the_run_on_page_1_and_writes_nothing,
    pages_that_keep_failing_make_a_partial_run_that_deactivates_nothing,
    a_second_identical_run_reports_every_row_unchanged,
    a_repeated_id_is_dropped_whether_its_first_chunk_committed_or_not,
    vanished_markets_are_deactivated_and_come_back_when_listed_again,
    swapped_and_placeholder_coordinates_are_resolved_or_stored_empty,
    cp949_and_utf8_bom_csv_files_import_the_same_rows,
    changed_items_invalidate_cached_searches,
    a_dry_run_classifies_and_writes_nothing,
    the_runs_are_listed_newest_first_with_a_cursor,
);

const ROWS: usize = 2_350;
const CHUNK: usize = 250;

fn quick_http(max_retries: u32) -> HttpSettings {
    HttpSettings {
        retry: RetryPolicy {
            max_retries,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        },
        timeout: Duration::from_secs(5),
    }
}

async fn mock(data: MockData, faults: &[&str]) -> MockServer {
    let cfg = MockConfig {
        faults: faults
            .iter()
            .map(|f| f.parse::<FaultRule>().expect("fault spec"))
            .collect(),
        ..MockConfig::default()
    };
    MockServer::start(data, cfg).await.expect("mock starts")
}

/// The mock's paged items at 100 rows a page.
fn paged(server: &MockServer, concurrency: usize) -> SourceSpec {
    let mut cfg = PagedConfig::new(server.items_url(), "");
    cfg.rows_per_page = 100;
    cfg.concurrency = concurrency;
    cfg.http = quick_http(4);
    SourceSpec::Paged(cfg)
}

fn price(server: &MockServer) -> SourceSpec {
    let mut cfg = PriceConfig::new(server.price_url(), "");
    cfg.http = quick_http(2);
    SourceSpec::Price(cfg)
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/public-api")
        .join(name)
}

fn opts(source: &str) -> RunOptions {
    RunOptions {
        source_name: Some(source.to_owned()),
        chunk_size: Some(CHUNK),
        // The fixtures hold one bad row in five on purpose; these tests are about the rest.
        max_rejected_share: 0.25,
        ..RunOptions::default()
    }
}

async fn ingest(app: &TestApp, kind: Kind, spec: &SourceSpec, opts: &RunOptions) -> RunReport {
    let ctx = RunContext {
        db: app.db(),
        cache: Some(app.state.live.cache.as_ref()),
        clock: &app.state.clock,
        progress: &(),
    };
    run::run(&ctx, kind, spec, opts)
        .await
        .expect("run recorded")
}

async fn scalar(app: &TestApp, sql: &str, source: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(source)
        .fetch_one(app.db().pool())
        .await
        .expect(sql);
    n
}

async fn count(app: &TestApp, table: &str, source: &str) -> i64 {
    scalar(
        app,
        &format!("SELECT COUNT(*) FROM {table} WHERE source = $1"),
        source,
    )
    .await
}

async fn count_active(app: &TestApp, table: &str, source: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE source = $1 AND active = 1");
    scalar(app, &sql, source).await
}

type ItemTuple = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<f64>,
    Option<String>,
    Option<String>,
);

/// Every item of `source` without its ids and times, by public id.
async fn items_of(app: &TestApp, source: &str) -> Vec<ItemTuple> {
    sqlx::query_as(
        "SELECT source_id, name, category_code, unit, base_count, total_count, total_unit, maker \
         FROM items WHERE source = $1 ORDER BY source_id",
    )
    .bind(source)
    .fetch_all(app.db().pool())
    .await
    .expect("items")
}

type MarketTuple = (
    String,
    String,
    String,
    Option<String>,
    Option<f64>,
    Option<f64>,
    i64,
);

async fn markets_of(app: &TestApp, source: &str) -> Vec<MarketTuple> {
    sqlx::query_as(
        "SELECT source_id, name, kind, road_address, lat, lng, active FROM markets \
         WHERE source = $1 ORDER BY source_id",
    )
    .bind(source)
    .fetch_all(app.db().pool())
    .await
    .expect("markets")
}

async fn market_events(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT kind, payload FROM outbox WHERE topic = 'markets' ORDER BY id")
        .fetch_all(app.db().pool())
        .await
        .expect("outbox")
}

/// A store row as the price API sends it (x usually the latitude).
fn store(id: &str, name: &str, x: &str, y: &str) -> Row {
    Row::from_pairs([
        ("entpId", id.to_owned()),
        ("entpName", name.to_owned()),
        ("entpTypeCode", "SM".to_owned()),
        ("entpAreaCode", "020100000".to_owned()),
        ("roadAddrBasic", format!("서울특별시 마포구 {id}길 1")),
        ("xMapCoord", x.to_owned()),
        ("yMapCoord", y.to_owned()),
    ])
}

fn stores(n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let lat = format!("{:.4}", 37.5 + i as f64 * 0.001);
            store(&format!("S{i:03}"), &format!("마트 {i}"), &lat, "126.9500")
        })
        .collect()
}

async fn every_row_arrives_exactly_once(app: TestApp, concurrency: usize) {
    let server = mock(MockData::synthetic_items(ROWS), &[]).await;
    let report = ingest(
        &app,
        Kind::Items,
        &paged(&server, concurrency),
        &opts("paged"),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(report.totals.inserted, ROWS as u64);
    assert_eq!((report.totals.pages, report.totals.calls), (24, 24));
    assert_eq!(count(&app, "items", "paged").await, ROWS as i64);
    let distinct = scalar(
        &app,
        "SELECT COUNT(DISTINCT source_id) FROM items WHERE source = $1",
        "paged",
    )
    .await;
    assert_eq!(distinct, ROWS as i64);
}

async fn every_row_arrives_exactly_once_with_concurrency_1(app: TestApp) {
    every_row_arrives_exactly_once(app, 1).await;
}

async fn every_row_arrives_exactly_once_with_concurrency_16(app: TestApp) {
    every_row_arrives_exactly_once(app, 16).await;
}

async fn injected_transient_failures_are_retried_and_the_result_is_identical(app: TestApp) {
    let clean = mock(MockData::synthetic_items(ROWS), &[]).await;
    let clean_report = ingest(&app, Kind::Items, &paged(&clean, 8), &opts("clean")).await;
    assert_eq!(clean_report.outcome, Outcome::Succeeded);
    let faults = [
        "500@1x1",
        "503@2x2",
        "429@3x1",
        "quota@4x1",
        "truncated@5x1",
        "empty@6x1",
        "gateway:22:429@7x1",
    ];
    let faulty = mock(MockData::synthetic_items(ROWS), &faults).await;
    let report = ingest(&app, Kind::Items, &paged(&faulty, 8), &opts("faulty")).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(report.totals.calls, 24 + 8, "every retry is counted");
    assert_eq!(report.totals.inserted, ROWS as u64);
    assert_eq!(
        items_of(&app, "faulty").await,
        items_of(&app, "clean").await
    );
}

async fn a_permanent_failure_leaves_whole_chunks_and_names_the_page(app: TestApp) {
    let server = mock(MockData::synthetic_items(ROWS), &["malformed@7"]).await;
    // One page at a time, so pages 1-6 (600 rows) arrive before page 7 stops the run.
    let report = ingest(&app, Kind::Items, &paged(&server, 1), &opts("broken")).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert_eq!(report.failed_pages, vec![7]);
    let rows = count(&app, "items", "broken").await;
    assert_eq!(
        rows,
        2 * CHUNK as i64,
        "two whole chunks of 250; the 100 rows buffered for the third are dropped"
    );
    assert_eq!(rows as u64, report.totals.inserted);
    let record = store::ingest_runs::get_run(app.db(), report.run_id.expect("recorded"))
        .await
        .unwrap()
        .expect("run record");
    assert_eq!(record.status, "failed");
    assert_eq!(record.failed_page_numbers(), vec![7]);
    let error = record.error.unwrap_or_default();
    assert!(
        error.contains("page 7") && error.contains("malformed"),
        "{error}"
    );
    assert!(record.finished_at.is_some());
}

async fn a_bad_key_fails_the_run_on_page_1_and_writes_nothing(app: TestApp) {
    let cfg = MockConfig {
        service_key: Some("a1B2+c3/d4==".into()),
        ..MockConfig::default()
    };
    let server = MockServer::start(MockData::synthetic_items(ROWS), cfg)
        .await
        .unwrap();
    let mut spec = paged(&server, 8);
    if let SourceSpec::Paged(cfg) = &mut spec {
        cfg.service_key = "not-the-key".into();
    }
    let report = ingest(&app, Kind::Items, &spec, &opts("badkey")).await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.failed_pages, vec![1]);
    let error = report.error.unwrap_or_default();
    assert!(
        error.contains("30") && !error.contains("not-the-key"),
        "{error}"
    );
    assert_eq!(report.totals.calls, 1, "a bad key is not retried");
    assert_eq!(count(&app, "items", "badkey").await, 0);
}

async fn pages_that_keep_failing_make_a_partial_run_that_deactivates_nothing(app: TestApp) {
    let clean = mock(MockData::synthetic_items(ROWS), &[]).await;
    ingest(&app, Kind::Items, &paged(&clean, 8), &opts("flaky")).await;
    // Fewer rows this time (a full source would deactivate 350), and page 3 never answers.
    let flaky = mock(MockData::synthetic_items(2_000), &["503@3"]).await;
    let report = ingest(&app, Kind::Items, &paged(&flaky, 8), &opts("flaky")).await;
    assert_eq!(report.outcome, Outcome::Partial, "{report:?}");
    assert_eq!(report.outcome.exit_code(), 3);
    assert_eq!(report.failed_pages, vec![3]);
    assert_eq!(report.totals.unchanged, 1_900);
    assert_eq!(report.totals.deactivated, 0);
    assert_eq!(count_active(&app, "items", "flaky").await, ROWS as i64);
    let record = store::ingest_runs::get_run(app.db(), report.run_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (record.status.as_str(), record.failed_page_numbers()),
        ("partial", vec![3])
    );
}

async fn a_second_identical_run_reports_every_row_unchanged(app: TestApp) {
    let server = mock(MockData::new(Vec::new(), stores(30)), &[]).await;
    let first = ingest(&app, Kind::Markets, &price(&server), &opts("price")).await;
    assert_eq!((first.totals.inserted, first.totals.calls), (30, 1));
    let events = market_events(&app).await.len();
    let stamp = scalar(
        &app,
        "SELECT MAX(updated_at) FROM markets WHERE source = $1",
        "price",
    )
    .await;
    app.state.clock.advance_ms(60_000);
    let second = ingest(&app, Kind::Markets, &price(&server), &opts("price")).await;
    assert_eq!(second.outcome, Outcome::Succeeded);
    let t = &second.totals;
    assert_eq!(
        (t.inserted, t.updated, t.unchanged, t.deactivated),
        (0, 0, 30, 0)
    );
    assert_eq!(
        market_events(&app).await.len(),
        events,
        "nothing changed, nothing announced"
    );
    let after = scalar(
        &app,
        "SELECT MAX(updated_at) FROM markets WHERE source = $1",
        "price",
    )
    .await;
    assert_eq!(after, stamp, "no row was rewritten");

    let items = mock(MockData::synthetic_items(ROWS), &[]).await;
    ingest(&app, Kind::Items, &paged(&items, 8), &opts("items")).await;
    let again = ingest(&app, Kind::Items, &paged(&items, 8), &opts("items")).await;
    assert_eq!(
        (
            again.totals.inserted,
            again.totals.updated,
            again.totals.unchanged
        ),
        (0, 0, ROWS as u64)
    );
}

/// Ids repeated within a page (still in memory) and pages apart (their first chunk committed,
/// so only the database's `seen_run` stamp knows): the first row wins either way, and the run
/// deactivates nothing.
async fn a_repeated_id_is_dropped_whether_its_first_chunk_committed_or_not(app: TestApp) {
    use ingest::mock::synthetic_item;
    let mut goods: Vec<Row> = (0..100).map(synthetic_item).collect();
    goods.insert(8, synthetic_item(7));
    let first = synthetic_item(3);
    goods.push(Row::from_pairs(first.fields().map(|(k, v)| {
        let v = if k == "goodName" {
            "나중에 온 이름"
        } else {
            v
        };
        (k.to_owned(), v.to_owned())
    })));
    goods.push(synthetic_item(50));
    let server = mock(MockData::new(goods, Vec::new()), &[]).await;
    let mut spec = paged(&server, 1);
    if let SourceSpec::Paged(cfg) = &mut spec {
        cfg.rows_per_page = 10;
    }
    // One chunk writer, so chunk n is committed (and its ids released) before chunk n+2 is written.
    let opts = RunOptions {
        chunk_size: Some(5),
        write_concurrency: Some(1),
        ..opts("dups")
    };
    for pass in 0..2 {
        let report = ingest(&app, Kind::Items, &spec, &opts).await;
        assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
        let t = &report.totals;
        let applied = if pass == 0 {
            (t.inserted, t.unchanged)
        } else {
            (t.unchanged, t.inserted)
        };
        assert_eq!(
            (applied, t.duplicates, t.deactivated, t.rows_fetched),
            ((100, 0), 3, 0, 103),
            "pass {pass}"
        );
    }
    let name = sqlx::query_scalar::<_, String>(
        "SELECT name FROM items WHERE source = 'dups' AND source_id = '1000003'",
    )
    .fetch_one(app.db().pool())
    .await
    .unwrap();
    assert_eq!(name, "합성 상품 000003", "the first row with an id wins");
    assert_eq!(count_active(&app, "items", "dups").await, 100);
}

async fn vanished_markets_are_deactivated_and_come_back_when_listed_again(app: TestApp) {
    let all = stores(10);
    let full = mock(MockData::new(Vec::new(), all.clone()), &[]).await;
    ingest(&app, Kind::Markets, &price(&full), &opts("price")).await;

    let mut fewer: Vec<Row> = all[..8].to_vec();
    fewer[0] = store("S000", "마트 0 (새 이름)", "37.5000", "126.9500");
    let shrunk = mock(MockData::new(Vec::new(), fewer), &[]).await;
    let report = ingest(&app, Kind::Markets, &price(&shrunk), &opts("price")).await;
    let t = &report.totals;
    assert_eq!(
        (t.inserted, t.updated, t.unchanged, t.deactivated),
        (0, 1, 7, 2)
    );
    assert_eq!(
        count(&app, "markets", "price").await,
        10,
        "rows are kept, not deleted"
    );
    assert_eq!(count_active(&app, "markets", "price").await, 8);
    let events = market_events(&app).await;
    let (kind, payload) = events.last().expect("an event");
    assert_eq!(kind, "market.deactivated");
    let ids: Value = serde_json::from_str(payload).unwrap();
    assert_eq!(ids["ids"].as_array().map(Vec::len), Some(2));
    assert!(events.iter().any(|(k, _)| k == "market.upserted"));

    let report = ingest(&app, Kind::Markets, &price(&full), &opts("price")).await;
    let t = &report.totals;
    assert_eq!(
        (t.inserted, t.updated, t.unchanged, t.deactivated),
        (0, 3, 7, 0)
    );
    assert_eq!(count_active(&app, "markets", "price").await, 10);
}

async fn swapped_and_placeholder_coordinates_are_resolved_or_stored_empty(app: TestApp) {
    let rows = vec![
        store("A", "보통", "37.5398", "127.0533"),
        store("B", "뒤바뀜", "126.9046", "37.5557"),
        store("C", "자리표시", "1", "1"),
        store("D", "빈칸", "", ""),
        store("E", "범위밖", "0", "0"),
        store("F", "", "37.1", "127.1"),
    ];
    let server = mock(MockData::new(Vec::new(), rows), &[]).await;
    let report = ingest(&app, Kind::Markets, &price(&server), &opts("coords")).await;
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!((report.totals.inserted, report.totals.rejected), (5, 1));
    assert_eq!(report.totals.no_coordinates, 3);
    assert_eq!(report.no_coordinates_sample, vec!["C", "D", "E"]);
    let stored: Vec<(String, Option<f64>, Option<f64>)> = markets_of(&app, "coords")
        .await
        .into_iter()
        .map(|m| (m.0, m.4, m.5))
        .collect();
    assert_eq!(
        stored,
        vec![
            ("A".into(), Some(37.5398), Some(127.0533)),
            ("B".into(), Some(37.5557), Some(126.9046)),
            ("C".into(), None, None),
            ("D".into(), None, None),
            ("E".into(), None, None),
        ]
    );
    let record = store::ingest_runs::get_run(app.db(), report.run_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((record.no_coordinates, record.rejected), (3, 1));
}

async fn cp949_and_utf8_bom_csv_files_import_the_same_rows(app: TestApp) {
    let mut imported = Vec::new();
    for (file, encoding) in [
        ("traditional-markets-cp949.csv", CsvEncoding::Auto),
        ("traditional-markets-cp949.csv", CsvEncoding::Cp949),
        ("traditional-markets-utf8-bom.csv", CsvEncoding::Auto),
        ("traditional-markets-old-header.csv", CsvEncoding::Auto),
    ] {
        let spec = SourceSpec::Csv {
            path: fixture(file),
            encoding,
        };
        let source = format!("{file}:{encoding:?}");
        let report = ingest(&app, Kind::Markets, &spec, &opts(&source)).await;
        assert_eq!(report.outcome, Outcome::Succeeded, "{file}: {report:?}");
        assert_eq!(
            (report.totals.inserted, report.totals.rejected),
            (4, 1),
            "{file}"
        );
        imported.push(markets_of(&app, &source).await);
    }
    assert!(imported.windows(2).all(|w| w[0] == w[1]), "{imported:#?}");
    let swapped = imported[0]
        .iter()
        .find(|m| m.1 == "부전마켓타운")
        .expect("row");
    assert_eq!((swapped.4, swapped.5), (Some(35.16), Some(129.059)));
    let default_name = SourceSpec::Csv {
        path: fixture("traditional-markets-cp949.csv"),
        encoding: CsvEncoding::Auto,
    };
    let report = ingest(&app, Kind::Markets, &default_name, &RunOptions::default()).await;
    assert_eq!(report.source, "csv:traditional-markets");
}

async fn generation(app: &TestApp) -> i64 {
    app.state
        .live
        .cache
        .get(store::catalog::ITEM_SEARCH_GENERATION_KEY)
        .await
        .unwrap()
        .and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok())
        .unwrap_or(0)
}

async fn changed_items_invalidate_cached_searches(app: TestApp) {
    let server = mock(MockData::synthetic_items(300), &[]).await;
    let before = generation(&app).await;
    ingest(&app, Kind::Items, &paged(&server, 4), &opts("cache")).await;
    let after = generation(&app).await;
    assert!(after > before, "{before} -> {after}");
    ingest(&app, Kind::Items, &paged(&server, 4), &opts("cache")).await;
    assert_eq!(
        generation(&app).await,
        after,
        "an unchanged run keeps the cache"
    );
}

async fn a_dry_run_classifies_and_writes_nothing(app: TestApp) {
    let server = mock(MockData::synthetic_items(300), &[]).await;
    let dry = RunOptions {
        dry_run: true,
        ..opts("dry")
    };
    let report = ingest(&app, Kind::Items, &paged(&server, 4), &dry).await;
    assert_eq!((report.run_id, report.totals.inserted), (None, 300));
    assert_eq!(count(&app, "items", "dry").await, 0);
    let (runs, _) = store::ingest_runs::list_runs(app.db(), &Default::default(), None, 10)
        .await
        .unwrap();
    assert!(runs.is_empty());
}

async fn the_runs_are_listed_newest_first_with_a_cursor(app: TestApp) {
    let spec = SourceSpec::Csv {
        path: fixture("traditional-markets-utf8-bom.csv"),
        encoding: CsvEncoding::Auto,
    };
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            ingest(&app, Kind::Markets, &spec, &opts("listed"))
                .await
                .run_id
                .unwrap(),
        );
    }
    let missing = SourceSpec::Csv {
        path: fixture("no-such-file.csv"),
        encoding: CsvEncoding::Auto,
    };
    let failed = ingest(&app, Kind::Items, &missing, &RunOptions::default()).await;
    assert_eq!(failed.outcome, Outcome::Failed);

    let page: Value = app
        .get(None, "/api/v1/ingest/runs?limit=2")
        .await
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], failed.run_id.unwrap());
    assert_eq!(items[0]["status"], "failed");
    assert_eq!(items[0]["kind"], "items");
    assert!(items[0]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("no-such-file.csv"));
    assert_eq!(items[1]["id"], ids[2]);
    assert_eq!(items[1]["status"], "succeeded");
    assert_eq!(items[1]["unchanged"], 4);
    assert_eq!(items[1]["rejected"], 1);
    assert_eq!(items[1]["no_coordinates"], 1);
    assert!(items[1]["finished_at"]
        .as_str()
        .is_some_and(|t| t.ends_with("+09:00")));
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let rest: Value = app
        .get(
            None,
            &format!("/api/v1/ingest/runs?limit=2&cursor={cursor}"),
        )
        .await
        .json()
        .await
        .unwrap();
    let rest_ids: Vec<i64> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_i64())
        .collect();
    assert_eq!(rest_ids, vec![ids[1], ids[0]]);
    assert!(rest["next_cursor"].is_null());

    let markets: Value = app
        .get(None, "/api/v1/ingest/runs?kind=markets&status=succeeded")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(markets["items"].as_array().map(Vec::len), Some(3));
    assert_problem(
        app.get(None, "/api/v1/ingest/runs?kind=parties").await,
        422,
        "validation_failed",
    )
    .await;
}
