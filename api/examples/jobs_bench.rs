//! Two measures of the job runtime as `gonggu serve` runs it (sweeper, one worker, handlers):
//!
//! - deadline lag: `--parties` parties whose booking deadlines fall in the same minute, closed by
//!   the jobs. Prints the lag from each deadline to its close (p50, p99, max), the time to close
//!   them all, and the process's peak RSS.
//! - throughput: `--noop N` no-op jobs pushed first (timed), then run by the worker. Prints the
//!   pushes per second and the jobs run per second.
//!
//! ```sh
//! cargo run --release -p gonggu-api --example jobs_bench -- --parties 10000 --db sqlite
//! GONGGU_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release -p gonggu-api --example jobs_bench -- --parties 10000 --db postgres
//! cargo run --release -p gonggu-api --example jobs_bench -- --noop 100000 --db sqlite
//! ```

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use store::live::Live;
use store::parties::NewParty;
use store::{Clock, Db};
use support::arg;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn context(db: &Db, live: &Live, clock: &Clock, store: &jobs::JobStore) -> Arc<jobs::Context> {
    Arc::new(jobs::Context {
        db: db.clone(),
        cache: live.cache.clone(),
        clock: clock.clone(),
        settings: jobs::Settings {
            complete_after_meet_ms: 3 * 3_600_000,
            penalties: Default::default(),
        },
        nightly: None,
        jobs: Some(store.clone()),
        push: None,
    })
}

/// Pushes `n` no-op jobs (16 pushes in flight), then runs them with one worker and times both.
async fn throughput(
    backend: &str,
    n: u64,
    db: Db,
    clock: Clock,
    location: &jobs::Location,
    prefix: &str,
) -> Result<()> {
    use futures::StreamExt;
    let jobs = jobs::Jobs::open(location, prefix).await?;
    let pushed = Instant::now();
    let store = jobs.store.clone();
    let failures = futures::stream::iter(0..n)
        .map(|n| {
            let store = store.clone();
            async move { store.push(&jobs::Job::Noop { n }).await }
        })
        .buffer_unordered(16)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    anyhow::ensure!(failures == 0, "{failures} pushes failed");
    let push_secs = pushed.elapsed().as_secs_f64();
    let live = Live::memory();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let ran = Instant::now();
    let tasks = jobs.start(
        context(&db, &live, &clock, &jobs.store),
        live.lease.clone(),
        "bench",
        jobs::sweeper::SWEEP,
        stop,
    );
    loop {
        let done = jobs
            .store
            .tally()
            .get("noop", jobs::tally::Outcome::Succeeded);
        if done >= n {
            break;
        }
        anyhow::ensure!(
            ran.elapsed() < Duration::from_secs(3600),
            "{done} of {n} run after an hour"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run_secs = ran.elapsed().as_secs_f64();
    println!(
        "{backend}: {n} no-op jobs: pushed in {push_secs:.1} s ({:.0}/s), run in {run_secs:.1} s \
         ({:.0} jobs/s); peak RSS {:.0} MiB",
        n as f64 / push_secs,
        n as f64 / run_secs,
        peak_rss_mib()
    );
    let _ = stop_tx.send(true);
    futures::future::join_all(tasks).await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let parties: usize = arg("--parties").map_or(Ok(10_000), |s| s.parse())?;
    let backend = arg("--db").unwrap_or_else(|| "sqlite".into());
    let dir = tempfile::tempdir()?;
    let (db_url, location, prefix) = match backend.as_str() {
        "sqlite" => (
            Db::sqlite_url(&dir.path().join("gonggu.db")),
            jobs::Location::Sqlite(dir.path().join("jobs.db")),
            "bench".to_owned(),
        ),
        "postgres" => {
            let base = std::env::var("GONGGU_TEST_DATABASE_URL")
                .context("set GONGGU_TEST_DATABASE_URL for --db postgres")?;
            (
                store::testing::fresh_pg_url(&base).await,
                jobs::Location::Postgres(base),
                store::testing::unique_name("bench"),
            )
        }
        other => anyhow::bail!("--db sqlite or postgres, not {other}"),
    };
    let db = Db::connect(&db_url, 8).await?;
    db.migrate().await?;
    let clock = Clock::system();
    if let Some(n) = arg("--noop") {
        return throughput(&backend, n.parse()?, db, clock, &location, &prefix).await;
    }
    api::seed::run(&db, &Live::memory(), &clock, false).await?;
    let now = clock.now_ms();
    let mut ids = Vec::new();
    for n in ["leader", "member"] {
        let email = format!("{n}-{now}@bench.gonggu.kr");
        let user = store::users::insert_user(&db, &email, "x", n, now)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ids.push(user.id);
    }
    let (leader, member) = (ids[0], ids[1]);
    let (market, item): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT MIN(id) FROM markets WHERE lat IS NOT NULL), (SELECT MIN(id) FROM items)",
    )
    .fetch_one(db.pool())
    .await?;
    // Deadlines spread over one minute starting when the setup is done (estimated generously).
    let setup = Instant::now();
    let first_deadline = now + 60_000 + parties as i64 * 6;
    for i in 0..parties {
        let deadline = first_deadline + (i as i64 * 60_000) / parties as i64;
        let party = store::parties::create_party(
            &db,
            &NewParty {
                leader_id: leader,
                market_id: market,
                item_id: item,
                title: format!("벤치 {i}"),
                description: String::new(),
                capacity: 4,
                min_members: 2,
                price_per_share: None,
                meet_at: deadline + 3_600_000,
                deadline_at: deadline,
            },
            clock.now_ms(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        store::bookings::join_party(&db, party.id, member, clock.now_ms())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    eprintln!("{parties} parties made in {:.1?}", setup.elapsed());
    anyhow::ensure!(
        clock.now_ms() < first_deadline,
        "the setup ran past the first deadline; use fewer parties"
    );
    let jobs = jobs::Jobs::open(&location, &prefix).await?;
    let live = Live::memory();
    let ctx = context(&db, &live, &clock, &jobs.store);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let tasks = jobs.start(ctx, live.lease.clone(), "bench", jobs::sweeper::SWEEP, stop);
    let last_deadline = first_deadline + 60_000;
    loop {
        let (open,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM parties WHERE status IN ('recruiting', 'full')")
                .fetch_one(db.pool())
                .await?;
        if open == 0 {
            break;
        }
        anyhow::ensure!(
            clock.now_ms() < last_deadline + 600_000,
            "{open} parties still open ten minutes after the last deadline"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let done_after = clock.now_ms() - last_deadline;
    let mut lags: Vec<i64> = sqlx::query_as::<_, (i64,)>(
        "SELECT updated_at - deadline_at FROM parties WHERE status = 'closed'",
    )
    .fetch_all(db.pool())
    .await?
    .into_iter()
    .map(|(l,)| l)
    .collect();
    lags.sort_unstable();
    anyhow::ensure!(lags.len() == parties, "{} of {parties} closed", lags.len());
    let pct = |p: f64| lags[((lags.len() - 1) as f64 * p) as usize];
    println!(
        "{backend}: {parties} deadlines in one minute: lag p50 {} ms, p99 {} ms, max {} ms; \
         all closed {} ms after the last deadline; peak RSS {:.0} MiB",
        pct(0.5),
        pct(0.99),
        lags[lags.len() - 1],
        done_after,
        peak_rss_mib()
    );
    let _ = stop_tx.send(true);
    futures::future::join_all(tasks).await;
    Ok(())
}
