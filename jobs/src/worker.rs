//! The apalis worker, run under a supervisor: a worker whose backend fails (database restart,
//! network cut) returns an error from `run`, and is started again, under a new name (apalis
//! refuses a name it saw recently), after a backoff that doubles up to 30 s. The supervisor keeps
//! [`Health`] current for `/readyz`. Shutdown stops the worker: running jobs finish, and jobs it
//! fetched but had not started go back to the queue ([`JobStore::release`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use apalis::layers::retry::backoff::{ExponentialBackoffMaker, MakeBackoff};
use apalis::layers::retry::HasherRng;
use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use tokio::sync::watch;

use crate::handlers::{self, Context};
use crate::job::Job;
use crate::store::{JobStore, MAX_ATTEMPTS, POLL};
use crate::tally::{Outcome, Tally};

/// Whether this process's worker is running, for `/readyz`.
#[derive(Debug, Default)]
pub struct Health {
    up: AtomicBool,
    restarts: AtomicU64,
}

impl Health {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Times the worker was started again after its backend failed.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }
}

/// apalis 1.0's interval strategy can lose a wake-up (it replaces its timer without polling it),
/// leaving an idle worker asleep until its next heartbeat. This one re-arms its timer every time.
struct Tick(tokio::time::Interval);

impl Tick {
    fn every(period: Duration) -> Self {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Tick(interval)
    }
}

impl PollStrategy for Tick {
    fn poll_drive(
        &mut self,
        cx: &mut std::task::Context<'_>,
        _: &PollSnapshot,
    ) -> Poll<Option<()>> {
        let mut fired = false;
        while self.0.poll_tick(cx).is_ready() {
            fired = true;
        }
        if fired {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}

async fn handle(
    job: Job,
    ctx: Data<Arc<Context>>,
    tally: Data<Arc<Tally>>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    match handlers::run(&job, &ctx).await {
        Ok(()) => {
            tally.add(job.kind(), Outcome::Succeeded);
            Ok(())
        }
        Err(err) => {
            let cause = store::error::chain(&err);
            // apalis counts this attempt before the handler runs; the last one makes it dead.
            let dead = attempt.current() >= MAX_ATTEMPTS;
            tally.add(
                job.kind(),
                if dead { Outcome::Dead } else { Outcome::Failed },
            );
            tracing::warn!(job = job.kind(), key = %job.key(), attempt = attempt.current(), dead, error = %cause, "job failed");
            Err(BoxDynError::from(cause))
        }
    }
}

/// Builds the worker chain for one backend (the concrete worker types differ per backend).
macro_rules! worker {
    ($wctx:expr, $store:expr, $backend:expr, $ctx:expr) => {{
        let backoff = ExponentialBackoffMaker::new(
            Duration::from_millis(500),
            Duration::from_secs(60),
            0.2,
            HasherRng::default(),
        )
        .map_err(|e| e.to_string())?
        .make_backoff();
        WorkerBuilder::new($wctx)
            .backend($backend.poll_with_strategy(Tick::every(POLL)))
            .data($ctx.clone())
            .data($store.tally().clone())
            .concurrency(4)
            // apalis retries in the process; the row records the last outcome, and one that used
            // every attempt is kept as dead.
            .retry(RetryPolicy::retries(MAX_ATTEMPTS - 1).with_backoff(backoff))
            .build(handle)
    }};
}

/// Runs one worker until it stops or its backend fails.
async fn run_once(
    store: &JobStore,
    ctx: &Arc<Context>,
    wctx: &WorkerContext,
) -> Result<(), String> {
    match store {
        JobStore::Sqlite { pool, queue, .. } => {
            let backend =
                SqliteStorage::<Job>::new(pool).with_config(JobStore::sqlite_config(queue));
            worker!(wctx, store, backend, ctx)
                .run()
                .await
                .map_err(|e| e.to_string())
        }
        JobStore::Postgres { pool, queue, .. } => {
            let backend =
                PostgresStorage::<Job>::new(pool).with_config(JobStore::postgres_config(queue));
            worker!(wctx, store, backend, ctx)
                .run()
                .await
                .map_err(|e| e.to_string())
        }
    }
}

/// Runs workers until `stop`, restarting a failed one with backoff. `instance` names this process.
pub async fn supervise(
    store: JobStore,
    ctx: Arc<Context>,
    health: Arc<Health>,
    instance: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(250);
    for generation in 1u64.. {
        if *stop.borrow() {
            break;
        }
        let wctx = WorkerContext::new(&format!("{instance}-{generation}"));
        let stopper = wctx.clone();
        let mut stop_watch = stop.clone();
        let watcher = tokio::spawn(async move {
            let _ = stop_watch.wait_for(|s| *s).await;
            if let Err(err) = stopper.stop() {
                tracing::debug!(error = %err, "job worker already stopped");
            }
        });
        health.up.store(true, Ordering::Relaxed);
        let started = tokio::time::Instant::now();
        let outcome = run_once(&store, &ctx, &wctx).await;
        health.up.store(false, Ordering::Relaxed);
        watcher.abort();
        // Whether it stopped or failed, what it fetched and never started goes back now, for the
        // next worker (here or on another instance) to take at once.
        match store.release(wctx.name()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, worker = wctx.name(), "handed unstarted jobs back"),
            Err(err) => {
                tracing::warn!(error = %err, worker = wctx.name(), "could not hand jobs back; they return after the dead-worker timeout")
            }
        }
        if *stop.borrow() {
            break;
        }
        match outcome {
            Ok(()) => tracing::warn!("job worker stopped; starting it again"),
            Err(err) => {
                tracing::error!(error = %err, retry_in = ?backoff, "job worker's backend failed; starting it again")
            }
        }
        health.restarts.fetch_add(1, Ordering::Relaxed);
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_millis(250);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
