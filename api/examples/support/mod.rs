//! What the load benchmarks that drive real `gonggu serve` processes share: arguments, starting
//! and stopping the servers, their memory, the catalogue rows and users they need, percentiles.
//! Included by each such example with `mod support;` (not an example of its own).

#![allow(dead_code)] // each example uses part of it

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use store::{Clock, Db};

/// The JWT secret the servers are started with, so the bench can mint its users' tokens.
pub const SECRET: &str = "bench-secret-bench-secret-bench-secret";

/// The value after `name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A free loopback port.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The servers, killed when dropped.
pub struct Servers(pub Vec<(Child, u16)>);

impl Servers {
    /// Their resident memory together, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.0.iter().map(|(c, _)| rss_kib(c.id())).sum()
    }

    pub fn ports(&self) -> Vec<u16> {
        self.0.iter().map(|(_, p)| *p).collect()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for (child, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where the servers keep their data.
pub struct Backend {
    pub name: String,
    pub db_url: String,
    /// Redis URL and key prefix in scale-out.
    pub redis: Option<(String, String)>,
}

impl Backend {
    /// `embedded` (SQLite under `dir`) or `scaled` (a fresh PostgreSQL schema and Redis prefix,
    /// from `GONGGU_TEST_DATABASE_URL` and `GONGGU_TEST_REDIS_URL`).
    pub async fn new(name: &str, dir: &std::path::Path) -> Result<Self> {
        match name {
            "embedded" => Ok(Backend {
                name: name.into(),
                db_url: Db::sqlite_url(&dir.join("gonggu.db")),
                redis: None,
            }),
            "scaled" => {
                let (pg, redis) = store::testing::scaled_urls()
                    .context("set GONGGU_TEST_DATABASE_URL and GONGGU_TEST_REDIS_URL")?;
                // The fresh schema first, then `public` (where the `hstore` type the job queue
                // needs lives), as a deployment's default search path would have it.
                let db_url = format!("{}%2Cpublic", store::testing::fresh_pg_url(&pg).await);
                Ok(Backend {
                    name: name.into(),
                    db_url,
                    redis: Some((redis, store::testing::unique_name("bench"))),
                })
            }
            other => bail!("--backend embedded|scaled, not {other}"),
        }
    }

    /// Starts `instances` servers one after the other (the first migrates the database), each
    /// allowed `connections` client connections, with `env` added.
    pub async fn start(
        &self,
        bin: &str,
        dir: &std::path::Path,
        instances: usize,
        connections: usize,
        env: &[(&str, String)],
    ) -> Result<Servers> {
        let http = reqwest::Client::new();
        let mut servers = Servers(Vec::new());
        for _ in 0..instances {
            let port = free_port()?;
            let mut cmd = Command::new(bin);
            cmd.arg("serve")
                .env("GONGGU_LISTEN", format!("127.0.0.1:{port}"))
                .env("GONGGU_DATA_DIR", dir)
                .env("GONGGU_JWT_SECRET", SECRET)
                .env("GONGGU_NO_DEMO", "true")
                .env("GONGGU_MAX_CONNECTIONS", (connections + 256).to_string())
                .env("GONGGU_LOG", "warn")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            // The embedded default keeps its SQLite files under the data folder; scale-out names
            // its database.
            if let Some((url, prefix)) = &self.redis {
                cmd.env("DATABASE_URL", &self.db_url)
                    .env("REDIS_URL", url)
                    .env("GONGGU_REDIS_PREFIX", prefix);
            }
            for (k, v) in env {
                cmd.env(k, v);
            }
            let child = cmd.spawn().with_context(|| format!("start {bin}"))?;
            servers.0.push((child, port));
            wait_ready(&http, port).await?;
        }
        Ok(servers)
    }
}

async fn wait_ready(client: &reqwest::Client, port: u16) -> Result<()> {
    for _ in 0..300 {
        if let Ok(res) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            if res.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server on port {port} never became ready")
}

/// A market and an item to hold parties, straight in SQL: `markets` markets (ids returned) and
/// one item.
pub async fn catalog(db: &Db, markets: usize) -> Result<(Vec<i64>, i64)> {
    let now = Clock::system().now_ms();
    let mut tx = db.begin().await?;
    let mut ids = Vec::with_capacity(markets);
    for i in 0..markets {
        let row = store::catalog::MarketRow {
            source_id: format!("bench-market-{now}-{i}"),
            name: format!("벤치시장 {i}"),
            kind: "traditional_market".into(),
            road_address: None,
            lat: Some(37.5558 + (i % 50) as f64 * 0.001),
            lng: Some(126.9063 + (i / 50) as f64 * 0.001),
            area_code: None,
        };
        ids.push(store::catalog::upsert_row(&mut tx, "bench", &row, now).await?);
    }
    let item = store::catalog::upsert_row(
        &mut tx,
        "bench",
        &store::catalog::ItemRow {
            source_id: format!("bench-item-{now}"),
            name: "농심 신라면 120g×5입".into(),
            category_code: Some("030102001".into()),
            unit: None,
            base_count: None,
            total_count: None,
            total_unit: None,
            maker: None,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((ids, item))
}

/// A user straight in SQL (no argon2) and a bearer token for it.
pub async fn user(db: &Db, keys: &api::auth::jwt::TokenKeys, label: &str) -> Result<(i64, String)> {
    let now = Clock::system().now_ms();
    let email = format!("{label}-{now}@bench.gonggu.kr");
    let user = store::users::insert_user(db, &email, "x", "bench", now).await?;
    Ok((user.id, keys.issue(user.id, now)?))
}

/// The token keys matching [`SECRET`].
pub fn token_keys() -> api::auth::jwt::TokenKeys {
    api::auth::jwt::TokenKeys::new(SECRET.as_bytes(), Duration::from_secs(24 * 3600))
}

/// A party-creation body at `market` for `item`, meeting in three days.
pub fn party_body(market: i64, item: i64, title: &str, capacity: usize) -> serde_json::Value {
    let now = Clock::system().now_ms();
    serde_json::json!({
        "market_id": market, "item_id": item, "title": title, "description": "bench",
        "capacity": capacity, "price_per_share": 1000,
        "meet_at": api::time::Timestamp(now + 3 * 24 * 3_600_000),
        "deadline_at": api::time::Timestamp(now + 2 * 24 * 3_600_000),
    })
}

/// The `p` quantile of `sorted` microseconds, in milliseconds.
pub fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}
