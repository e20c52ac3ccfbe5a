//! Live state on Redis, shared by every instance of a scale-out deployment.
//!
//! Commands go through a [`ConnectionManager`], which reconnects by itself. Bus messages arrive on
//! one dedicated pub/sub connection per process that pattern-subscribes to the deployment's prefix
//! and fans out locally; when that connection drops, it is re-established and every local
//! subscriber is told it may have missed messages ([`super::BusMessage::Gap`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use redis::aio::{ConnectionManager, PubSub};
use redis::{AsyncCommands, Client, ConnectionAddr, Script};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Bus, Cache, Fanout, LiveError, RateDecision, RateLimiter, Subscription};

/// A connection to Redis and the key prefix of this deployment.
#[derive(Clone)]
pub struct RedisLive {
    client: Client,
    manager: ConnectionManager,
    prefix: String,
}

impl RedisLive {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, LiveError> {
        let client = Client::open(url)?;
        let manager = client.get_connection_manager().await?;
        Ok(Self {
            client,
            manager,
            prefix: prefix.to_owned(),
        })
    }

    pub async fn ping(&self) -> Result<(), LiveError> {
        let mut con = self.manager.clone();
        let _: String = redis::cmd("PING").query_async(&mut con).await?;
        Ok(())
    }

    /// A connection for other Redis-backed state (waiting rooms, presence) to share.
    pub fn manager(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// Prefixes `key` with this deployment's namespace.
    pub fn key(&self, kind: &str, key: &str) -> String {
        format!("{}:{kind}:{key}", self.prefix)
    }

    /// Starts the bus: returns once the pub/sub connection is subscribed, so nothing published
    /// after this returns can be missed.
    pub async fn bus(&self) -> Result<RedisBus, LiveError> {
        let fanout = Arc::new(Fanout::default());
        let local_addr = Arc::new(Mutex::new(None));
        let channel_prefix = self.key("bus", "");
        let pattern = format!("{}*", escape_glob(&channel_prefix));
        let (ready_tx, ready_rx) = oneshot::channel();
        let reader = tokio::spawn(read_loop(
            self.client.clone(),
            pattern,
            channel_prefix.clone(),
            fanout.clone(),
            local_addr.clone(),
            ready_tx,
        ));
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                reader.abort();
                return Err(err);
            }
            Err(_) => {
                return Err(LiveError::Redis(redis::RedisError::from((
                    redis::ErrorKind::IoError,
                    "bus reader stopped before subscribing",
                ))))
            }
        }
        Ok(RedisBus {
            manager: self.manager.clone(),
            channel_prefix,
            fanout,
            local_addr,
            reader,
        })
    }

    pub fn cache(&self) -> RedisCache {
        RedisCache { live: self.clone() }
    }

    pub fn limiter(&self) -> RedisRateLimiter {
        RedisRateLimiter {
            live: self.clone(),
            script: Script::new(RATE_SCRIPT),
        }
    }
}

/// Escapes the glob characters of a Redis pattern.
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Opens a pub/sub connection. Over plain TCP the socket is opened here so its local address is
/// known: operators (and the reconnect test) can find this exact client in `CLIENT LIST`.
async fn open_pubsub(client: &Client) -> Result<(PubSub, Option<SocketAddr>), LiveError> {
    let info = client.get_connection_info();
    if let ConnectionAddr::Tcp(host, port) = &info.addr {
        let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
            .await
            .map_err(redis::RedisError::from)?;
        let addr = stream.local_addr().ok();
        let pubsub = PubSub::new(&info.redis, stream).await?;
        Ok((pubsub, addr))
    } else {
        Ok((client.get_async_pubsub().await?, None))
    }
}

async fn read_loop(
    client: Client,
    pattern: String,
    channel_prefix: String,
    fanout: Arc<Fanout>,
    local_addr: Arc<Mutex<Option<SocketAddr>>>,
    ready: oneshot::Sender<Result<(), LiveError>>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(50);
    loop {
        let subscribed = async {
            let (mut pubsub, addr) = open_pubsub(&client).await?;
            pubsub.psubscribe(&pattern).await?;
            Ok::<_, LiveError>((pubsub, addr))
        }
        .await;
        let (pubsub, addr) = match subscribed {
            Ok(ok) => ok,
            Err(err) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(err));
                    return;
                }
                tracing::warn!(error = %err, "redis bus: reconnect failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        *local_addr.lock().unwrap_or_else(|e| e.into_inner()) = addr;
        match ready.take() {
            Some(ready) => {
                let _ = ready.send(Ok(()));
            }
            // Subscribed again after a drop: whatever was published meanwhile is lost to us.
            None => {
                tracing::info!("redis bus: resubscribed after a dropped connection");
                fanout.gap_all();
            }
        }
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let channel = msg.get_channel_name();
            if let Some(topic) = channel.strip_prefix(&channel_prefix) {
                fanout.deliver(topic, Bytes::copy_from_slice(msg.get_payload_bytes()));
            }
        }
        tracing::warn!("redis bus: pub/sub connection closed; reconnecting");
    }
}

/// The bus on Redis pub/sub.
pub struct RedisBus {
    manager: ConnectionManager,
    channel_prefix: String,
    fanout: Arc<Fanout>,
    local_addr: Arc<Mutex<Option<SocketAddr>>>,
    reader: JoinHandle<()>,
}

impl RedisBus {
    /// Local address of the current pub/sub connection (plain TCP only).
    pub fn pubsub_local_addr(&self) -> Option<SocketAddr> {
        *self.local_addr.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), LiveError> {
        let mut con = self.manager.clone();
        let channel = format!("{}{topic}", self.channel_prefix);
        let _: i64 = con.publish(channel, payload).await?;
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, LiveError> {
        Ok(self.fanout.subscribe(topic))
    }

    /// Pipelined: one round trip per [`PUBLISH_PIPELINE`] messages.
    async fn publish_all(&self, messages: &[(String, Vec<u8>)]) -> Result<(), LiveError> {
        let mut con = self.manager.clone();
        for chunk in messages.chunks(PUBLISH_PIPELINE) {
            let mut pipe = redis::pipe();
            for (topic, payload) in chunk {
                pipe.publish(
                    format!("{}{topic}", self.channel_prefix),
                    payload.as_slice(),
                )
                .ignore();
            }
            let () = pipe.query_async(&mut con).await?;
        }
        Ok(())
    }
}

/// Messages per pipeline in [`RedisBus::publish_all`].
const PUBLISH_PIPELINE: usize = 500;

/// The cache on Redis strings with expiry.
pub struct RedisCache {
    live: RedisLive,
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, LiveError> {
        let mut con = self.live.manager();
        let value: Option<Vec<u8>> = con.get(self.live.key("cache", key)).await?;
        Ok(value.map(Bytes::from))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), LiveError> {
        let mut con = self.live.manager();
        let ms = ttl.as_millis().max(1) as u64;
        let _: () = con.pset_ex(self.live.key("cache", key), value, ms).await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), LiveError> {
        let mut con = self.live.manager();
        let _: i64 = con.del(self.live.key("cache", key)).await?;
        Ok(())
    }

    async fn take(&self, key: &str) -> Result<Option<Bytes>, LiveError> {
        let mut con = self.live.manager();
        // GETDEL (Redis 6.2+): one command, so two takers cannot both read the value.
        let value: Option<Vec<u8>> = redis::cmd("GETDEL")
            .arg(self.live.key("cache", key))
            .query_async(&mut con)
            .await?;
        Ok(value.map(Bytes::from))
    }

    async fn incr(&self, key: &str) -> Result<i64, LiveError> {
        let mut con = self.live.manager();
        Ok(con.incr(self.live.key("cache", key), 1).await?)
    }
}

/// Counts an attempt and starts the window on the first one, atomically.
const RATE_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// Fixed-window rate limiting on Redis counters.
pub struct RedisRateLimiter {
    live: RedisLive,
    script: Script,
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
    ) -> Result<RateDecision, LiveError> {
        let mut con = self.live.manager();
        let (count, ttl): (u64, i64) = self
            .script
            .key(self.live.key("rate", key))
            .arg(window.as_millis().max(1) as u64)
            .invoke_async(&mut con)
            .await?;
        Ok(RateDecision {
            allowed: count <= limit,
            count,
            retry_after: Duration::from_millis(ttl.max(0) as u64),
        })
    }
}
