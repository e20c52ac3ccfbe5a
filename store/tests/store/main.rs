//! The store's integration tests, one binary: the SQL layer on both dialects, the durable outbox
//! consumers, and the live-state contracts run against the in-process and Redis implementations.

/// Runs each named `async fn(Db)` of the module twice: on a fresh SQLite database and, when
/// configured, on a fresh PostgreSQL schema.
macro_rules! on_both {
    ($($name:ident),*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                super::$name(store::testing::sqlite_db(dir.path()).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = store::testing::postgres_db().await {
                    super::$name(db).await;
                }
            }
        }
    )*};
}

mod catalog_roundtrip;
mod consumers;
mod inbox;
mod live_contract;
mod queue_contract;
mod sql;
