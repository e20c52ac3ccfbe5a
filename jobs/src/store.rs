//! Where jobs are kept: apalis on SQLite (its own file beside gonggu's, so apalis's migrations,
//! which use sqlx's default `_sqlx_migrations` table, and its pragmas, `synchronous = OFF` among
//! them, never touch gonggu's database) in the embedded default, or apalis on PostgreSQL (its own
//! schema `apalis`, with its migrations recorded there) when scaled out.
//!
//! Every queue name starts with a prefix (the Redis prefix, `gonggu` by default), so deployments
//! or parallel tests sharing one PostgreSQL never take each other's jobs.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

use crate::job::Job;
use crate::tally::{Outcome, Tally};

/// Where the job tables are.
#[derive(Clone, Debug)]
pub enum Location {
    /// A SQLite file of its own (`jobs.db` in the data folder).
    Sqlite(PathBuf),
    /// The PostgreSQL database gonggu uses (`DATABASE_URL`); apalis keeps to schema `apalis`.
    Postgres(String),
}

/// How much longer than other finished jobs a nightly import's job is kept (36 days in all).
const NIGHTLY_KEEP_SECS: i64 = 29 * 24 * 3600;

/// Attempts of a job before it is kept as dead (`Failed`, visible and retryable).
pub const MAX_ATTEMPTS: usize = 5;

/// How often an idle worker looks for due jobs, and a worker's heartbeat: a job held by a worker
/// that died is taken over after `HEARTBEAT * MISSED_HEARTBEATS`.
pub const POLL: Duration = Duration::from_millis(200);
pub const HEARTBEAT: Duration = Duration::from_secs(5);
pub const MISSED_HEARTBEATS: usize = 3;

/// A job's state as operators see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Due, waiting for a worker.
    Pending,
    /// Waiting for its time.
    Scheduled,
    Running,
    Done,
    /// Failed; will be tried again.
    Failed,
    /// Used its attempts (or was aborted): kept, retryable by an operator.
    Dead,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Pending,
        JobState::Scheduled,
        JobState::Running,
        JobState::Done,
        JobState::Failed,
        JobState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Scheduled => "scheduled",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// The SQL of a job's [`JobState`] (`$NOW` is the time in unix seconds).
fn state_sql(run_at: &str) -> String {
    format!(
        "CASE WHEN status = 'Pending' AND {run_at} > $NOW THEN 'scheduled' \
         WHEN status IN ('Pending', 'Queued') THEN 'pending' \
         WHEN status = 'Running' THEN 'running' WHEN status = 'Done' THEN 'done' \
         WHEN status = 'Killed' OR attempts >= max_attempts THEN 'dead' ELSE 'failed' END"
    )
}

/// A job as the operators' listing shows it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub idempotency_key: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    /// When it is (or was) due, unix seconds.
    pub run_at: i64,
    pub done_at: Option<i64>,
    /// The last outcome as apalis records it (`{"Err": "…"}` after a failure).
    pub last_result: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("jobs database error")]
    Database(#[from] sqlx::Error),
    #[error("jobs storage error: {0}")]
    Storage(String),
}

/// Runs `$body` with the pool and queue of whichever backend `$store` is: the same query code,
/// compiled once per driver.
macro_rules! on_pool {
    ($store:expr, $pool:ident, $queue:ident => $body:expr) => {
        match $store {
            JobStore::Sqlite {
                pool: $pool,
                queue: $queue,
                ..
            } => $body,
            JobStore::Postgres {
                pool: $pool,
                queue: $queue,
                ..
            } => $body,
        }
    };
}

/// The job tables, on one backend or the other.
#[derive(Clone, Debug)]
pub enum JobStore {
    Sqlite {
        pool: SqlitePool,
        queue: String,
        tally: Arc<Tally>,
    },
    Postgres {
        pool: PgPool,
        queue: String,
        tally: Arc<Tally>,
    },
}

/// Index statistics for apalis's SQLite job table (rows, then rows per distinct key prefix).
///
/// apalis locks and acknowledges jobs by `id IN (SELECT value FROM json_each(?))`. Without
/// statistics SQLite answers the acknowledgement through the `lock_by` index (every job the worker
/// ever finished keeps its name) and the lock through the `status` index (every pending job): each
/// is a scan, so a backlog ran quadratically (20,000 queued no-op jobs at 119 jobs/s, against
/// 413 jobs/s for 5,000). These say what is true of the table: `id` is unique, while a worker
/// name or a status matches many rows; the planner then takes the `id` index for both.
const SQLITE_STATS: &[(&str, &str)] = &[
    ("sqlite_autoindex_Jobs_1", "100000 1"),
    ("LIdx", "100000 20000"),
    ("idx_jobs_status_run_at", "100000 20000 2"),
    ("idx_jobs_claimable", "100000 20000 5"),
    ("idx_jobs_job_type_status_run_at", "100000 50000 20000 2"),
    ("idx_jobs_idempotency_key", "100000 50000 1"),
];

/// Writes [`SQLITE_STATS`] into the job file's `sqlite_stat1` and makes SQLite load them. The job
/// tables have a file of their own, so gonggu's tables keep their own plans.
async fn steer_sqlite_planner(pool: &SqlitePool) -> Result<(), JobsError> {
    let mut conn = pool.acquire().await?;
    // `ANALYZE` of an empty schema object creates `sqlite_stat1`; the limit keeps it quick on a
    // large existing file (its figures for the job indexes are replaced below).
    sqlx::query("PRAGMA analysis_limit = 400")
        .execute(&mut *conn)
        .await?;
    sqlx::query("ANALYZE Workers").execute(&mut *conn).await?;
    for (index, stat) in SQLITE_STATS {
        // `sqlite_stat1` has no key: replace by hand, or every start would add rows.
        sqlx::query("DELETE FROM sqlite_stat1 WHERE tbl = 'Jobs' AND idx = $1")
            .bind(index)
            .execute(&mut *conn)
            .await?;
        sqlx::query("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('Jobs', $1, $2)")
            .bind(index)
            .bind(stat)
            .execute(&mut *conn)
            .await?;
    }
    // Reloads the statistics (and changes the schema version, so every connection reloads).
    sqlx::query("ANALYZE sqlite_schema")
        .execute(&mut *conn)
        .await?;
    Ok(())
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
                steer_sqlite_planner(&pool).await?;
                Ok(JobStore::Sqlite {
                    pool,
                    queue,
                    tally: Arc::default(),
                })
            }
            Location::Postgres(url) => {
                // Named by queue, so operators (and tests) can tell the job runtime's
                // connections from the API's in `pg_stat_activity`.
                let options = PgConnectOptions::from_str(url)?
                    .application_name(&Self::application_name(&queue));
                let pool = PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                PostgresStorage::setup(&pool)
                    .await
                    .map_err(|e| JobsError::Storage(e.to_string()))?;
                Ok(JobStore::Postgres {
                    pool,
                    queue,
                    tally: Arc::default(),
                })
            }
        }
    }

    /// What this process enqueued and ran, per kind.
    pub fn tally(&self) -> &Arc<Tally> {
        match self {
            JobStore::Sqlite { tally, .. } | JobStore::Postgres { tally, .. } => tally,
        }
    }

    /// The `application_name` of the job runtime's PostgreSQL connections (PostgreSQL keeps 63
    /// bytes of it).
    pub fn application_name(queue: &str) -> String {
        let mut name = format!("gonggu-jobs {queue}");
        while name.len() > 63 {
            name.pop();
        }
        name
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
        let added = match self {
            JobStore::Sqlite { pool, queue, .. } => {
                // SQLite's insert ignores a known key (`ON CONFLICT DO NOTHING`) without saying
                // so; looking first tells the count, and skips the write for a job already there
                // (the embedded default has one pusher per kind, so the look cannot race).
                let known: Option<i64> = sqlx::query_scalar(
                    "SELECT 1 FROM Jobs WHERE job_type = $1 AND idempotency_key = $2",
                )
                .bind(queue.as_str())
                .bind(job.key())
                .fetch_optional(pool)
                .await?;
                if known.is_none() {
                    let mut storage =
                        SqliteStorage::<Job>::new(pool).with_config(Self::sqlite_config(queue));
                    storage
                        .push_task(task)
                        .await
                        .map_err(|e| JobsError::Storage(e.to_string()))?;
                }
                known.is_none()
            }
            JobStore::Postgres { pool, queue, .. } => {
                let mut storage =
                    PostgresStorage::<Job>::new(pool).with_config(Self::postgres_config(queue));
                match storage.push_task(task).await {
                    Ok(()) => true,
                    // PostgreSQL's insert refuses a known key with the unique index's violation:
                    // the job is there already, which is what the caller wants.
                    Err(e) if e.to_string().contains("idx_jobs_idempotency_key") => false,
                    Err(e) => return Err(JobsError::Storage(e.to_string())),
                }
            }
        };
        if added {
            self.tally().add(job.kind(), Outcome::Enqueued);
        }
        Ok(())
    }

    /// Jobs of this queue per (kind, state), for `/metrics`, and the age in seconds of the oldest
    /// job that is due and waiting (0 when none).
    pub async fn counts(
        &self,
        now_secs: i64,
    ) -> Result<(Vec<(String, String, i64)>, i64), JobsError> {
        let (kind, run_at) = self.dialect_exprs();
        let state = state_sql(run_at);
        let table = self.table();
        let counts_sql = format!(
            "SELECT {kind} AS kind, {state} AS state, COUNT(*) FROM {table} \
             WHERE job_type = $1 GROUP BY 1, 2"
        );
        let oldest_sql = format!(
            "SELECT MIN({run_at}) FROM {table} WHERE job_type = $1 \
             AND status = 'Pending' AND {run_at} <= $2"
        );
        let counts_sql = counts_sql.replace("$NOW", "$2");
        let (rows, oldest): (Vec<(String, String, i64)>, Option<i64>) = on_pool!(self, pool, queue => (
            sqlx::query_as(sqlx::AssertSqlSafe(counts_sql))
                .bind(queue)
                .bind(now_secs)
                .fetch_all(pool)
                .await?,
            sqlx::query_scalar(sqlx::AssertSqlSafe(oldest_sql))
                .bind(queue)
                .bind(now_secs)
                .fetch_one(pool)
                .await?,
        ));
        Ok((rows, oldest.map_or(0, |t| (now_secs - t).max(0))))
    }

    /// A page of this queue's jobs, newest first, in `state` and of `kind` when given, before the
    /// job id `before` (ids are ULIDs: they sort by creation).
    pub async fn list(
        &self,
        state: Option<JobState>,
        kind: Option<&str>,
        before: Option<&str>,
        limit: i64,
        now_secs: i64,
    ) -> Result<Vec<JobRow>, JobsError> {
        let (kind_expr, run_at) = self.dialect_exprs();
        let state_expr = state_sql(run_at);
        let (done_at, last) = match self {
            JobStore::Sqlite { .. } => ("done_at", "last_result"),
            JobStore::Postgres { .. } => (
                "CAST(EXTRACT(EPOCH FROM done_at) AS BIGINT)",
                "CAST(last_result AS TEXT)",
            ),
        };
        let table = self.table();
        let sql = format!(
            "SELECT id, {kind_expr} AS kind, idempotency_key, {state_expr} AS state, \
             CAST(attempts AS BIGINT) AS attempts, CAST(max_attempts AS BIGINT) AS max_attempts, \
             {run_at} AS run_at, \
             {done_at} AS done_at, {last} AS last_result FROM {table} \
             WHERE job_type = $1 AND ($3 = '' OR {state_expr} = $3) \
             AND ($4 = '' OR {kind_expr} = $4) AND ($5 = '' OR id < $5) \
             ORDER BY id DESC LIMIT $6"
        )
        .replace("$NOW", "$2");
        let state = state.map(JobState::as_str).unwrap_or_default();
        let rows: Vec<JobRow> = on_pool!(self, pool, queue => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(queue)
                .bind(now_secs)
                .bind(state)
                .bind(kind.unwrap_or_default())
                .bind(before.unwrap_or_default())
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Puts a failed or dead job back in the queue with its attempts reset (apalis 1.0 has no call
    /// for it). `false` when no such job is failed or dead.
    pub async fn retry(&self, id: &str) -> Result<bool, JobsError> {
        let now = match self {
            JobStore::Sqlite { .. } => "strftime('%s', 'now')",
            JobStore::Postgres { .. } => "now()",
        };
        let sql = format!(
            "UPDATE {} SET status = 'Pending', attempts = 0, run_at = {now}, done_at = NULL, \
             lock_by = NULL, lock_at = NULL \
             WHERE job_type = $1 AND id = $2 AND status IN ('Failed', 'Killed')",
            self.table()
        );
        let done = on_pool!(self, pool, queue => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(queue)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// Puts back in the queue the jobs `worker` fetched but never started (apalis marks them
    /// `Queued` under the worker's lock, and a stopped worker would otherwise hold them until the
    /// dead-worker timeout). Returns how many.
    pub async fn release(&self, worker: &str) -> Result<u64, JobsError> {
        let sql = format!(
            "UPDATE {} SET status = 'Pending', lock_by = NULL, lock_at = NULL \
             WHERE job_type = $1 AND lock_by = $2 AND status = 'Queued'",
            self.table()
        );
        let released = on_pool!(self, pool, queue => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(queue)
                .bind(worker)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(released)
    }

    /// Deletes jobs that finished (done, or dead) before `before_secs`. A nightly import's job is
    /// kept 36 days: the sweeper pushes the latest tick of the last 35 days again after a restart,
    /// and its key must still be there to say that tick ran. Returns how many.
    pub async fn prune_finished(&self, before_secs: i64) -> Result<u64, JobsError> {
        let done = match self {
            JobStore::Sqlite { pool, queue, .. } => {
                sqlx::query(
                    "DELETE FROM Jobs WHERE job_type = $1 AND done_at IS NOT NULL AND done_at < $2 \
                     AND (status = 'Done' OR status = 'Killed' OR attempts >= max_attempts) \
                     AND (COALESCE(idempotency_key, '') NOT LIKE 'ingest:%' OR done_at < $3)",
                )
                .bind(queue)
                .bind(before_secs)
                .bind(before_secs - NIGHTLY_KEEP_SECS)
                .execute(pool)
                .await?
                .rows_affected()
            }
            JobStore::Postgres { pool, queue, .. } => {
                sqlx::query(
                    "DELETE FROM apalis.jobs WHERE job_type = $1 AND done_at IS NOT NULL \
                     AND done_at < to_timestamp($2) \
                     AND (status = 'Done' OR status = 'Killed' OR attempts >= max_attempts) \
                     AND (COALESCE(idempotency_key, '') NOT LIKE 'ingest:%' OR done_at < to_timestamp($3))",
                )
                .bind(queue)
                .bind(before_secs as f64)
                .bind((before_secs - NIGHTLY_KEEP_SECS) as f64)
                .execute(pool)
                .await?
                .rows_affected()
            }
        };
        Ok(done)
    }

    fn table(&self) -> &'static str {
        match self {
            JobStore::Sqlite { .. } => "Jobs",
            JobStore::Postgres { .. } => "apalis.jobs",
        }
    }

    /// The job's kind (from its JSON) and its due time in unix seconds, per dialect.
    fn dialect_exprs(&self) -> (&'static str, &'static str) {
        match self {
            JobStore::Sqlite { .. } => (
                "COALESCE(json_extract(CAST(job AS TEXT), '$.kind'), '')",
                "run_at",
            ),
            JobStore::Postgres { .. } => (
                "COALESCE(CAST(convert_from(job, 'UTF8') AS jsonb) ->> 'kind', '')",
                "CAST(EXTRACT(EPOCH FROM run_at) AS BIGINT)",
            ),
        }
    }

    /// The stored jobs of this queue whose key starts with `prefix`, as (key, status): for tests
    /// and operators' questions such as "how many completion jobs does party 7 have".
    pub async fn keys(&self, prefix: &str) -> Result<Vec<(String, String)>, JobsError> {
        let like = format!("{prefix}%");
        let sql = format!(
            "SELECT idempotency_key, status FROM {} WHERE job_type = $1 \
             AND idempotency_key LIKE $2 ORDER BY idempotency_key",
            self.table()
        );
        let rows = on_pool!(self, pool, queue => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(queue)
                .bind(like)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    pub async fn close(&self) {
        on_pool!(self, pool, _queue => pool.close().await)
    }
}
