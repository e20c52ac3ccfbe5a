//! Fan-out of one new party to the users whose wishlists match it, with `--users` users (one
//! wishlist each) spread like Korea's population: most around Seoul and the other large cities
//! (gaussian spread), the rest anywhere on the peninsula. Wishlists are 45% areas (circles of
//! 300 m to 2 km), 25% markets, 15% items and 15% keywords. One party is then created in central
//! Seoul and its notifications found and written as the `notifications` consumer does (the
//! indexed match, then one inbox write per user in one transaction), against a naive scan of
//! every wishlist in the same run (which must find the same users).
//!
//! ```sh
//! cargo run --release -p gonggu-api --example notify_bench -- --users 1000000 --db sqlite
//! GONGGU_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release -p gonggu-api --example notify_bench -- --users 1000000 --db postgres
//! ```

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use geo_index::area::Area;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use store::notifications::{self, NewNotification};
use store::parties::NewParty;
use store::wishlists::{AreaShape, Center};
use store::{Clock, Db};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Population centres: (lat, lng, share of users, spread in degrees).
const CITIES: [(f64, f64, f64, f64); 16] = [
    (37.5665, 126.9780, 0.19, 0.08),  // Seoul
    (37.4563, 126.7052, 0.06, 0.05),  // Incheon
    (37.2636, 127.0286, 0.06, 0.05),  // Suwon
    (37.4200, 127.1270, 0.04, 0.04),  // Seongnam
    (37.6584, 126.8320, 0.04, 0.04),  // Goyang
    (35.1796, 129.0756, 0.065, 0.06), // Busan
    (35.8714, 128.6014, 0.045, 0.05), // Daegu
    (36.3504, 127.3845, 0.03, 0.04),  // Daejeon
    (35.1595, 126.8526, 0.03, 0.04),  // Gwangju
    (35.5384, 129.3114, 0.02, 0.04),  // Ulsan
    (35.2280, 128.6811, 0.02, 0.04),  // Changwon
    (36.6424, 127.4890, 0.017, 0.03), // Cheongju
    (35.8242, 127.1480, 0.013, 0.03), // Jeonju
    (36.8151, 127.1139, 0.013, 0.03), // Cheonan
    (33.4996, 126.5312, 0.013, 0.03), // Jeju
    (36.0190, 129.3435, 0.01, 0.03),  // Pohang
];

/// What items are called and keywords look for.
const WORDS: [&str; 24] = [
    "삼겹살",
    "한우",
    "신라면",
    "계란",
    "우유",
    "쌀",
    "사과",
    "배",
    "귤",
    "두부",
    "김치",
    "참기름",
    "고추장",
    "된장",
    "생수",
    "휴지",
    "세제",
    "커피",
    "라면",
    "오징어",
    "고등어",
    "딸기",
    "수박",
    "감자",
];

/// A point drawn from the population model.
fn place(rng: &mut StdRng) -> (f64, f64) {
    let mut pick: f64 = rng.random();
    for (lat, lng, share, spread) in CITIES {
        if pick < share {
            return (lat + gauss(rng) * spread, lng + gauss(rng) * spread * 1.2);
        }
        pick -= share;
    }
    (rng.random_range(34.6..38.2), rng.random_range(126.4..129.3))
}

/// A standard normal draw (Box-Muller).
fn gauss(rng: &mut StdRng) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Mostly the first words: some products are watched by far more people.
fn popular(rng: &mut StdRng, n: usize) -> usize {
    let x: f64 = rng.random();
    ((x * x) * n as f64) as usize % n
}

enum Wish {
    Area(AreaShape),
    Market(i64),
    Item(i64),
    Keyword(&'static str),
}

/// Inserts `rows` with `cols` columns each, 1,000 rows per statement, in one transaction.
async fn bulk<F>(db: &Db, table: &str, cols: &str, rows: usize, mut bind: F) -> Result<()>
where
    F: for<'q> FnMut(
        usize,
        sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
{
    let n_cols = cols.split(',').count();
    let mut tx = db.begin().await?;
    for start in (0..rows).step_by(1000) {
        let end = (start + 1000).min(rows);
        let values: Vec<String> = (0..end - start)
            .map(|r| {
                let ps: Vec<String> = (1..=n_cols)
                    .map(|c| format!("${}", r * n_cols + c))
                    .collect();
                format!("({})", ps.join(", "))
            })
            .collect();
        let sql = format!("INSERT INTO {table} ({cols}) VALUES {}", values.join(", "));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for i in start..end {
            q = bind(i, q);
        }
        q.execute(tx.conn()).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let users: usize = arg("--users").map_or(Ok(1_000_000), |s| s.parse())?;
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
    let now = clock.now_ms();
    let mut rng = StdRng::seed_from_u64(13);
    let setup = Instant::now();

    // The catalogue: 500 markets placed like people, 2,000 items named after the words.
    let mut tx = db.begin().await?;
    let mut markets = Vec::new();
    for i in 0..500 {
        let (lat, lng) = if i == 0 {
            (37.5663, 126.9779)
        } else {
            place(&mut rng)
        };
        let row = store::catalog::MarketRow {
            source_id: format!("bm{i}"),
            name: format!("벤치시장 {i}"),
            kind: "traditional_market".into(),
            road_address: None,
            lat: Some(lat),
            lng: Some(lng),
            area_code: None,
        };
        markets.push((
            store::catalog::upsert_row(&mut tx, "bench", &row, now).await?,
            lat,
            lng,
        ));
    }
    let mut items = Vec::new();
    for i in 0..2000 {
        let row = store::catalog::ItemRow {
            source_id: format!("bi{i}"),
            name: format!("{} {}호", WORDS[i % WORDS.len()], i),
            category_code: None,
            unit: None,
            base_count: None,
            total_count: None,
            total_unit: None,
            maker: None,
        };
        items.push(store::catalog::upsert_row(&mut tx, "bench", &row, now).await?);
    }
    tx.commit().await?;

    // Users 1..=n, and the party's leader n + 1.
    bulk(
        &db,
        "users",
        "id, email, password_hash, nickname, created_at, updated_at",
        users + 1,
        |i, q| {
            q.bind(i as i64 + 1)
                .bind(format!("u{i}@bench.gonggu.kr"))
                .bind("x")
                .bind("벤치")
                .bind(now)
                .bind(now)
        },
    )
    .await?;
    let leader = users as i64 + 1;

    // One wishlist per user.
    let wishes: Vec<Wish> = (0..users)
        .map(|_| {
            let kind: f64 = rng.random();
            if kind < 0.45 {
                let (lat, lng) = place(&mut rng);
                Wish::Area(AreaShape::Circle {
                    center: Center { lat, lng },
                    radius_m: rng.random_range(300.0..2000.0),
                })
            } else if kind < 0.70 {
                // People watch markets near them: the market nearest a point drawn like them.
                let (lat, lng) = place(&mut rng);
                Wish::Market(nearest(&markets, lat, lng))
            } else if kind < 0.85 {
                Wish::Item(items[popular(&mut rng, items.len())])
            } else {
                Wish::Keyword(WORDS[popular(&mut rng, WORDS.len())])
            }
        })
        .collect();
    let mut cells: Vec<(i64, i64, i64, i64)> = Vec::new();
    for (i, w) in wishes.iter().enumerate() {
        if let Wish::Area(shape) = w {
            let area: Area = shape.area().map_err(|e| anyhow::anyhow!("{e}"))?;
            for c in area.cells().map_err(|e| anyhow::anyhow!("{e}"))? {
                cells.push((c.cell as i64, i as i64 + 1, i as i64 + 1, i64::from(c.edge)));
            }
        }
    }
    bulk(
        &db,
        "wishlists",
        "id, user_id, kind, market_id, item_id, keyword, area, match_key, created_at",
        users,
        |i, q| {
            let id = i as i64 + 1;
            let (kind, market, item, word, area, key) = match &wishes[i] {
                Wish::Area(shape) => (
                    "area",
                    None,
                    None,
                    None,
                    serde_json::to_string(shape).ok(),
                    None,
                ),
                Wish::Market(m) => ("market", Some(*m), None, None, None, Some(format!("m:{m}"))),
                Wish::Item(it) => ("item", None, Some(*it), None, None, Some(format!("i:{it}"))),
                Wish::Keyword(k) => (
                    "keyword",
                    None,
                    None,
                    Some((*k).to_owned()),
                    None,
                    Some(format!("k:{}", k.chars().take(2).collect::<String>())),
                ),
            };
            q.bind(id)
                .bind(id)
                .bind(kind)
                .bind(market)
                .bind(item)
                .bind(word)
                .bind(area)
                .bind(key)
                .bind(now)
        },
    )
    .await?;
    bulk(
        &db,
        "wishlist_cells",
        "cell, wishlist_id, user_id, edge",
        cells.len(),
        |i, q| {
            let (cell, w, u, edge) = cells[i];
            q.bind(cell).bind(w).bind(u).bind(edge)
        },
    )
    .await?;
    if backend == "postgres" {
        sqlx::query("ANALYZE").execute(db.pool()).await?;
    }
    eprintln!(
        "{users} users, {users} wishlists, {} area cells made in {:.1?}",
        cells.len(),
        setup.elapsed()
    );

    // The party: at the market in central Seoul, for a 삼겹살 item.
    let item = items[0];
    let party = store::parties::create_party(
        &db,
        &NewParty {
            leader_id: leader,
            market_id: markets[0].0,
            item_id: item,
            title: "삼겹살 같이 사요".into(),
            description: String::new(),
            capacity: 4,
            min_members: 2,
            price_per_share: None,
            meet_at: now + 48 * 3_600_000,
            deadline_at: now + 47 * 3_600_000,
        },
        now,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let item_name: (String,) = sqlx::query_as("SELECT name FROM items WHERE id = $1")
        .bind(item)
        .fetch_one(db.pool())
        .await?;
    let item_name = item_name.0;

    // Indexed: find, then write each user's notification, in one transaction (as the consumer).
    let started = Instant::now();
    let mut tx = db.begin().await?;
    let found = store::wishlists::matching_users(tx.conn(), &party, &item_name).await?;
    let find = started.elapsed();
    for &user_id in &found {
        notifications::write(
            tx.conn(),
            &NewNotification {
                user_id,
                kind: notifications::kind::PARTY_CREATED,
                party_id: Some(party.id),
                title: "찜한 조건에 맞는 공구가 열렸어요".into(),
                body: party.title.clone(),
                dedupe: format!("party_created:{}", party.id),
            },
            now,
        )
        .await?;
    }
    tx.commit().await?;
    let indexed = started.elapsed();

    // Naive: read every wishlist and test it.
    let started = Instant::now();
    let naive = naive_scan(&db, &party, &item_name).await?;
    let scan = started.elapsed();
    let found_set: BTreeSet<i64> = found.iter().copied().collect();
    anyhow::ensure!(
        found_set == naive,
        "the index found {} users, the scan {}",
        found_set.len(),
        naive.len()
    );
    println!(
        "{backend}: {users} users; party at 37.5663,126.9779 matches {} users\n\
         indexed: find {:.1?}, find + write {} notifications {:.1?}\n\
         naive scan of every wishlist: find {:.1?} ({:.0}x the indexed find)",
        found.len(),
        find,
        found.len(),
        indexed,
        scan,
        scan.as_secs_f64() / find.as_secs_f64()
    );
    Ok(())
}

/// The market nearest `(lat, lng)` (degrees, longitude scaled for Korea's latitude).
fn nearest(markets: &[(i64, f64, f64)], lat: f64, lng: f64) -> i64 {
    let d = |&(_, mlat, mlng): &(i64, f64, f64)| {
        let (dy, dx) = (mlat - lat, (mlng - lng) * 0.8);
        dy * dy + dx * dx
    };
    markets
        .iter()
        .min_by(|a, b| d(a).total_cmp(&d(b)))
        .map_or(0, |m| m.0)
}

#[derive(sqlx::FromRow)]
struct Row {
    user_id: i64,
    kind: String,
    market_id: Option<i64>,
    item_id: Option<i64>,
    keyword: Option<String>,
    area: Option<String>,
}

/// Every wishlist read and tested: what matching costs without the keys and the cell index.
async fn naive_scan(
    db: &Db,
    party: &store::parties::Party,
    item_name: &str,
) -> Result<BTreeSet<i64>> {
    let text = format!("{}\n{}", party.title, item_name).to_lowercase();
    let point =
        geo_index::LatLng::new(party.lat, party.lng).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut users = BTreeSet::new();
    let mut rows = sqlx::query_as::<_, Row>(
        "SELECT user_id, kind, market_id, item_id, keyword, area FROM wishlists",
    )
    .fetch(db.pool());
    while let Some(r) = rows.try_next().await? {
        let hit = match r.kind.as_str() {
            "market" => r.market_id == Some(party.market_id),
            "item" => r.item_id == Some(party.item_id),
            "keyword" => r.keyword.is_some_and(|k| text.contains(&k)),
            "area" => r
                .area
                .as_deref()
                .and_then(|a| serde_json::from_str::<AreaShape>(a).ok())
                .and_then(|s| s.area().ok())
                .is_some_and(|a| a.contains(point)),
            _ => false,
        };
        if hit {
            users.insert(r.user_id);
        }
    }
    users.remove(&party.leader_id);
    Ok(users)
}
