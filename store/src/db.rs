//! The SQL system of record: one pool, SQLite or PostgreSQL, one code path.
//!
//! Queries are written once in portable SQL with `$1` placeholders (SQLite accepts them too) and run
//! through sqlx's `Any` driver. The two dialects differ only in their migrations and in how a write
//! transaction starts (see [`Db::begin`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::AnyConnection;
use sqlx::{Any, AnyPool, Executor};
use tokio::sync::{watch, Mutex, Notify, OwnedMutexGuard};

use crate::error::{Error, Result};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// Which SQL database a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Reads the dialect from a database URL's scheme.
    pub fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Dialect::Postgres)
        } else {
            Err(Error::UnsupportedUrl)
        }
    }

    /// The dialect's name as shown in logs and `/readyz`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

/// A handle on the database: cheap to clone, shared by every request and task.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite allows one writer at a time. Queuing writers here, in order, is fairer and cheaper
    /// than letting them spin on SQLITE_BUSY inside the driver.
    sqlite_writer: Arc<Mutex<()>>,
    /// Woken after every commit, so the outbox relay publishes at once instead of on its next poll.
    committed: Notify,
    /// Counts commits, for any number of waiters (the durable outbox consumers).
    commits: watch::Sender<u64>,
}

impl Db {
    /// Connects to `url` (`sqlite://path?mode=rwc`, `postgres://...`) with at most `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL lets readers run beside the writer; NORMAL sync is durable across
                        // process crashes in WAL mode; foreign keys are off by default in SQLite.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                dialect,
                sqlite_writer: Arc::new(Mutex::new(())),
                committed: Notify::new(),
                commits: watch::Sender::new(0),
            }),
        })
    }

    /// The URL of an SQLite database file at `path`, created if missing.
    pub fn sqlite_url(path: &Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    /// Applies the embedded migrations of this dialect. Safe to run from several processes at once
    /// on PostgreSQL (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.inner.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.inner.pool).await?;
        Ok(())
    }

    /// Applies the migrations up to `version` only: an older release's schema, for tests of what
    /// an upgrade does to existing data.
    pub async fn migrate_to(&self, version: i64) -> Result<()> {
        let migrator = match self.inner.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run_to(version, &self.inner.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    /// Starts a write transaction. On SQLite it waits its turn behind other writers of this process
    /// and then takes the write lock at once (`BEGIN IMMEDIATE`), so a transaction never fails
    /// half-way when it upgrades from reading to writing.
    pub async fn begin(&self) -> Result<Tx> {
        match self.inner.dialect {
            Dialect::Sqlite => {
                let permit = self.inner.sqlite_writer.clone().lock_owned().await;
                let tx = self.inner.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(Tx {
                    tx,
                    _writer: Some(permit),
                    db: self.clone(),
                })
            }
            Dialect::Postgres => Ok(Tx {
                tx: self.inner.pool.begin().await?,
                _writer: None,
                db: self.clone(),
            }),
        }
    }

    /// Resolves after the next commit made through this handle (or at once if one happened since the
    /// last call). Meant for the single outbox relay of the process.
    pub async fn committed(&self) {
        self.inner.committed.notified().await
    }

    /// A receiver that changes after every commit made through this handle.
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.inner.commits.subscribe()
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.inner.pool).await?;
        Ok(())
    }

    /// Open connections and idle ones, for metrics.
    pub fn pool_stats(&self) -> (u32, usize) {
        (self.inner.pool.size(), self.inner.pool.num_idle())
    }

    pub async fn close(&self) {
        self.inner.pool.close().await
    }
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls back.
pub struct Tx {
    tx: sqlx::Transaction<'static, Any>,
    _writer: Option<OwnedMutexGuard<()>>,
    db: Db,
}

impl Tx {
    /// The connection to run statements on.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// Commits, then wakes the outbox relay.
    pub async fn commit(self) -> Result<()> {
        let Tx { tx, _writer, db } = self;
        tx.commit().await?;
        drop(_writer);
        db.inner.committed.notify_one();
        db.inner.commits.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    /// Rolls back now (dropping a `Tx` rolls back too, but only once the connection is next used),
    /// so what the transaction locked is free before the caller goes on.
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}
