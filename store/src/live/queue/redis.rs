//! Waiting rooms on Redis, shared by every instance of a scale-out deployment.
//!
//! Per party, five keys (`{prefix}:queue:{party}:…`, the braces a hash tag so a cluster would keep
//! them in one slot, as a script touching several keys needs):
//! - `line`: sorted set of waiting users scored by a per-party sequence number (`seq`, INCR), so
//!   entry order is exact; wall-clock scores would tie;
//! - `seen`: hash of waiting user → last seen (ms);
//! - `admitted`: sorted set of admitted users scored by expiry (ms);
//! - `seq`: the sequence counter, deleted with `seen` whenever the line empties (Redis deletes empty
//!   sorted sets by itself), so an idle room leaves no keys behind;
//! - `gone`: sorted set of users whose turn passed (admission lapsed, or dropped as abandoned),
//!   scored by when; entries older than [`GONE_TTL_MS`] are trimmed whenever it is written, and the
//!   key expires that long after its last write.
//!
//! Every operation that changes more than one key, or reads and then writes, is one Lua script and
//! therefore atomic. Expiry is judged from the caller's `now`, never from Redis time or key TTLs, so
//! that every instance and the in-process implementation agree (and tests can move time).

use async_trait::async_trait;
use redis::Script;

use super::{AdmitOutcome, Entered, QueueSpot, RoomCounts, WaitingRoom, GONE_TTL_MS};
use crate::live::redis::RedisLive;
use crate::live::LiveError;

/// Drops the bookkeeping keys once nobody waits; appended to the scripts that remove waiters.
/// KEYS: line, seen, admitted, seq.
const CLEANUP: &str = r"
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2], KEYS[4])
end
";

/// KEYS: line, seen, admitted, seq, gone. ARGV: user, now.
/// Returns {0, ahead} newly waiting, {1, ahead} already waiting, {2, expires_at} admitted.
const ENTER: &str = r"
redis.call('ZREM', KEYS[5], ARGV[1])
local expires = redis.call('ZSCORE', KEYS[3], ARGV[1])
if expires then
  if tonumber(expires) > tonumber(ARGV[2]) then
    return {2, tonumber(expires)}
  end
  redis.call('ZREM', KEYS[3], ARGV[1])
end
local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if not seen or seen < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if rank then
  return {1, rank}
end
local seq = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[1], 'NX', seq, ARGV[1])
return {0, redis.call('ZRANK', KEYS[1], ARGV[1])}
";

/// KEYS: line, admitted, gone. ARGV: user, now, gone ttl.
/// Returns {0, ahead} waiting, {1, expires_at} admitted, {2, 0} absent, {3, since} gone. One
/// script so the reads see the same moment (a user admitted in between would otherwise read as
/// absent).
const SPOT: &str = r"
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if rank then
  return {0, rank}
end
local expires = redis.call('ZSCORE', KEYS[2], ARGV[1])
if expires then
  if tonumber(expires) > tonumber(ARGV[2]) then
    return {1, tonumber(expires)}
  end
  return {3, tonumber(expires)}
end
local since = redis.call('ZSCORE', KEYS[3], ARGV[1])
if since and tonumber(since) > tonumber(ARGV[2]) - tonumber(ARGV[3]) then
  return {3, tonumber(since)}
end
return {2, 0}
";

/// KEYS: line, seen. ARGV: user, now.
const TOUCH: &str = r"
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
  if not seen or seen < tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  end
end
";

/// KEYS: line, seen, admitted, seq, gone. ARGV: user. Returns 1 if the user was there.
const LEAVE: &str = r"
redis.call('ZREM', KEYS[5], ARGV[1])
local waited = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
local admitted = redis.call('ZREM', KEYS[3], ARGV[1])
";

/// KEYS: line, seen, admitted, seq, gone. ARGV: n, expires_at, stale_before, now, gone ttl.
/// Takes the front in batches no larger than the admissions still owed, so it never admits more
/// than n; every user looked at leaves the line, admitted or dropped. Returns {admitted, dropped}.
const ADMIT: &str = r"
local n = tonumber(ARGV[1])
local stale_before = tonumber(ARGV[3])
local admitted, dropped = {}, {}
while #admitted < n do
  local front = redis.call('ZRANGE', KEYS[1], 0, n - #admitted - 1)
  if #front == 0 then
    break
  end
  for _, user in ipairs(front) do
    local seen = tonumber(redis.call('HGET', KEYS[2], user))
    redis.call('ZREM', KEYS[1], user)
    redis.call('HDEL', KEYS[2], user)
    if not seen or seen < stale_before then
      redis.call('ZADD', KEYS[5], ARGV[4], user)
      dropped[#dropped + 1] = user
    else
      redis.call('ZADD', KEYS[3], ARGV[2], user)
      admitted[#admitted + 1] = user
    end
  end
end
";

/// KEYS: admitted. ARGV: user, now. Returns 1 when an unexpired admission was consumed.
const CONSUME: &str = r"
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if expires and tonumber(expires) > tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
";

/// KEYS: admitted, gone. ARGV: now, gone ttl. Returns {user, expires_at, …} of the removed
/// admissions, which move to `gone`.
const EXPIRE: &str = r"
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES')
local out = {}
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
  for i = 1, #gone, 2 do
    redis.call('ZADD', KEYS[2], ARGV[1], gone[i])
    out[#out + 1] = tonumber(gone[i])
    out[#out + 1] = tonumber(gone[i + 1])
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return out
";

/// Trims and refreshes `gone` after the admit script dropped users. KEYS[5]: gone. ARGV[4], [5]:
/// now, gone ttl.
const TRIM_GONE: &str = r"
if #dropped > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[5]))
  redis.call('PEXPIRE', KEYS[5], ARGV[5])
end
";

/// KEYS: line, admitted. ARGV: now. Returns {waiting, in_flight}.
const COUNTS: &str = r"
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf')}
";

/// KEYS: line, seen, admitted, seq, gone. Returns how many were waiting.
const CLOSE: &str = r"
local waiting = redis.call('ZCARD', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return waiting
";

/// Waiting rooms on Redis; see the module documentation for the keys.
pub struct RedisWaitingRoom {
    live: RedisLive,
    enter: Script,
    spot: Script,
    touch: Script,
    leave: Script,
    admit: Script,
    consume: Script,
    expire: Script,
    counts: Script,
    close: Script,
}

/// The keys of one party's room.
struct RoomKeys {
    line: String,
    seen: String,
    admitted: String,
    seq: String,
    gone: String,
}

impl RedisWaitingRoom {
    pub fn new(live: RedisLive) -> Self {
        Self {
            live,
            enter: Script::new(ENTER),
            spot: Script::new(SPOT),
            touch: Script::new(TOUCH),
            leave: Script::new(&format!("{LEAVE}{CLEANUP}return waited + admitted")),
            admit: Script::new(&format!(
                "{ADMIT}{TRIM_GONE}{CLEANUP}return {{admitted, dropped}}"
            )),
            consume: Script::new(CONSUME),
            expire: Script::new(EXPIRE),
            counts: Script::new(COUNTS),
            close: Script::new(CLOSE),
        }
    }

    fn keys(&self, party: i64) -> RoomKeys {
        let key = |part: &str| self.live.key("queue", &format!("{{{party}}}:{part}"));
        RoomKeys {
            line: key("line"),
            seen: key("seen"),
            admitted: key("admitted"),
            seq: key("seq"),
            gone: key("gone"),
        }
    }

    /// Prepares `script` with the five room keys in the order the scripts expect.
    fn room_invocation<'a>(&self, script: &'a Script, party: i64) -> redis::ScriptInvocation<'a> {
        let k = self.keys(party);
        let mut inv = script.prepare_invoke();
        inv.key(k.line)
            .key(k.seen)
            .key(k.admitted)
            .key(k.seq)
            .key(k.gone);
        inv
    }
}

/// A `{kind, value}` reply of the enter and spot scripts.
fn pair(reply: Vec<i64>) -> Result<(i64, i64), LiveError> {
    match reply[..] {
        [kind, value] => Ok((kind, value)),
        _ => Err(unexpected("a two-element reply")),
    }
}

fn unexpected(what: &'static str) -> LiveError {
    LiveError::Redis(redis::RedisError::from((
        redis::ErrorKind::TypeError,
        "waiting room script did not return",
        what.to_owned(),
    )))
}

#[async_trait]
impl WaitingRoom for RedisWaitingRoom {
    async fn enter(&self, party: i64, user: i64, now: i64) -> Result<Entered, LiveError> {
        let mut con = self.live.manager();
        let reply: Vec<i64> = self
            .room_invocation(&self.enter, party)
            .arg(user)
            .arg(now)
            .invoke_async(&mut con)
            .await?;
        match pair(reply)? {
            (0, ahead) => Ok(Entered::Waiting {
                ahead: ahead as u64,
            }),
            (1, ahead) => Ok(Entered::AlreadyWaiting {
                ahead: ahead as u64,
            }),
            (2, expires_at) => Ok(Entered::Admitted { expires_at }),
            _ => Err(unexpected("a known enter outcome")),
        }
    }

    async fn spot(&self, party: i64, user: i64, now: i64) -> Result<QueueSpot, LiveError> {
        let k = self.keys(party);
        let mut con = self.live.manager();
        let reply: Vec<i64> = self
            .spot
            .key(k.line)
            .key(k.admitted)
            .key(k.gone)
            .arg(user)
            .arg(now)
            .arg(GONE_TTL_MS)
            .invoke_async(&mut con)
            .await?;
        match pair(reply)? {
            (0, ahead) => Ok(QueueSpot::Waiting {
                ahead: ahead as u64,
            }),
            (1, expires_at) => Ok(QueueSpot::Admitted { expires_at }),
            (2, _) => Ok(QueueSpot::Absent),
            (3, since) => Ok(QueueSpot::Gone { since }),
            _ => Err(unexpected("a known spot")),
        }
    }

    async fn touch(&self, party: i64, user: i64, now: i64) -> Result<(), LiveError> {
        let k = self.keys(party);
        let mut con = self.live.manager();
        let () = self
            .touch
            .key(k.line)
            .key(k.seen)
            .arg(user)
            .arg(now)
            .invoke_async(&mut con)
            .await?;
        Ok(())
    }

    async fn leave(&self, party: i64, user: i64) -> Result<bool, LiveError> {
        let mut con = self.live.manager();
        let removed: i64 = self
            .room_invocation(&self.leave, party)
            .arg(user)
            .invoke_async(&mut con)
            .await?;
        Ok(removed > 0)
    }

    async fn admit(
        &self,
        party: i64,
        n: u64,
        now: i64,
        ttl_ms: i64,
        stale_before: i64,
    ) -> Result<AdmitOutcome, LiveError> {
        if n == 0 {
            return Ok(AdmitOutcome::default());
        }
        let mut con = self.live.manager();
        let (admitted, dropped): (Vec<i64>, Vec<i64>) = self
            .room_invocation(&self.admit, party)
            .arg(n)
            .arg(now.saturating_add(ttl_ms))
            .arg(stale_before)
            .arg(now)
            .arg(GONE_TTL_MS)
            .invoke_async(&mut con)
            .await?;
        Ok(AdmitOutcome { admitted, dropped })
    }

    async fn consume(&self, party: i64, user: i64, now: i64) -> Result<bool, LiveError> {
        let mut con = self.live.manager();
        let consumed: i64 = self
            .consume
            .key(self.keys(party).admitted)
            .arg(user)
            .arg(now)
            .invoke_async(&mut con)
            .await?;
        Ok(consumed == 1)
    }

    async fn expire(&self, party: i64, now: i64) -> Result<Vec<i64>, LiveError> {
        let mut con = self.live.manager();
        let k = self.keys(party);
        let flat: Vec<i64> = self
            .expire
            .key(k.admitted)
            .key(k.gone)
            .arg(now)
            .arg(GONE_TTL_MS)
            .invoke_async(&mut con)
            .await?;
        // Sorted by expiry then user id, as the in-process room does (Redis breaks score ties by
        // the member's text, which would put user 10 before user 9).
        let mut gone: Vec<(i64, i64)> = flat.chunks_exact(2).map(|c| (c[1], c[0])).collect();
        gone.sort_unstable();
        Ok(gone.into_iter().map(|(_, user)| user).collect())
    }

    async fn counts(&self, party: i64, now: i64) -> Result<RoomCounts, LiveError> {
        let k = self.keys(party);
        let mut con = self.live.manager();
        let (waiting, in_flight): (u64, u64) = self
            .counts
            .key(k.line)
            .key(k.admitted)
            .arg(now)
            .invoke_async(&mut con)
            .await?;
        Ok(RoomCounts { waiting, in_flight })
    }

    async fn close(&self, party: i64) -> Result<u64, LiveError> {
        let mut con = self.live.manager();
        Ok(self
            .room_invocation(&self.close, party)
            .invoke_async(&mut con)
            .await?)
    }
}
