//! Fills a data folder with benchmark data for the HTTP benchmarks: the bundled fixtures plus
//! `--parties` open parties at Korea-clustered points (10 parties per synthetic market).
//!
//! ```sh
//! cargo run --release -p gonggu-api --example bench_data -- /tmp/gonggu-bench 100000
//! gonggu --data-dir /tmp/gonggu-bench serve --no-demo
//! ```

use anyhow::{Context, Result};
use store::live::Live;
use store::{Clock, Db};

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().context("usage: bench_data DIR [PARTIES]")?);
    let parties: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    std::fs::create_dir_all(&dir)?;
    let db = Db::connect(&Db::sqlite_url(&dir.join("gonggu.db")), 4).await?;
    db.migrate().await?;
    let clock = Clock::system();
    api::seed::run(&db, &Live::memory(), &clock, false).await?;
    let now = clock.now_ms();
    let leader = store::users::insert_user(
        &db,
        &format!("bench-{now}@bench.gonggu.kr"),
        "x",
        "bench",
        now,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let points = geo_index::synth::korea_points(parties.div_ceil(10), 42);
    let mut tx = db.begin().await?;
    let mut market_ids = Vec::with_capacity(points.len());
    for (i, (_, at)) in points.iter().enumerate() {
        let m = store::catalog::MarketRow {
            source_id: format!("bench-{now}-{i}"),
            name: format!("벤치마트 {i}호점"),
            kind: "supermarket".into(),
            lat: Some(at.lat()),
            lng: Some(at.lng()),
            ..Default::default()
        };
        market_ids.push((
            store::catalog::upsert_row(&mut tx, "bench", &m, now).await?,
            *at,
        ));
    }
    tx.commit().await?;
    let items: Vec<i64> = store::items::category_codes(&db)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let day = 86_400_000;
    let mut made = 0;
    while made < parties {
        let mut tx = db.begin().await?;
        for _ in 0..1000.min(parties - made) {
            let (market, at) = market_ids[made / 10];
            sqlx::query(
                "INSERT INTO parties (leader_id, market_id, item_id, title, description, capacity, joined, \
                 price_per_share, meet_at, deadline_at, status, lat, lng, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, '', 6, 1, 5000, $5, $6, 'recruiting', $7, $8, 1, $9, $9)",
            )
            .bind(leader.id)
            .bind(market)
            .bind(items[made % items.len()])
            .bind(format!("벤치 파티 {made}"))
            .bind(now + 3 * day)
            .bind(now + 2 * day)
            .bind(at.lat())
            .bind(at.lng())
            .bind(now)
            .execute(tx.conn())
            .await?;
            made += 1;
        }
        tx.commit().await?;
    }
    println!(
        "{} parties at {} markets in {}",
        made,
        market_ids.len(),
        dir.display()
    );
    Ok(())
}
