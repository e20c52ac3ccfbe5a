//! Helpers for the test suites of every crate: isolated databases and Redis prefixes, so tests run
//! in parallel against one PostgreSQL and one Redis.
//!
//! Tests read `GONGGU_TEST_DATABASE_URL` and `GONGGU_TEST_REDIS_URL`. Without them the scale-out
//! variants say they skipped; with `GONGGU_TEST_REQUIRE_SERVICES=1` (CI) they fail instead.

use rand::Rng;

use crate::Db;

/// True when CI demands the PostgreSQL and Redis suites run.
pub fn services_required() -> bool {
    std::env::var("GONGGU_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1" || v == "true")
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

/// The PostgreSQL and Redis URLs for scale-out tests, or `None` after printing that they skipped.
///
/// # Panics
/// When a URL is missing and [`services_required`] is true.
pub fn scaled_urls() -> Option<(String, String)> {
    match (var("GONGGU_TEST_DATABASE_URL"), var("GONGGU_TEST_REDIS_URL")) {
        (Some(db), Some(redis)) => Some((db, redis)),
        _ if services_required() => panic!(
            "GONGGU_TEST_REQUIRE_SERVICES is set but GONGGU_TEST_DATABASE_URL / GONGGU_TEST_REDIS_URL are not"
        ),
        _ => {
            eprintln!("skipped: set GONGGU_TEST_DATABASE_URL and GONGGU_TEST_REDIS_URL to run on PostgreSQL and Redis");
            None
        }
    }
}

/// A unique name `{prefix}_{unix seconds}_{random}`; the seconds let stale ones be cleaned up.
pub fn unique_name(prefix: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{prefix}_{secs}_{:08x}", rand::rng().random::<u32>())
}

/// Creates a fresh PostgreSQL schema and returns a URL whose connections use it. Schemas that
/// earlier runs left behind over an hour ago are dropped first (once per process).
///
/// # Panics
/// When PostgreSQL cannot be reached: a test that asked for it must not pass silently.
pub async fn fresh_pg_url(base: &str) -> String {
    static CLEANUP: std::sync::Once = std::sync::Once::new();
    let admin = Db::connect(base, 2)
        .await
        .expect("connect to GONGGU_TEST_DATABASE_URL");
    let mut cleanup = false;
    CLEANUP.call_once(|| cleanup = true);
    if cleanup {
        let cutoff = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .saturating_sub(3600);
        let old: Vec<(String,)> =
            sqlx::query_as("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'gt\\_%'")
                .fetch_all(admin.pool())
                .await
                .unwrap_or_default();
        for (name,) in old {
            let secs = name.split('_').nth(1).and_then(|s| s.parse::<u64>().ok());
            if secs.is_some_and(|s| s < cutoff) {
                let _ = sqlx::query(sqlx::AssertSqlSafe(&*format!(
                    "DROP SCHEMA IF EXISTS {name} CASCADE"
                )))
                .execute(admin.pool())
                .await;
            }
        }
    }
    let schema = unique_name("gt");
    sqlx::query(sqlx::AssertSqlSafe(&*format!("CREATE SCHEMA {schema}")))
        .execute(admin.pool())
        .await
        .expect("create test schema");
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// A migrated SQLite database in the file `t.db` of `dir`.
///
/// # Panics
/// When the file cannot be opened or migrated.
pub async fn sqlite_db(dir: &std::path::Path) -> Db {
    let db = Db::connect(&Db::sqlite_url(&dir.join("t.db")), 4)
        .await
        .expect("open the SQLite test database");
    db.migrate()
        .await
        .expect("migrate the SQLite test database");
    db
}

/// A migrated PostgreSQL database in a fresh schema, or `None` when the scale-out tests skip (see
/// [`scaled_urls`]).
///
/// # Panics
/// When PostgreSQL is configured but cannot be reached or migrated.
pub async fn postgres_db() -> Option<Db> {
    let (url, _) = scaled_urls()?;
    let db = Db::connect(&fresh_pg_url(&url).await, 4)
        .await
        .expect("connect to the PostgreSQL test database");
    db.migrate()
        .await
        .expect("migrate the PostgreSQL test database");
    Some(db)
}
