//! Named leases that elect one holder across instances for singleton work: the waiting-room
//! admitter today; cron ticks and consumers next.
//!
//! A lease is granted when it is free, expired, or already held by the asker (then renewed). The
//! deadline is stored and compared with the caller's `now`, never with Redis time or key TTLs, so
//! every instance and the in-process implementation agree and tests can move time. On Redis the key
//! also gets a generous TTL ([`LEASE_GRACE_MS`] past the deadline) purely so that an abandoned
//! lease does not linger forever.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use redis::Script;

use super::redis::RedisLive;
use super::LiveError;

/// How long past its deadline Redis keeps a lease key. Far longer than any clock skew between
/// instances, so it never decides who holds a lease; it only garbage-collects forgotten ones.
const LEASE_GRACE_MS: i64 = 60_000;

/// One holder at a time per name.
#[async_trait]
pub trait Lease: Send + Sync {
    /// Takes (or renews) the lease `name` for `holder` until `now + ttl_ms`. Returns whether
    /// `holder` holds it now.
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<bool, LiveError>;
    /// Gives the lease up if `holder` holds it, so another instance takes over at once.
    async fn release(&self, name: &str, holder: &str) -> Result<(), LiveError>;
}

struct Held {
    holder: String,
    until: i64,
}

/// In-process leases (one instance: the holder is always this process).
#[derive(Default)]
pub struct MemoryLease {
    leases: Mutex<HashMap<String, Held>>,
}

#[async_trait]
impl Lease for MemoryLease {
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<bool, LiveError> {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let free = leases
            .get(name)
            .is_none_or(|l| l.holder == holder || l.until <= now);
        if free {
            leases.insert(
                name.to_owned(),
                Held {
                    holder: holder.to_owned(),
                    until: now.saturating_add(ttl_ms),
                },
            );
        }
        Ok(free)
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), LiveError> {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if leases.get(name).is_some_and(|l| l.holder == holder) {
            leases.remove(name);
        }
        Ok(())
    }
}

/// KEYS: lease. ARGV: holder, now, until, key ttl. A hash {holder, until}. Returns 1 when granted.
const ACQUIRE: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'holder', 'until')
local deadline = tonumber(cur[2])
if cur[1] == false or cur[1] == ARGV[1] or not deadline or deadline <= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'until', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
return 0
";

/// KEYS: lease. ARGV: holder.
const RELEASE: &str = r"
if redis.call('HGET', KEYS[1], 'holder') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
";

/// Leases in Redis, shared by every instance; each step is one Lua script, so atomic.
pub struct RedisLease {
    live: RedisLive,
    acquire: Script,
    release: Script,
}

impl RedisLease {
    pub fn new(live: RedisLive) -> Self {
        Self {
            live,
            acquire: Script::new(ACQUIRE),
            release: Script::new(RELEASE),
        }
    }
}

#[async_trait]
impl Lease for RedisLease {
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<bool, LiveError> {
        let mut con = self.live.manager();
        let granted: i64 = self
            .acquire
            .key(self.live.key("lease", name))
            .arg(holder)
            .arg(now)
            .arg(now.saturating_add(ttl_ms))
            .arg(ttl_ms.max(1).saturating_add(LEASE_GRACE_MS))
            .invoke_async(&mut con)
            .await?;
        Ok(granted == 1)
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), LiveError> {
        let mut con = self.live.manager();
        let () = self
            .release
            .key(self.live.key("lease", name))
            .arg(holder)
            .invoke_async(&mut con)
            .await?;
        Ok(())
    }
}
