//! gonggu's background jobs, on apalis: the party lifecycle (close or cancel at the deadline,
//! complete after the meet), penalties for no-shows, and the nightly import ([`nightly`]).
//!
//! How work becomes a job:
//! - **time-driven** steps are found by [`sweeper`] (one instance, under a lease) from the parties'
//!   own deadlines and meet times, by gonggu's clock;
//! - **event-driven** work (a penalty per attendance mark) is pushed by a durable outbox consumer
//!   ([`consumer`]), never by the request that made the change.
//!
//! Both push under idempotency keys ([`Job::key`]); handlers ([`handlers`]) re-read what they act
//! on and do nothing when it is stale. Workers ([`worker`]) run on any instance, restart with
//! backoff when their backend fails, and report their health for `/readyz`.

pub mod consumer;
pub mod handlers;
pub mod job;
pub mod nightly;
pub mod notifier;
pub mod push;
pub mod store;
pub mod sweeper;
pub mod tally;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use handlers::{Context, Settings};
pub use job::Job;
pub use store::{JobStore, JobsError, Location};
pub use worker::Health;

/// The job runtime of one process: the store it pushes to and its worker's health.
#[derive(Clone)]
pub struct Jobs {
    pub store: JobStore,
    pub health: Arc<Health>,
}

impl Jobs {
    pub async fn open(location: &Location, prefix: &str) -> Result<Self, JobsError> {
        Ok(Self {
            store: JobStore::open(location, prefix).await?,
            health: Arc::default(),
        })
    }

    /// Starts this process's share of the work until `stop`: a worker, the sweeper (working
    /// while it holds the lease) and the outbox consumer that turns events into jobs.
    pub fn start(
        &self,
        ctx: Arc<Context>,
        lease: Arc<dyn ::store::live::Lease>,
        instance: &str,
        sweep_every: Duration,
        stop: watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        let consumer = consumer::JobsConsumer::new(self.store.clone());
        vec![
            tokio::spawn(worker::supervise(
                self.store.clone(),
                ctx.clone(),
                self.health.clone(),
                format!("{}-{instance}", self.store.queue()),
                stop.clone(),
            )),
            tokio::spawn(sweeper::run(
                self.store.clone(),
                ctx.clone(),
                lease,
                instance.to_owned(),
                sweep_every,
                stop.clone(),
            )),
            tokio::spawn(::store::consumers::run(
                ctx.db.clone(),
                consumer,
                ctx.clock.clone(),
                Duration::from_millis(500),
                stop,
            )),
        ]
    }
}
