//! The notification fan-out of one new party against many users' wishlists, found through the
//! wishlist index (match keys and H3 cells, `store::wishlists::matching_users`) and, in the same
//! run, by a naive scan that reads and tests every wishlist. Both must find the same users.
//!
//! `--users N` users get one wishlist each: 40 % areas (circles of 0.3 to 5 km, one in seven an
//! irregular 12-sided polygon) placed like Korea's population (most around Seoul and Gyeonggi, then
//! Busan, Daegu, Incheon, …, a fifth spread over the country), 25 % markets, 20 % items and 15 %
//! keywords, each picked by a Zipf law (a few popular, a long tail). Then a party is created in
//! central Seoul and, to compare, one in a market far from the cities.
//!
//! ```sh
//! cargo run --release -p gonggu-api --example notify_bench -- --users 1000000 --db sqlite
//! GONGGU_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release -p gonggu-api --example notify_bench -- --users 1000000 --db postgres
//! ```

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use store::live::Live;
use store::parties::{NewParty, Party};
use store::wishlists::{AreaShape, Center, GeoJsonPolygon, Wish};
use store::{Clock, Db};
use support::arg;

/// Where people live: (lat, lng, share of users, spread in km). The rest are spread uniformly.
const CITIES: [(f64, f64, f64, f64); 8] = [
    (37.5665, 126.9780, 0.36, 10.0), // Seoul
    (37.2636, 127.0286, 0.14, 15.0), // Gyeonggi south (Suwon, Seongnam, Yongin)
    (37.4563, 126.7052, 0.06, 8.0),  // Incheon
    (35.1796, 129.0756, 0.07, 9.0),  // Busan
    (35.8714, 128.6014, 0.05, 8.0),  // Daegu
    (36.3504, 127.3845, 0.03, 7.0),  // Daejeon
    (35.1595, 126.8526, 0.03, 7.0),  // Gwangju
    (35.5384, 129.3114, 0.02, 6.0),  // Ulsan
];

const KEYWORDS: [&str; 24] = [
    "한우",
    "삼겹살",
    "사과",
    "배추",
    "쌀",
    "계란",
    "고등어",
    "딸기",
    "감귤",
    "양파",
    "마늘",
    "대파",
    "오징어",
    "갈치",
    "참외",
    "수박",
    "포도",
    "고구마",
    "감자",
    "두부",
    "우유",
    "김치",
    "멸치",
    "전복",
];

/// A Zipf pick among `n` ranks (rank 0 the most popular), by inverting the harmonic sums.
fn zipf(rng: &mut StdRng, weights: &[f64]) -> usize {
    let total = weights.last().copied().unwrap_or(1.0);
    let x = rng.random::<f64>() * total;
    weights.partition_point(|&w| w < x).min(weights.len() - 1)
}

fn cumulative_zipf(n: usize) -> Vec<f64> {
    let mut acc = 0.0;
    (1..=n)
        .map(|r| {
            acc += 1.0 / r as f64;
            acc
        })
        .collect()
}

fn gaussian(rng: &mut StdRng) -> f64 {
    let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// A point where a user might live.
fn home(rng: &mut StdRng) -> (f64, f64) {
    let mut x = rng.random::<f64>();
    for (lat, lng, share, spread_km) in CITIES {
        if x < share {
            let dlat = gaussian(rng) * spread_km / 111.0;
            let dlng = gaussian(rng) * spread_km / (111.0 * lat.to_radians().cos());
            return (lat + dlat, lng + dlng);
        }
        x -= share;
    }
    (
        34.6 + rng.random::<f64>() * 3.6,
        126.3 + rng.random::<f64>() * 3.0,
    )
}

/// A star-shaped (so never self-intersecting) 12-sided polygon of 0.5 to 3 km around `(lat, lng)`.
fn polygon(rng: &mut StdRng, lat: f64, lng: f64) -> AreaShape {
    let r_km = 0.5 + rng.random::<f64>() * 2.5;
    let mut ring: Vec<[f64; 2]> = (0..12)
        .map(|i| {
            let angle = i as f64 * std::f64::consts::TAU / 12.0;
            let r = r_km * (0.6 + 0.4 * rng.random::<f64>());
            [
                lng + r * angle.cos() / (111.0 * lat.to_radians().cos()),
                lat + r * angle.sin() / 111.0,
            ]
        })
        .collect();
    ring.push(ring[0]);
    AreaShape::Polygon {
        polygon: GeoJsonPolygon {
            kind: "Polygon".into(),
            coordinates: vec![ring],
        },
    }
}

struct Row {
    user_id: i64,
    kind: &'static str,
    market_id: Option<i64>,
    item_id: Option<i64>,
    keyword: Option<String>,
    area: Option<String>,
    key: Option<String>,
    cells: Vec<(i64, i64)>,
}

struct Catalog {
    markets: Vec<i64>,
    items: Vec<i64>,
    market_weights: Vec<f64>,
    item_weights: Vec<f64>,
    keyword_weights: Vec<f64>,
}

fn wishlist(rng: &mut StdRng, catalog: &Catalog, user_id: i64) -> Result<Row> {
    let x = rng.random::<f64>();
    let wish = if x < 0.40 {
        let (lat, lng) = home(rng);
        if rng.random::<f64>() < 1.0 / 7.0 {
            Wish::Area(polygon(rng, lat, lng))
        } else {
            Wish::Area(AreaShape::Circle {
                center: Center { lat, lng },
                radius_m: 300.0 + rng.random::<f64>() * 4_700.0,
            })
        }
    } else if x < 0.65 {
        Wish::Market(catalog.markets[zipf(rng, &catalog.market_weights)])
    } else if x < 0.85 {
        Wish::Item(catalog.items[zipf(rng, &catalog.item_weights)])
    } else {
        Wish::Keyword(KEYWORDS[zipf(rng, &catalog.keyword_weights)].to_owned())
    };
    let key = store::wishlists::match_key(&wish);
    Ok(match wish {
        Wish::Market(id) => Row {
            user_id,
            kind: "market",
            market_id: Some(id),
            item_id: None,
            keyword: None,
            area: None,
            key,
            cells: Vec::new(),
        },
        Wish::Item(id) => Row {
            user_id,
            kind: "item",
            market_id: None,
            item_id: Some(id),
            keyword: None,
            area: None,
            key,
            cells: Vec::new(),
        },
        Wish::Keyword(k) => Row {
            user_id,
            kind: "keyword",
            market_id: None,
            item_id: None,
            keyword: Some(k),
            area: None,
            key,
            cells: Vec::new(),
        },
        Wish::Area(shape) => {
            let cells = shape
                .area()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .cells()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .into_iter()
                .map(|c| (c.cell as i64, i64::from(c.edge)))
                .collect();
            Row {
                user_id,
                kind: "area",
                market_id: None,
                item_id: None,
                keyword: None,
                area: Some(serde_json::to_string(&shape)?),
                key,
                cells,
            }
        }
    })
}

fn values(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Users `first..first + rows.len()` and their wishlists (ids equal to the users'), in one
/// transaction.
async fn insert(db: &Db, rows: &[Row], now: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    for chunk in rows.chunks(100) {
        let sql = format!(
            "INSERT INTO users (id, email, password_hash, nickname, created_at, updated_at) VALUES {}",
            values(chunk.len(), 6)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(r.user_id)
                .bind(format!("u{}@bench.gonggu.kr", r.user_id))
                .bind("x")
                .bind("bench")
                .bind(now)
                .bind(now);
        }
        q.execute(tx.conn()).await?;
        let sql = format!(
            "INSERT INTO wishlists (id, user_id, kind, market_id, item_id, keyword, area, match_key, created_at) VALUES {}",
            values(chunk.len(), 9)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(r.user_id)
                .bind(r.user_id)
                .bind(r.kind)
                .bind(r.market_id)
                .bind(r.item_id)
                .bind(r.keyword.clone())
                .bind(r.area.clone())
                .bind(r.key.clone())
                .bind(now);
        }
        q.execute(tx.conn()).await?;
    }
    let cells: Vec<(i64, i64, i64)> = rows
        .iter()
        .flat_map(|r| r.cells.iter().map(move |&(c, e)| (c, r.user_id, e)))
        .collect();
    for chunk in cells.chunks(250) {
        let sql = format!(
            "INSERT INTO wishlist_cells (cell, wishlist_id, user_id, edge) VALUES {}",
            values(chunk.len(), 4)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for &(cell, user, edge) in chunk {
            q = q.bind(cell).bind(user).bind(user).bind(edge);
        }
        q.execute(tx.conn()).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Scanned {
    user_id: i64,
    kind: String,
    market_id: Option<i64>,
    item_id: Option<i64>,
    keyword: Option<String>,
    area: Option<String>,
}

/// The naive way: read every wishlist and test each against the party.
async fn naive(db: &Db, party: &Party, item_name: &str) -> Result<BTreeSet<i64>> {
    use unicode_normalization::UnicodeNormalization;
    let text = format!("{}\n{}", party.title, item_name)
        .nfkc()
        .collect::<String>()
        .to_lowercase();
    let point = geo_index::LatLng::new(party.lat, party.lng)?;
    let rows: Vec<Scanned> =
        sqlx::query_as("SELECT user_id, kind, market_id, item_id, keyword, area FROM wishlists")
            .fetch_all(db.pool())
            .await?;
    let mut users = BTreeSet::new();
    for w in rows {
        let hit = match w.kind.as_str() {
            "market" => w.market_id == Some(party.market_id),
            "item" => w.item_id == Some(party.item_id),
            "keyword" => w.keyword.is_some_and(|k| text.contains(&k)),
            _ => w
                .area
                .and_then(|a| serde_json::from_str::<AreaShape>(&a).ok())
                .and_then(|s| s.area().ok())
                .is_some_and(|a| a.contains(point)),
        };
        if hit {
            users.insert(w.user_id);
        }
    }
    users.remove(&party.leader_id);
    Ok(users)
}

async fn indexed(db: &Db, party: &Party, item_name: &str) -> Result<Vec<i64>> {
    let mut conn = db.pool().acquire().await?;
    Ok(store::wishlists::matching_users(&mut conn, party, item_name).await?)
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Times the index (median of 5) and the naive scan (median of 3) for `party`; they must agree.
async fn compare(db: &Db, backend: &str, label: &str, party: &Party, item: &str) -> Result<usize> {
    let mut times = Vec::new();
    let mut found = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        found = indexed(db, party, item).await?;
        times.push(t.elapsed());
    }
    let index_time = median(times);
    let mut times = Vec::new();
    let mut scanned = BTreeSet::new();
    for _ in 0..3 {
        let t = Instant::now();
        scanned = naive(db, party, item).await?;
        times.push(t.elapsed());
    }
    let naive_time = median(times);
    let found_set: BTreeSet<i64> = found.iter().copied().collect();
    anyhow::ensure!(
        found_set == scanned,
        "the index found {} users, the scan {}",
        found_set.len(),
        scanned.len()
    );
    println!(
        "{backend}: party {label}: {} users to notify; found by the index in {:.1} ms, by the \
         naive scan in {:.0} ms ({:.0}x)",
        found.len(),
        index_time.as_secs_f64() * 1e3,
        naive_time.as_secs_f64() * 1e3,
        naive_time.as_secs_f64() / index_time.as_secs_f64()
    );
    Ok(found.len())
}

async fn party_at(
    db: &Db,
    clock: &Clock,
    leader: i64,
    market: i64,
    item: i64,
    title: String,
) -> Result<Party> {
    let now = clock.now_ms();
    store::parties::create_party(
        db,
        &NewParty {
            leader_id: leader,
            market_id: market,
            item_id: item,
            title,
            description: String::new(),
            capacity: 10,
            min_members: 2,
            price_per_share: None,
            meet_at: now + 2 * 86_400_000,
            deadline_at: now + 86_400_000,
        },
        now,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let users: i64 = arg("--users").map_or(Ok(1_000_000), |s| s.parse())?;
    let backend = arg("--db").unwrap_or_else(|| "sqlite".into());
    let dir = tempfile::tempdir()?;
    let db_url = match backend.as_str() {
        "sqlite" => Db::sqlite_url(&dir.path().join("gonggu.db")),
        "postgres" => {
            let base = std::env::var("GONGGU_TEST_DATABASE_URL")
                .context("set GONGGU_TEST_DATABASE_URL for --db postgres")?;
            store::testing::fresh_pg_url(&base).await
        }
        other => anyhow::bail!("--db sqlite or postgres, not {other}"),
    };
    let db = Db::connect(&db_url, 8).await?;
    db.migrate().await?;
    let clock = Clock::system();
    let live = Live::memory();
    api::seed::run(&db, &live, &clock, false).await?;
    let markets: Vec<(i64,)> =
        sqlx::query_as("SELECT id FROM markets WHERE lat IS NOT NULL ORDER BY id")
            .fetch_all(db.pool())
            .await?;
    let items: Vec<(i64,)> = sqlx::query_as("SELECT id FROM items ORDER BY id")
        .fetch_all(db.pool())
        .await?;
    let catalog = Arc::new(Catalog {
        market_weights: cumulative_zipf(markets.len()),
        item_weights: cumulative_zipf(items.len()),
        keyword_weights: cumulative_zipf(KEYWORDS.len()),
        markets: markets.into_iter().map(|(id,)| id).collect(),
        items: items.into_iter().map(|(id,)| id).collect(),
    });

    // Users and their wishlists, generated (shapes tiled) on the blocking pool while the previous
    // chunk is written.
    let loaded = Instant::now();
    let first = 1_000_000_i64;
    let chunk = 10_000_i64;
    let mut cells = 0usize;
    let mut writing = Duration::ZERO;
    let generate = |from: i64| {
        let catalog = catalog.clone();
        tokio::task::spawn_blocking(move || -> Result<Vec<Row>> {
            let mut rng = StdRng::seed_from_u64(from as u64);
            (from..(from + chunk).min(first + users))
                .map(|u| wishlist(&mut rng, &catalog, u))
                .collect()
        })
    };
    let mut next = Some(generate(first));
    let mut from = first;
    while let Some(pending) = next.take() {
        let rows = pending.await??;
        from += chunk;
        if from < first + users {
            next = Some(generate(from));
        }
        cells += rows.iter().map(|r| r.cells.len()).sum::<usize>();
        let t = Instant::now();
        insert(&db, &rows, clock.now_ms()).await?;
        writing += t.elapsed();
    }
    if backend == "postgres" {
        // What autovacuum would have done by the time a million wishlists exist.
        sqlx::query("ANALYZE").execute(db.pool()).await?;
    }
    eprintln!(
        "{users} users' wishlists ({cells} area cells) loaded in {:.0?} ({:.0?} writing)",
        loaded.elapsed(),
        writing
    );

    let leader = store::users::insert_user(&db, "leader@bench.gonggu.kr", "x", "leader", 0)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .id;
    // Central Seoul: the market nearest city hall, a fairly popular item, a popular keyword.
    let (seoul_market,): (i64,) = sqlx::query_as(
        "SELECT id FROM markets WHERE lat IS NOT NULL \
         ORDER BY (lat - 37.5665) * (lat - 37.5665) + (lng - 126.978) * (lng - 126.978) LIMIT 1",
    )
    .fetch_one(db.pool())
    .await?;
    let item = catalog.items[5];
    let (item_name,): (String,) = sqlx::query_as("SELECT name FROM items WHERE id = $1")
        .bind(item)
        .fetch_one(db.pool())
        .await?;
    let seoul = party_at(
        &db,
        &clock,
        leader,
        seoul_market,
        item,
        format!("{} 나눠요", KEYWORDS[2]),
    )
    .await?;
    compare(&db, &backend, "in central Seoul", &seoul, &item_name).await?;
    // Far from the cities: the market farthest from every city centre, a tail item and keyword.
    let (rural_market,): (i64,) = sqlx::query_as(
        "SELECT id FROM markets WHERE lat IS NOT NULL AND lat < 37.0 AND lng < 127.5 AND lng > 126.9 \
         AND lat > 35.5 ORDER BY id LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?
    .unwrap_or((catalog.markets[catalog.markets.len() - 1],));
    let tail = catalog.items[catalog.items.len() - 1];
    let (tail_name,): (String,) = sqlx::query_as("SELECT name FROM items WHERE id = $1")
        .bind(tail)
        .fetch_one(db.pool())
        .await?;
    let rural = party_at(
        &db,
        &clock,
        leader,
        rural_market,
        tail,
        format!("{} 나눠요", KEYWORDS[KEYWORDS.len() - 1]),
    )
    .await?;
    compare(&db, &backend, "outside the cities", &rural, &tail_name).await?;

    // Find and write, as the notifications writer does: one batch over the two events. The timer
    // starts once the events are readable (on PostgreSQL a consumer reads only events older than
    // every running transaction, and an automatic ANALYZE of the freshly loaded tables may hold
    // one): it times the batch, not that wait.
    let notifier = jobs::notifier::Notifier::new(live.bus.clone());
    let position: (i64, i64) =
        sqlx::query_as("SELECT last_tx, last_id FROM outbox_consumers WHERE name = $1")
            .bind(jobs::notifier::NAME)
            .fetch_optional(db.pool())
            .await?
            .unwrap_or((0, 0));
    let waited = Instant::now();
    while !store::consumers::pending(&db, position).await? {
        anyhow::ensure!(
            waited.elapsed() < Duration::from_secs(600),
            "events not readable"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if waited.elapsed() > Duration::from_millis(100) {
        println!(
            "{backend}: the events became readable after {:.0} ms (a transaction older than them was running)",
            waited.elapsed().as_secs_f64() * 1e3
        );
    }
    let t = Instant::now();
    let mut handled = 0;
    while handled < 2 {
        handled += store::consumers::run_once(&db, notifier.as_ref(), 100, clock.now_ms()).await?;
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(600),
            "events not readable"
        );
    }
    let written: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM notifications")
        .fetch_one(db.pool())
        .await?;
    println!(
        "{backend}: the notifications writer found and wrote {} notifications for both parties \
         in {:.0} ms ({:.0} per second)",
        written.0,
        t.elapsed().as_secs_f64() * 1e3,
        written.0 as f64 / t.elapsed().as_secs_f64()
    );
    Ok(())
}
