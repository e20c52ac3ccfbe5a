//! The waiting room: a fair first-come, first-served queue per party in front of a hot group buy.
//!
//! Users enter a party's queue, follow their position (SSE heartbeats or polls mark them seen), and
//! a single admitter (elected with a [`crate::live::Lease`]) lets them through a few at a time. An
//! admission is a short-lived ticket that the join request consumes once. Users who stopped
//! following are dropped when their turn comes instead of wasting an admission.
//!
//! Time is always an argument (unix milliseconds) rather than read from a clock, so the contract
//! tests (`store/tests/queue_contract.rs`) can move it freely and both implementations judge expiry
//! identically. Admissions and leases are therefore expired by comparing stored deadlines with
//! `now`, never by backend timers.
//!
//! Details both implementations share (the contract tests pin them):
//! - an admission or lease whose deadline equals `now` has expired;
//! - `touch` and `enter` never move a user's last-seen time backwards (heartbeats from several
//!   instances may arrive out of order);
//! - `expire` returns users ordered by expiry, then user id;
//! - `leave` cannot judge expiry (it has no `now`), so an expired admission that `expire` has not
//!   swept yet still counts as "there";
//! - `admit` with `n = 0` does nothing, stale users included: they are dropped only at their turn.

pub mod memory;
pub mod redis;

use async_trait::async_trait;

pub use self::memory::MemoryWaitingRoom;
pub use self::redis::RedisWaitingRoom;
use super::LiveError;

/// What entering the queue did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entered {
    /// Newly queued at the back, behind `ahead` users.
    Waiting { ahead: u64 },
    /// Was already queued; the first position is kept.
    AlreadyWaiting { ahead: u64 },
    /// Holds an unexpired admission: go ahead.
    Admitted { expires_at: i64 },
}

/// Where a user stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueSpot {
    Waiting {
        ahead: u64,
    },
    Admitted {
        expires_at: i64,
    },
    /// The user's turn passed at `since`: their admission ran out unused, or the admitter dropped
    /// them as abandoned. Remembered in the room itself, written in the same atomic step that
    /// removes the user, for [`GONE_TTL_MS`] or until they enter again or leave, so a reader never
    /// sees them simply vanish.
    Gone {
        since: i64,
    },
    Absent,
}

/// How long a room remembers that a user's turn passed ([`QueueSpot::Gone`]).
pub const GONE_TTL_MS: i64 = 3_600_000;

/// What one [`WaitingRoom::admit`] call did; both lists are in entry order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdmitOutcome {
    pub admitted: Vec<i64>,
    pub dropped: Vec<i64>,
}

/// How full a room is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoomCounts {
    pub waiting: u64,
    pub in_flight: u64,
}

/// Waiting rooms of every party, shared by all instances. Times are unix milliseconds.
#[async_trait]
pub trait WaitingRoom: Send + Sync {
    /// Enter `party`'s queue at the back. Idempotent: entering again keeps the first position (AlreadyWaiting);
    /// a user holding an unexpired admission gets Admitted. Entering also marks the user seen at `now`
    /// and forgets that their turn passed.
    async fn enter(&self, party: i64, user: i64, now: i64) -> Result<Entered, LiveError>;
    /// Where the user stands. An expired admission, and a user removed by [`WaitingRoom::expire`]
    /// or dropped by [`WaitingRoom::admit`] within [`GONE_TTL_MS`], read as Gone. Does not change
    /// anything.
    async fn spot(&self, party: i64, user: i64, now: i64) -> Result<QueueSpot, LiveError>;
    /// Marks a waiting user as followed (an SSE heartbeat or a poll) at `now`. No-op when not waiting.
    async fn touch(&self, party: i64, user: i64, now: i64) -> Result<(), LiveError>;
    /// Leaves the queue (waiting or admitted), and forgets that their turn passed. Returns whether the
    /// user was waiting or admitted.
    async fn leave(&self, party: i64, user: i64) -> Result<bool, LiveError>;
    /// Admits up to `n` users from the front, in entry order, each admission valid until `now + ttl_ms`.
    /// Waiting users last seen before `stale_before` are removed instead (in `dropped`) and do not count
    /// towards `n`; they read as Gone from then on. Atomic: two admitters racing never admit the same
    /// user or more than n in total per call.
    async fn admit(
        &self,
        party: i64,
        n: u64,
        now: i64,
        ttl_ms: i64,
        stale_before: i64,
    ) -> Result<AdmitOutcome, LiveError>;
    /// Consumes the user's admission if it is unexpired at `now` (returns true once; false afterwards or if expired/absent).
    async fn consume(&self, party: i64, user: i64, now: i64) -> Result<bool, LiveError>;
    /// Removes admissions that expired at or before `now` (those users read as Gone from then on) and
    /// forgets turns that passed more than [`GONE_TTL_MS`] ago; returns the users removed.
    async fn expire(&self, party: i64, now: i64) -> Result<Vec<i64>, LiveError>;
    /// Waiting users and unexpired admissions (in flight) at `now`.
    async fn counts(&self, party: i64, now: i64) -> Result<RoomCounts, LiveError>;
    /// Empties the room: removes everyone waiting, every admission and every passed turn; returns how
    /// many were waiting.
    async fn close(&self, party: i64) -> Result<u64, LiveError>;
}
