//! Live state: what must be shared between API instances but is not the system of record.
//!
//! Each concern is one trait with an in-process implementation (embedded default) and a Redis one
//! (scale-out). Both pass the same contract tests (`store/tests/live_contract.rs`).

mod fanout;
pub mod lease;
pub mod memory;
pub mod presence;
pub mod queue;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;

pub use fanout::Fanout;
pub use lease::Lease;
pub use presence::Presence;
pub use queue::{AdmitOutcome, Entered, QueueSpot, RoomCounts, WaitingRoom, GONE_TTL_MS};

/// A failure of a live-state backend.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("redis error")]
    Redis(#[from] ::redis::RedisError),
}

impl From<LiveError> for crate::Error {
    fn from(err: LiveError) -> Self {
        match err {
            LiveError::Redis(e) => crate::Error::Redis(e),
        }
    }
}

/// What a subscriber receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusMessage {
    /// One published payload.
    Payload(Bytes),
    /// Messages may have been missed (the subscriber lagged, or the Redis connection dropped and was
    /// re-established). Consumers that keep derived state must resync it from SQL.
    Gap,
}

/// A subscription to one topic. Dropping it unsubscribes.
pub struct Subscription {
    rx: broadcast::Receiver<BusMessage>,
}

impl Subscription {
    fn new(rx: broadcast::Receiver<BusMessage>) -> Self {
        Self { rx }
    }

    /// The next message; `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<BusMessage> {
        match self.rx.recv().await {
            Ok(msg) => Some(msg),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(BusMessage::Gap),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// Topic publish/subscribe, fire and forget: a message reaches the subscribers present when it is
/// published, on every instance. Durable delivery is the outbox's job, not the bus's.
#[async_trait]
pub trait Bus: Send + Sync {
    async fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), LiveError>;
    /// Publishes each `(topic, payload)` in order; stops at the first failure. A fan-out of one
    /// event (thousands of users' topics) goes out in a few round trips where the bus allows it.
    async fn publish_all(&self, messages: &[(String, Vec<u8>)]) -> Result<(), LiveError> {
        for (topic, payload) in messages {
            self.publish(topic, payload).await?;
        }
        Ok(())
    }
    /// Subscribes to `topic`; messages published after this returns are delivered.
    async fn subscribe(&self, topic: &str) -> Result<Subscription, LiveError>;
}

/// A key-value cache whose entries expire.
#[async_trait]
pub trait Cache: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, LiveError>;
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), LiveError>;
    async fn delete(&self, key: &str) -> Result<(), LiveError>;
    /// Gets and deletes in one step: of concurrent takers of one key, exactly one gets the value
    /// (single-use tokens).
    async fn take(&self, key: &str) -> Result<Option<Bytes>, LiveError>;
    /// Adds one to a counter that never expires and returns the new value (starting from 1).
    /// Used as a generation number so one bump invalidates a whole family of cached entries.
    async fn incr(&self, key: &str) -> Result<i64, LiveError>;
}

/// Outcome of a rate-limited attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Attempts counted in the current window, this one included.
    pub count: u64,
    /// Time until the window resets.
    pub retry_after: Duration,
}

/// Fixed-window attempt counters: at most `limit` attempts per `window` for a key.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    async fn hit(&self, key: &str, limit: u64, window: Duration)
        -> Result<RateDecision, LiveError>;
}

/// The live-state backends of one process, chosen from configuration.
#[derive(Clone)]
pub struct Live {
    pub bus: Arc<dyn Bus>,
    pub cache: Arc<dyn Cache>,
    pub limiter: Arc<dyn RateLimiter>,
    /// Waiting rooms in front of hot group buys.
    pub queue: Arc<dyn WaitingRoom>,
    /// Named leases electing one instance for singleton work.
    pub lease: Arc<dyn Lease>,
    /// Who is connected to each chat room.
    pub presence: Arc<dyn Presence>,
    /// Set when the backends are on Redis, for readiness checks.
    pub redis: Option<redis::RedisLive>,
    /// The Redis bus itself, for tests that cut its connection.
    #[cfg(feature = "testing")]
    pub redis_bus: Option<Arc<redis::RedisBus>>,
}

impl Live {
    /// In-process backends for the embedded default.
    pub fn memory() -> Self {
        Self {
            bus: Arc::new(memory::MemoryBus::default()),
            cache: Arc::new(memory::MemoryCache::default()),
            limiter: Arc::new(memory::MemoryRateLimiter::default()),
            queue: Arc::new(queue::MemoryWaitingRoom::default()),
            lease: Arc::new(lease::MemoryLease::default()),
            presence: Arc::new(presence::MemoryPresence::default()),
            redis: None,
            #[cfg(feature = "testing")]
            redis_bus: None,
        }
    }

    /// Redis backends; every key and channel starts with `prefix` so several deployments (or
    /// parallel tests) can share one Redis.
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, LiveError> {
        let live = redis::RedisLive::connect(url, prefix).await?;
        let bus = Arc::new(live.bus().await?);
        Ok(Self {
            bus: bus.clone(),
            cache: Arc::new(live.cache()),
            limiter: Arc::new(live.limiter()),
            queue: Arc::new(queue::RedisWaitingRoom::new(live.clone())),
            lease: Arc::new(lease::RedisLease::new(live.clone())),
            presence: Arc::new(presence::RedisPresence::new(live.clone())),
            redis: Some(live),
            #[cfg(feature = "testing")]
            redis_bus: Some(bus),
        })
    }

    /// Checks that the backends answer.
    pub async fn ping(&self) -> Result<(), LiveError> {
        match &self.redis {
            Some(r) => r.ping().await,
            None => Ok(()),
        }
    }
}
