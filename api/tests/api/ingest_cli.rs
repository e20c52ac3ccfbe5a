//! `gonggu ingest` as a cron job runs it: the real binary against the mock of the public APIs, on
//! the embedded SQLite file and on PostgreSQL. Exit codes (0 succeeded, 3 partial, 1 failed,
//! 2 bad usage), the summary, and a service key that never reaches the output.

use std::path::Path;
use std::process::{Command, Output};

use ingest::mock::{FaultRule, MockConfig, MockData, MockServer};

const ROWS: usize = 250;

/// Where the child writes: an SQLite data folder, or a fresh PostgreSQL schema.
enum Target {
    Sqlite,
    Postgres(String),
}

async fn targets() -> Vec<Target> {
    let mut all = vec![Target::Sqlite];
    if let Some((url, _)) = store::testing::scaled_urls() {
        all.push(Target::Postgres(store::testing::fresh_pg_url(&url).await));
    }
    all
}

async fn mock(faults: &[&str], key: Option<&str>) -> MockServer {
    let cfg = MockConfig {
        faults: faults
            .iter()
            .map(|f| f.parse::<FaultRule>().expect("fault spec"))
            .collect(),
        service_key: key.map(str::to_owned),
        ..MockConfig::default()
    };
    MockServer::start(MockData::synthetic_items(ROWS), cfg)
        .await
        .expect("mock starts")
}

/// Runs `gonggu --data-dir DIR ingest ARGS…` in `dir`, with nothing inherited that would choose
/// another database, Redis or key. The child runs on the blocking pool, so this test's runtime
/// keeps serving the mock meanwhile.
async fn gonggu(dir: &Path, target: &Target, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gonggu"));
    cmd.current_dir(dir)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("ingest")
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("GONGGU_SERVICE_KEY")
        .env_remove("RUST_LOG");
    if let Target::Postgres(url) = target {
        cmd.env("DATABASE_URL", url);
    }
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("the child's thread")
        .expect("gonggu runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn items_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "items",
        "--source",
        "paged-api",
        "--url",
        url,
        "--rows-per-page",
        "100",
        "--retry-base-ms",
        "1",
        "--timeout-secs",
        "10",
    ];
    args.extend_from_slice(extra);
    args
}

#[tokio::test]
async fn a_run_exits_0_and_a_second_run_reports_every_row_unchanged() {
    let server = mock(&[], None).await;
    let url = server.items_url();
    for target in targets().await {
        let dir = tempfile::tempdir().unwrap();
        let first = gonggu(dir.path(), &target, &items_args(&url, &[])).await;
        let out = text(&first);
        assert_eq!(first.status.code(), Some(0), "{out}");
        assert!(
            out.contains("succeeded") && out.contains("inserted 250,"),
            "{out}"
        );
        let second = gonggu(dir.path(), &target, &items_args(&url, &[])).await;
        let out = text(&second);
        assert_eq!(second.status.code(), Some(0), "{out}");
        assert!(
            out.contains("inserted 0, updated 0, unchanged 250, deactivated 0"),
            "{out}"
        );
    }
}

/// One fresh run of the mock's items per target; asserts the exit code and returns the output.
async fn exits_with(code: i32, url: &str, extra: &[&str]) -> Vec<String> {
    let mut outputs = Vec::new();
    for target in targets().await {
        let dir = tempfile::tempdir().unwrap();
        let run = gonggu(dir.path(), &target, &items_args(url, extra)).await;
        let out = text(&run);
        assert_eq!(run.status.code(), Some(code), "{out}");
        outputs.push(out);
    }
    outputs
}

#[tokio::test]
async fn a_bad_key_exits_1_naming_page_and_code_and_never_prints_the_key() {
    let server = mock(&[], Some("a1B2+c3/d4==")).await;
    let extra = ["--service-key", "WRONG-key-7f3a9"];
    for out in exits_with(1, &server.items_url(), &extra).await {
        assert!(out.contains("page 1") && out.contains("30"), "{out}");
        assert!(!out.contains("WRONG-key-7f3a9"), "the key leaked: {out}");
    }
}

#[tokio::test]
async fn a_page_that_keeps_failing_exits_3() {
    let server = mock(&["503@2"], None).await;
    for out in exits_with(3, &server.items_url(), &["--max-retries", "1"]).await {
        assert!(out.contains("partial"), "{out}");
    }
}

#[tokio::test]
async fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let run = gonggu(
        dir.path(),
        &Target::Sqlite,
        &["items", "--source", "paged-api"],
    )
    .await;
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    let run = gonggu(
        dir.path(),
        &Target::Sqlite,
        &["items", "--source", "no-such-source"],
    )
    .await;
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
}
