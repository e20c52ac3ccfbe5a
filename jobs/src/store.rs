//! Where jobs are kept: apalis on SQLite (its own file beside gonggu's, so apalis's migrations,
//! which use sqlx's default `_sqlx_migrations` table, and its pragmas, `synchronous = OFF` among
//! them, never touch gonggu's database) in the embedded default, or apalis on PostgreSQL (its own
//! schema `apalis`, with its migrations recorded there) when scaled out.
//!
//! Every queue name starts with a prefix (the Redis prefix, `gonggu` by default), so deployments
//! or parallel tests sharing one PostgreSQL never take each other's jobs.

use std::path::PathBuf;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

use crate::job::Job;

/// Where the job tables are.
#[derive(Clone, Debug)]
pub enum Location {
    /// A SQLite file of its own (`jobs.db` in the data folder).
    Sqlite(PathBuf),
    /// The PostgreSQL database gonggu uses (`DATABASE_URL`); apalis keeps to schema `apalis`.
    Postgres(String),
}

/// Attempts of a job before it is kept as dead (`Failed`, visible and retryable).
pub const MAX_ATTEMPTS: usize = 5;

/// How often an idle worker looks for due jobs, and a worker's heartbeat: a job held by a worker
/// that died is taken over after `HEARTBEAT * MISSED_HEARTBEATS`.
pub const POLL: Duration = Duration::from_millis(200);
pub const HEARTBEAT: Duration = Duration::from_secs(5);
pub const MISSED_HEARTBEATS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("jobs database error")]
    Database(#[from] sqlx::Error),
    #[error("jobs storage error: {0}")]
    Storage(String),
}

/// The job tables, on one backend or the other.
#[derive(Clone, Debug)]
pub enum JobStore {
    Sqlite { pool: SqlitePool, queue: String },
    Postgres { pool: PgPool, queue: String },
}

impl JobStore {
    /// Opens the job tables at `location` (creating and migrating them), with queue
    /// `{prefix}:jobs`.
    pub async fn open(location: &Location, prefix: &str) -> Result<Self, JobsError> {
        let queue = format!("{prefix}:jobs");
        match location {
            Location::Sqlite(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await?;
                SqliteStorage::setup(&pool)
                    .await
                    .map_err(|e| JobsError::Storage(e.to_string()))?;
                Ok(JobStore::Sqlite { pool, queue })
            }
            Location::Postgres(url) => {
                let pool = PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await?;
                PostgresStorage::setup(&pool)
                    .await
                    .map_err(|e| JobsError::Storage(e.to_string()))?;
                Ok(JobStore::Postgres { pool, queue })
            }
        }
    }

    pub fn queue(&self) -> &str {
        match self {
            JobStore::Sqlite { queue, .. } | JobStore::Postgres { queue, .. } => queue,
        }
    }

    pub(crate) fn sqlite_config(queue: &str) -> apalis_sqlite::Config {
        apalis_sqlite::Config::default()
            .queue(queue)
            .batch_size(16)
            .heartbeat_interval(HEARTBEAT)
            .missed_heartbeats(MISSED_HEARTBEATS)
    }

    pub(crate) fn postgres_config(queue: &str) -> apalis_postgres::Config {
        apalis_postgres::Config::default()
            .queue(queue)
            .batch_size(16)
            .heartbeat_interval(HEARTBEAT)
            .missed_heartbeats(MISSED_HEARTBEATS)
    }

    /// Pushes `job` under its idempotency key: a job with the same key is never stored twice.
    pub async fn push(&self, job: &Job) -> Result<(), JobsError> {
        let task = TaskBuilder::new(job.clone())
            .idempotency_key(job.key())
            .max_attempts(MAX_ATTEMPTS)
            .build();
        match self {
            JobStore::Sqlite { pool, queue } => {
                // SQLite's insert ignores a known key (`ON CONFLICT DO NOTHING`).
                let mut storage =
                    SqliteStorage::<Job>::new(pool).with_config(Self::sqlite_config(queue));
                storage
                    .push_task(task)
                    .await
                    .map_err(|e| JobsError::Storage(e.to_string()))
            }
            JobStore::Postgres { pool, queue } => {
                let mut storage =
                    PostgresStorage::<Job>::new(pool).with_config(Self::postgres_config(queue));
                match storage.push_task(task).await {
                    Ok(()) => Ok(()),
                    // PostgreSQL's insert refuses a known key with the unique index's violation:
                    // the job is there already, which is what the caller wants.
                    Err(e) if e.to_string().contains("idx_jobs_idempotency_key") => Ok(()),
                    Err(e) => Err(JobsError::Storage(e.to_string())),
                }
            }
        }
    }

    /// Jobs of this queue per state, for `/metrics` and the admin listing: pending (due or
    /// scheduled), running, done, failed (will retry), dead (attempts used up, or aborted).
    pub async fn counts(&self) -> Result<Vec<(String, i64)>, JobsError> {
        let sql_state = "CASE WHEN status IN ('Pending', 'Queued') THEN 'pending' \
             WHEN status = 'Running' THEN 'running' WHEN status = 'Done' THEN 'done' \
             WHEN status = 'Killed' OR attempts >= max_attempts THEN 'dead' ELSE 'failed' END";
        let rows: Vec<(String, i64)> = match self {
            JobStore::Sqlite { pool, queue } => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {sql_state} AS state, COUNT(*) FROM Jobs WHERE job_type = $1 GROUP BY state"
                )))
                .bind(queue)
                .fetch_all(pool)
                .await?
            }
            JobStore::Postgres { pool, queue } => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {sql_state} AS state, COUNT(*) FROM apalis.jobs WHERE job_type = $1 GROUP BY state"
                )))
                .bind(queue)
                .fetch_all(pool)
                .await?
            }
        };
        Ok(rows)
    }

    /// The stored jobs of this queue whose key starts with `prefix`, as (key, status): for tests
    /// and operators' questions such as "how many completion jobs does party 7 have".
    pub async fn keys(&self, prefix: &str) -> Result<Vec<(String, String)>, JobsError> {
        let like = format!("{prefix}%");
        let rows = match self {
            JobStore::Sqlite { pool, queue } => {
                sqlx::query_as(
                    "SELECT idempotency_key, status FROM Jobs WHERE job_type = $1 \
                     AND idempotency_key LIKE $2 ORDER BY idempotency_key",
                )
                .bind(queue)
                .bind(like)
                .fetch_all(pool)
                .await?
            }
            JobStore::Postgres { pool, queue } => {
                sqlx::query_as(
                    "SELECT idempotency_key, status FROM apalis.jobs WHERE job_type = $1 \
                     AND idempotency_key LIKE $2 ORDER BY idempotency_key",
                )
                .bind(queue)
                .bind(like)
                .fetch_all(pool)
                .await?
            }
        };
        Ok(rows)
    }

    pub async fn close(&self) {
        match self {
            JobStore::Sqlite { pool, .. } => pool.close().await,
            JobStore::Postgres { pool, .. } => pool.close().await,
        }
    }
}
