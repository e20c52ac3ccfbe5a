//! Presence: who has a live connection in a room (a party's chat), across instances.
//!
//! Each connection marks itself present until a deadline and renews it with a heartbeat; a clean
//! close removes it at once, and one whose instance died without closing drops out when its
//! deadline passes. As with leases, deadlines are stored and compared with the caller's `now`, never
//! with Redis time or key TTLs, so instances and the in-process implementation agree and tests can
//! move time. On Redis a room is a sorted set of `user:connection` scored by deadline; the key gets a
//! TTL ([`ROOM_GRACE_MS`] past the last deadline) only so that an abandoned room does not linger.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use redis::Script;

use super::redis::RedisLive;
use super::LiveError;

/// How long past the last deadline Redis keeps a room's key (garbage collection only).
const ROOM_GRACE_MS: i64 = 60_000;

/// Live connections per room and user.
#[async_trait]
pub trait Presence: Send + Sync {
    /// Marks connection `conn` of `user_id` present in `room` until `now + ttl_ms` (called again by
    /// the heartbeat to renew it).
    async fn beat(
        &self,
        room: &str,
        user_id: i64,
        conn: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<(), LiveError>;
    /// Removes the connection (a clean close).
    async fn leave(&self, room: &str, user_id: i64, conn: &str) -> Result<(), LiveError>;
    /// The users with at least one connection in `room` whose deadline is after `now`, ascending.
    async fn online(&self, room: &str, now: i64) -> Result<Vec<i64>, LiveError>;
}

/// One room's connections: (user, connection) → deadline.
type Connections = HashMap<(i64, String), i64>;

/// In-process presence (one instance).
#[derive(Default)]
pub struct MemoryPresence {
    rooms: Mutex<HashMap<String, Connections>>,
}

#[async_trait]
impl Presence for MemoryPresence {
    async fn beat(
        &self,
        room: &str,
        user_id: i64,
        conn: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<(), LiveError> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let members = rooms.entry(room.to_owned()).or_default();
        // Expired entries go as they are noticed, so a room of dead connections stays small.
        members.retain(|_, until| *until > now);
        members.insert((user_id, conn.to_owned()), now.saturating_add(ttl_ms));
        Ok(())
    }

    async fn leave(&self, room: &str, user_id: i64, conn: &str) -> Result<(), LiveError> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(members) = rooms.get_mut(room) {
            members.remove(&(user_id, conn.to_owned()));
            if members.is_empty() {
                rooms.remove(room);
            }
        }
        Ok(())
    }

    async fn online(&self, room: &str, now: i64) -> Result<Vec<i64>, LiveError> {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let users: BTreeSet<i64> = rooms
            .get(room)
            .into_iter()
            .flatten()
            .filter(|(_, until)| **until > now)
            .map(|((user, _), _)| *user)
            .collect();
        Ok(users.into_iter().collect())
    }
}

/// KEYS: room. ARGV: member, now, until, key ttl.
const BEAT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
";

/// Presence in Redis sorted sets, shared by every instance.
pub struct RedisPresence {
    live: RedisLive,
    beat: Script,
}

impl RedisPresence {
    pub fn new(live: RedisLive) -> Self {
        Self {
            live,
            beat: Script::new(BEAT),
        }
    }

    fn key(&self, room: &str) -> String {
        self.live.key("presence", room)
    }
}

fn member(user_id: i64, conn: &str) -> String {
    format!("{user_id}:{conn}")
}

#[async_trait]
impl Presence for RedisPresence {
    async fn beat(
        &self,
        room: &str,
        user_id: i64,
        conn: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<(), LiveError> {
        let mut con = self.live.manager();
        let () = self
            .beat
            .key(self.key(room))
            .arg(member(user_id, conn))
            .arg(now)
            .arg(now.saturating_add(ttl_ms))
            .arg(ttl_ms.max(1).saturating_add(ROOM_GRACE_MS))
            .invoke_async(&mut con)
            .await?;
        Ok(())
    }

    async fn leave(&self, room: &str, user_id: i64, conn: &str) -> Result<(), LiveError> {
        let mut con = self.live.manager();
        let _: i64 = redis::cmd("ZREM")
            .arg(self.key(room))
            .arg(member(user_id, conn))
            .query_async(&mut con)
            .await?;
        Ok(())
    }

    async fn online(&self, room: &str, now: i64) -> Result<Vec<i64>, LiveError> {
        let mut con = self.live.manager();
        // `(now`: deadlines strictly after now, as the in-process implementation counts them.
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.key(room))
            .arg(format!("({now}"))
            .arg("+inf")
            .arg("BYSCORE")
            .query_async(&mut con)
            .await?;
        let users: BTreeSet<i64> = members
            .iter()
            .filter_map(|m| m.split_once(':')?.0.parse().ok())
            .collect();
        Ok(users.into_iter().collect())
    }
}
