//! Catalog rows travel to the database as JSON text (`store::catalog`). Every value a validated
//! row can hold must come back: exactly on PostgreSQL, and on SQLite text exactly and numbers
//! within one unit in the last place (its JSON number parser is not always correctly rounded).
//! Either way an unchanged row must read as unchanged, or it would be rewritten on every nightly
//! run. Random rows (seeded) are written, read back and compared with what was sent, then offered
//! again by a later run, which must find every row unchanged.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use store::catalog::{apply_chunk, CatalogRow, ChunkCounts, ItemRow, MarketRow};
use store::Db;

const ROWS: usize = 1500;

async fn sqlite(dir: &tempfile::TempDir) -> Db {
    store::testing::sqlite_db(dir.path()).await
}

async fn postgres() -> Option<Db> {
    store::testing::postgres_db().await
}

/// Text as validation lets it through: any non-control characters, with JSON's and SQL's special
/// ones, Hangul, astral-plane emoji, combining marks and the separators JSON treats specially.
fn text(rng: &mut StdRng) -> String {
    const POOL: &[&str] = &[
        "a",
        "Z",
        "0",
        " ",
        "\"",
        "\\",
        "'",
        "/",
        "%",
        "_",
        "?",
        "$1",
        "{",
        "}",
        "[",
        "]",
        "생수",
        "두부",
        "ㄱ",
        "🍎",
        "👨‍👩‍👧",
        "e\u{301}",
        "\u{2028}",
        "\u{2029}",
        "\u{feff}",
        "\u{fffd}",
        "×",
        "½",
        "null",
        "true",
        "->>",
        "--",
        ";",
    ];
    let n = rng.random_range(1..12);
    (0..n)
        .map(|_| POOL[rng.random_range(0..POOL.len())])
        .collect()
}

fn maybe_text(rng: &mut StdRng) -> Option<String> {
    rng.random_bool(0.8).then(|| text(rng))
}

/// Counts as validation lets them through (0 to 1e9), with the awkward ones weighted in.
fn count(rng: &mut StdRng) -> Option<f64> {
    const EDGES: &[f64] = &[
        0.0,
        1e9,
        5e-324,
        2.2250738585072014e-308,
        0.1,
        0.30000000000000004,
        1.0 / 3.0,
        123456.789,
        999_999_999.999_999_9,
    ];
    match rng.random_range(0..10) {
        0 => None,
        1 | 2 => Some(EDGES[rng.random_range(0..EDGES.len())]),
        3 => Some(rng.random_range(0..1_000_000_000) as f64),
        _ => Some(rng.random_range(0.0..1e9) / 10f64.powi(rng.random_range(0..12))),
    }
}

fn items(rng: &mut StdRng) -> Vec<ItemRow> {
    (0..ROWS)
        .map(|i| ItemRow {
            source_id: format!("{i:05}{}", text(rng)),
            name: text(rng),
            category_code: maybe_text(rng),
            unit: maybe_text(rng),
            base_count: count(rng),
            total_count: count(rng),
            total_unit: maybe_text(rng),
            maker: maybe_text(rng),
        })
        .collect()
}

fn markets(rng: &mut StdRng) -> Vec<MarketRow> {
    (0..ROWS)
        .map(|i| {
            let located = rng.random_bool(0.9);
            MarketRow {
                source_id: format!("{i:05}{}", text(rng)),
                name: text(rng),
                kind: text(rng),
                road_address: maybe_text(rng),
                lat: located.then(|| rng.random_range(33.0..=39.0)),
                lng: located.then(|| rng.random_range(124.0..=132.0)),
                area_code: maybe_text(rng),
            }
        })
        .collect()
}

/// Every stored row of `source`, by id order (the order they were written in).
async fn stored<R: CatalogRow + std::fmt::Debug>(db: &Db, source: &str) -> Vec<R> {
    let columns = std::iter::once("source_id")
        .chain(R::FIELDS.iter().map(|c| c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {columns} FROM {} WHERE source = $1 ORDER BY id",
        R::TABLE.as_str()
    );
    sqlx::query_as::<_, R>(sqlx::AssertSqlSafe(&*sql))
        .bind(source)
        .fetch_all(db.pool())
        .await
        .unwrap()
}

async fn round_trip<R: CatalogRow + std::fmt::Debug>(db: &Db, rows: Vec<R>) {
    let first = apply_chunk(db, "prop", &rows, 1000, 1).await.unwrap();
    assert_eq!(
        first,
        ChunkCounts {
            inserted: ROWS as u64,
            ..ChunkCounts::default()
        }
    );
    let back: Vec<R> = stored(db, "prop").await;
    assert_eq!(back.len(), rows.len());
    for (sent, got) in rows.iter().zip(&back) {
        match db.dialect() {
            // The double sent is the double stored.
            store::Dialect::Postgres => assert_eq!(sent, got),
            // Within one unit in the last place (see `catalog::same_real`).
            store::Dialect::Sqlite => assert!(
                sent.same_values(got),
                "a value changed on its way through the database: {sent:?} -> {got:?}"
            ),
        }
    }
    let again = apply_chunk(db, "prop", &rows, 2000, 2).await.unwrap();
    assert_eq!(
        again,
        ChunkCounts {
            unchanged: ROWS as u64,
            ..ChunkCounts::default()
        },
        "a later run finds every row unchanged"
    );
}

async fn every_value_round_trips(db: Db, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    round_trip(&db, items(&mut rng)).await;
    round_trip(&db, markets(&mut rng)).await;
}

#[tokio::test]
async fn every_value_round_trips_on_sqlite() {
    for seed in [1, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        every_value_round_trips(sqlite(&dir).await, seed).await;
    }
}

#[tokio::test]
async fn every_value_round_trips_on_postgres() {
    for seed in [1, 2, 3] {
        let Some(db) = postgres().await else { return };
        every_value_round_trips(db, seed).await;
    }
}
