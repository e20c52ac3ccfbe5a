//! Whole runs on SQLite in a temporary folder: how rejected rows decide the outcome (a run that
//! stores nothing from a source with rows fails; one that rejects more than its allowed share is
//! partial and deactivates nothing), and the kind labels a plain market file may use.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use ingest::config::{IngestConfig, SourceKind, DEFAULT_MAX_REJECTED_SHARE};
use ingest::mock::MockData;
use ingest::run::{Kind, Outcome, RunContext, RunReport};
use ingest::Row;
use store::{Clock, Db};
use tempfile::TempDir;

const HEADER: &str = "source_id,name,kind,road_address,lat,lng";

async fn sqlite() -> (TempDir, Db) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = store::testing::sqlite_db(dir.path()).await;
    (dir, db)
}

/// A plain market row in Seoul with this id and kind.
fn market(id: &str, kind: &str) -> String {
    format!("{id},시장 {id},{kind},서울특별시 마포구 {id}길 1,37.5561,126.9058")
}

/// `n` markets `M000…` whose kind is `kind`.
fn markets(n: usize, kind: &str) -> Vec<String> {
    (0..n).map(|i| market(&format!("M{i:03}"), kind)).collect()
}

fn write_csv(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut text = format!("{HEADER}\n");
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(&path, text).expect("write the CSV");
    path
}

fn csv_config(path: PathBuf) -> IngestConfig {
    let mut cfg = IngestConfig::new(Kind::Markets, SourceKind::Csv);
    cfg.file = Some(path);
    cfg.options.source_name = Some("plain".into());
    cfg
}

async fn ingest(db: &Db, cfg: &IngestConfig) -> RunReport {
    let clock = Clock::system();
    let ctx = RunContext {
        db,
        cache: None,
        clock: &clock,
        progress: &(),
    };
    cfg.run(&ctx).await.expect("run recorded")
}

async fn scalar(db: &Db, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(db.pool())
        .await
        .expect(sql)
}

async fn recorded_status(db: &Db, report: &RunReport) -> (String, Option<String>) {
    let id = report.run_id.expect("recorded");
    let record = store::ingest_runs::get_run(db, id)
        .await
        .expect("read the run record")
        .expect("the run record");
    (record.status, record.error)
}

#[tokio::test]
async fn a_run_that_rejects_every_row_fails_with_exit_code_1_and_says_why() {
    let (dir, db) = sqlite().await;
    let path = write_csv(dir.path(), "markets.csv", &markets(50, "street_stall"));
    let report = ingest(&db, &csv_config(path)).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert_eq!(report.outcome.exit_code(), 1);
    assert_eq!((report.totals.rejected, report.totals.inserted), (50, 0));
    let error = report.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("all 50 rows were rejected; first: row M000: kind: unknown market kind"),
        "{error}"
    );
    assert_eq!(
        recorded_status(&db, &report).await,
        ("failed".to_owned(), Some(error))
    );
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM markets").await, 0);
}

#[tokio::test]
async fn a_dry_run_that_would_store_nothing_fails_too() {
    let (dir, db) = sqlite().await;
    let path = write_csv(dir.path(), "markets.csv", &markets(3, "street_stall"));
    let mut cfg = csv_config(path);
    cfg.options.dry_run = true;
    let report = ingest(&db, &cfg).await;
    assert_eq!((report.outcome, report.run_id), (Outcome::Failed, None));
}

#[tokio::test]
async fn a_price_api_run_whose_every_store_is_rejected_fails() {
    // Stores without a name: the source answers, and nothing it sends can be stored.
    let stores = (0..4)
        .map(|i| Row::from_pairs([("entpId", i.to_string()), ("entpName", String::new())]))
        .collect();
    let server = mock(MockData::new(Vec::new(), stores), &[]).await;
    let (_dir, db) = sqlite().await;
    let mut cfg = IngestConfig::new(Kind::Markets, SourceKind::PriceApi);
    cfg.url = Some(server.price_url());
    cfg.service_key = KEY_DECODED.into();
    let report = ingest(&db, &cfg).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert_eq!(report.totals.calls, 1);
    let error = report.error.unwrap_or_default();
    assert!(
        error.starts_with("all 4 rows were rejected; first: row 0: name: missing"),
        "{error}"
    );
}

#[tokio::test]
async fn five_rejected_rows_in_a_hundred_are_partial_by_default_and_succeed_at_a_tenth() {
    let (dir, db) = sqlite().await;
    let mut lines = markets(95, "traditional_market");
    lines.extend((95..100).map(|i| market(&format!("M{i:03}"), "street_stall")));
    let cfg = csv_config(write_csv(dir.path(), "markets.csv", &lines));
    assert_eq!(cfg.options.max_rejected_share, DEFAULT_MAX_REJECTED_SHARE);

    let report = ingest(&db, &cfg).await;
    assert_eq!(report.outcome, Outcome::Partial, "{report:?}");
    assert_eq!(report.outcome.exit_code(), 3);
    assert_eq!((report.totals.inserted, report.totals.rejected), (95, 5));
    let error = report.error.clone().unwrap_or_default();
    assert!(
        error.starts_with(
            "5 of 100 rows were rejected (5 %, more than the 1 % allowed); first: row M095: kind"
        ),
        "{error}"
    );
    assert_eq!(recorded_status(&db, &report).await.0, "partial");

    let mut allowing = cfg.clone();
    allowing.options.max_rejected_share = 0.1;
    let report = ingest(&db, &allowing).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(report.outcome.exit_code(), 0);
    assert_eq!((report.totals.unchanged, report.totals.rejected), (95, 5));
    assert_eq!(report.error, None);
    assert_eq!(recorded_status(&db, &report).await.0, "succeeded");
}

#[tokio::test]
async fn one_rejected_row_in_a_hundred_is_within_the_default_share() {
    let (dir, db) = sqlite().await;
    let mut lines = markets(99, "supermarket");
    lines.push(market("M099", "street_stall"));
    let report = ingest(&db, &csv_config(write_csv(dir.path(), "m.csv", &lines))).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!((report.totals.inserted, report.totals.rejected), (99, 1));
}

#[tokio::test]
async fn a_run_with_too_many_rejections_deactivates_nothing() {
    let (dir, db) = sqlite().await;
    let first = ingest(
        &db,
        &csv_config(write_csv(
            dir.path(),
            "all.csv",
            &markets(100, "hypermarket"),
        )),
    )
    .await;
    assert_eq!(first.outcome, Outcome::Succeeded, "{first:?}");
    // M095..M099 are gone, and five rows lost their id: rejected rows without an id cannot be
    // told from vanished ones.
    let mut lines = markets(95, "hypermarket");
    lines.extend((0..5).map(|i| format!(",이름만 {i},hypermarket,,,")));
    let cfg = csv_config(write_csv(dir.path(), "fewer.csv", &lines));
    let report = ingest(&db, &cfg).await;
    assert_eq!(report.outcome, Outcome::Partial, "{report:?}");
    assert_eq!(report.totals.deactivated, 0);
    let active = "SELECT COUNT(*) FROM markets WHERE active = 1";
    assert_eq!(scalar(&db, active).await, 100);

    let mut allowing = cfg.clone();
    allowing.options.max_rejected_share = 0.1;
    let report = ingest(&db, &allowing).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(report.totals.deactivated, 5);
    assert_eq!(scalar(&db, active).await, 95);
}

#[tokio::test]
async fn an_empty_source_is_not_a_failure() {
    let (dir, db) = sqlite().await;
    let report = ingest(&db, &csv_config(write_csv(dir.path(), "m.csv", &[]))).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(report.totals.rows_fetched, 0);
}

#[tokio::test]
async fn a_plain_market_file_with_korean_or_short_kind_labels_is_stored() {
    let (dir, db) = sqlite().await;
    let mut lines = markets(20, "traditional");
    for (i, label) in [
        "전통시장",
        "대형마트",
        "기업형슈퍼마켓",
        "백화점",
        "편의점",
        "창고형 할인점",
    ]
    .iter()
    .enumerate()
    {
        lines.push(market(&format!("K{i}"), label));
    }
    let report = ingest(&db, &csv_config(write_csv(dir.path(), "m.csv", &lines))).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!((report.totals.inserted, report.totals.rejected), (26, 0));
    let kinds: Vec<(String, String)> = sqlx::query_as(
        "SELECT source_id, kind FROM markets WHERE source_id LIKE 'K%' ORDER BY source_id",
    )
    .fetch_all(db.pool())
    .await
    .expect("kinds");
    let kinds: Vec<&str> = kinds.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "traditional_market",
            "hypermarket",
            "supermarket",
            "department_store",
            "convenience_store",
            "warehouse_club"
        ]
    );
    let traditional = "SELECT COUNT(*) FROM markets WHERE kind = 'traditional_market'";
    assert_eq!(scalar(&db, traditional).await, 21);
}
