//! In-process live state for the embedded default (one instance, nothing to share).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;

use super::{Bus, Cache, Fanout, LiveError, RateDecision, RateLimiter, Subscription};

/// Entries a [`MemoryCache`] or [`MemoryRateLimiter`] holds before it sweeps out expired ones.
const SWEEP_AT: usize = 100_000;

#[derive(Default)]
pub struct MemoryBus {
    fanout: Fanout,
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), LiveError> {
        self.fanout.deliver(topic, Bytes::copy_from_slice(payload));
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, LiveError> {
        Ok(self.fanout.subscribe(topic))
    }
}

struct Entry {
    value: Bytes,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

#[derive(Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, Entry>>,
}

/// Keeps a map bounded: drops expired entries, and if that is not enough, half of the rest.
fn sweep<V>(map: &mut HashMap<String, V>, live: impl Fn(&V) -> bool) {
    if map.len() < SWEEP_AT {
        return;
    }
    map.retain(|_, v| live(v));
    if map.len() >= SWEEP_AT {
        let mut keep = false;
        map.retain(|_, _| {
            keep = !keep;
            keep
        });
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, LiveError> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Ok(entries
            .get(key)
            .filter(|e| e.live(now))
            .map(|e| e.value.clone()))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), LiveError> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        sweep(&mut entries, |e| e.live(now));
        entries.insert(
            key.to_owned(),
            Entry {
                value: Bytes::copy_from_slice(value),
                expires: Some(now + ttl),
            },
        );
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), LiveError> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(key);
        Ok(())
    }

    async fn take(&self, key: &str) -> Result<Option<Bytes>, LiveError> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Ok(entries.remove(key).filter(|e| e.live(now)).map(|e| e.value))
    }

    async fn incr(&self, key: &str) -> Result<i64, LiveError> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let current = entries
            .get(key)
            .filter(|e| e.live(now))
            .and_then(|e| std::str::from_utf8(&e.value).ok()?.parse::<i64>().ok())
            .unwrap_or(0);
        let next = current + 1;
        entries.insert(
            key.to_owned(),
            Entry {
                value: Bytes::from(next.to_string()),
                expires: None,
            },
        );
        Ok(next)
    }
}

#[derive(Default)]
pub struct MemoryRateLimiter {
    windows: Mutex<HashMap<String, (u64, Instant)>>,
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
    ) -> Result<RateDecision, LiveError> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        sweep(&mut windows, |(_, ends)| *ends > now);
        let slot = windows.entry(key.to_owned()).or_insert((0, now + window));
        if slot.1 <= now {
            *slot = (0, now + window);
        }
        slot.0 += 1;
        Ok(RateDecision {
            allowed: slot.0 <= limit,
            count: slot.0,
            retry_after: slot.1 - now,
        })
    }
}
