//! The admitter: lets waiting people into their rooms at each room's rate, never more than the
//! seats still free minus the passes in flight, and closes rooms whose party filled, was cancelled
//! or closed.
//!
//! Every instance runs this loop, but only the holder of the `queue-admitter` lease does the work,
//! so exactly one admitter runs across a scale-out deployment. The lease is renewed on every tick
//! and lapses a few seconds after its holder dies, when another instance takes it over. Admission
//! itself is one atomic queue operation, so even two admitters (a lease lost mid-tick) could not
//! admit anyone twice or out of order.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::Duration;

use store::live::queue::AdmitOutcome;
use store::parties::{self, Party, PartyStatus};
use store::rooms::{self, reason, Room, RoomState};
use tokio::sync::watch;

use super::cache::rate_key;
use super::room::{notify, Notice};
use crate::state::AppState;

/// The lease that elects the one admitter.
pub const LEASE: &str = "queue-admitter";
/// How long the lease outlives its last renewal: the takeover delay when the holder dies.
const LEASE_TTL_MS: i64 = 5_000;
/// How long the measured admission rate is kept for position estimates.
const RATE_TTL: Duration = Duration::from_secs(3600);
/// The window over which the admission rate is measured.
const RATE_WINDOW_MS: i64 = 60_000;

/// Runs until `stop` turns true, then gives the lease up so another instance takes over at once.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut paces: HashMap<i64, Pace> = HashMap::new();
    let mut tick = tokio::time::interval(state.settings.queue.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
        tick_once(&state, &mut paces).await;
        state.admitter_rounds.fetch_add(1, Ordering::SeqCst);
    }
    if let Err(err) = state.live.lease.release(LEASE, &state.instance_id).await {
        tracing::warn!(error = %err, "admitter lease not released");
    }
}

/// Takes or renews the lease and, when held, goes over the rooms.
async fn tick_once(state: &AppState, paces: &mut HashMap<i64, Pace>) {
    let now = state.now();
    match state
        .live
        .lease
        .acquire(LEASE, &state.instance_id, now, LEASE_TTL_MS)
        .await
    {
        Ok(true) => {
            if let Err(err) = round(state, paces).await {
                tracing::warn!(error = %err, "admitter round failed");
            }
        }
        // Another instance admits; forget our pacing so a takeover starts fresh.
        Ok(false) => paces.clear(),
        Err(err) => tracing::warn!(error = %err, "admitter lease unavailable"),
    }
}

/// One pass over every open or paused room.
async fn round(state: &AppState, paces: &mut HashMap<i64, Pace>) -> Result<(), store::Error> {
    let live_rooms = rooms::list_live_rooms(&state.db).await?;
    // The time is read after the rooms: a change read here (a resume) is judged at a time no
    // earlier than the change, never by a clock read before it (which would count an entry
    // abandoned since as still followed).
    let now = state.now();
    paces.retain(|id, _| live_rooms.iter().any(|r| r.party_id == *id));
    for room in live_rooms {
        let pace = paces
            .entry(room.party_id)
            .or_insert_with(|| Pace::new(now, room.rate_per_min));
        if let Err(err) = tend(state, &room, pace, now).await {
            tracing::warn!(party.id = room.party_id, error = %err, "waiting room round failed");
        }
    }
    Ok(())
}

/// Why a room must close now, if it must.
fn closing_reason(party: &Party, now: i64) -> Option<&'static str> {
    if party.status == PartyStatus::Cancelled {
        Some(reason::CANCELLED)
    } else if party.status == PartyStatus::Full || party.joined >= party.capacity {
        Some(reason::FULL)
    } else if !party.accepts_bookings(now) {
        Some(reason::CLOSED)
    } else {
        None
    }
}

/// Tends one room: close it, or expire unused passes and admit the next people.
async fn tend(
    state: &AppState,
    room: &Room,
    pace: &mut Pace,
    now: i64,
) -> Result<(), store::Error> {
    let party_id = room.party_id;
    let queue = &state.live.queue;
    let expired = queue.expire(party_id, now).await?;
    let open = room.state == RoomState::Open;
    // Passes in flight first, seats taken second: a booking commits before it consumes its pass,
    // so a person who books in between is counted twice (harmless) and never not at all. A paused
    // room admits nobody and needs no count.
    let counts = if open {
        Some(queue.counts(party_id, now).await?)
    } else {
        None
    };
    let Some(party) = parties::get_party(&state.db, party_id).await? else {
        return Ok(());
    };
    if let Some(why) = closing_reason(&party, now) {
        return close(state, room, why, now).await;
    }
    let mut outcome = AdmitOutcome::default();
    if let Some(counts) = counts {
        pace.refill(now, room.rate_per_min);
        let free = (party.capacity - party.joined - counts.in_flight as i64).max(0) as u64;
        let n = free.min(pace.whole_tokens());
        if n > 0 && counts.waiting > 0 {
            let settings = &state.settings.queue;
            let stale_before = now - settings.stale_after.as_millis() as i64;
            outcome = queue
                .admit(
                    party_id,
                    n,
                    now,
                    settings.pass_ttl.as_millis() as i64,
                    stale_before,
                )
                .await?;
            pace.spend(now, outcome.admitted.len());
        }
    } else {
        pace.idle(now);
    }
    let changed =
        !expired.is_empty() || !outcome.admitted.is_empty() || !outcome.dropped.is_empty();
    if changed {
        rooms::add_counts(
            &state.db,
            party_id,
            outcome.admitted.len() as i64,
            outcome.dropped.len() as i64,
            expired.len() as i64,
            now,
        )
        .await?;
        if let Some(rate) = pace.measured_per_min(now) {
            state
                .live
                .cache
                .set(&rate_key(party_id), rate.to_string().as_bytes(), RATE_TTL)
                .await?;
        }
        notify(state, party_id, &Notice::Changed).await;
        tracing::debug!(
            party.id = party_id,
            admitted = outcome.admitted.len(),
            dropped = outcome.dropped.len(),
            expired = expired.len(),
            "waiting room advanced"
        );
    }
    Ok(())
}

/// Closes the room: everyone waiting is told at once, with the reason.
pub(crate) async fn close(
    state: &AppState,
    room: &Room,
    why: &str,
    now: i64,
) -> Result<(), store::Error> {
    let closed = rooms::change_state(
        &state.db,
        room.party_id,
        RoomState::ALL,
        RoomState::Closed,
        Some(why),
        now,
    )
    .await?;
    if closed.is_some() {
        let waiting = state.live.queue.close(room.party_id).await?;
        tracing::info!(
            party.id = room.party_id,
            reason = why,
            waiting,
            "waiting room closed"
        );
        let notice = Notice::Closed {
            reason: why.to_owned(),
        };
        notify(state, room.party_id, &notice).await;
    }
    Ok(())
}

/// A room's pacing: a token bucket at the room's rate, and the admissions of the last minute for
/// the measured rate.
struct Pace {
    tokens: f64,
    last: i64,
    since: i64,
    recent: VecDeque<(i64, usize)>,
}

impl Pace {
    fn new(now: i64, rate_per_min: i64) -> Self {
        Self {
            tokens: burst(rate_per_min),
            last: now,
            since: now,
            recent: VecDeque::new(),
        }
    }

    fn refill(&mut self, now: i64, rate_per_min: i64) {
        let elapsed = (now - self.last).max(0) as f64;
        self.tokens =
            (self.tokens + rate_per_min as f64 * elapsed / 60_000.0).min(burst(rate_per_min));
        self.last = now;
    }

    /// A paused room earns no tokens: resuming must not release a burst.
    fn idle(&mut self, now: i64) {
        self.last = now;
    }

    fn whole_tokens(&self) -> u64 {
        self.tokens.floor().max(0.0) as u64
    }

    fn spend(&mut self, now: i64, admitted: usize) {
        self.tokens -= admitted as f64;
        if admitted > 0 {
            self.recent.push_back((now, admitted));
        }
    }

    /// Admissions per minute over the last minute (or since pacing began, if later).
    fn measured_per_min(&mut self, now: i64) -> Option<f64> {
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| *t <= now - RATE_WINDOW_MS)
        {
            self.recent.pop_front();
        }
        let count: usize = self.recent.iter().map(|(_, n)| n).sum();
        if count == 0 {
            return None;
        }
        let span = (now - self.since).clamp(1_000, RATE_WINDOW_MS) as f64;
        Some(count as f64 * 60_000.0 / span)
    }
}

/// At most one second's worth of admissions at once (and at least one).
fn burst(rate_per_min: i64) -> f64 {
    (rate_per_min as f64 / 60.0).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_admits_at_the_rate_with_at_most_a_second_of_burst() {
        let mut pace = Pace::new(0, 600);
        assert_eq!(pace.whole_tokens(), 10);
        pace.spend(0, 10);
        assert_eq!(pace.whole_tokens(), 0);
        pace.refill(200, 600);
        assert_eq!(pace.whole_tokens(), 2);
        pace.refill(60_000, 600);
        assert_eq!(pace.whole_tokens(), 10, "capped at one second's worth");
    }

    #[test]
    fn a_slow_room_still_admits_one_at_a_time() {
        let mut pace = Pace::new(0, 6);
        assert_eq!(pace.whole_tokens(), 1);
        pace.spend(0, 1);
        pace.refill(5_000, 6);
        assert_eq!(pace.whole_tokens(), 0);
        pace.refill(10_000, 6);
        assert_eq!(pace.whole_tokens(), 1);
    }

    #[test]
    fn a_paused_room_earns_nothing() {
        let mut pace = Pace::new(0, 600);
        pace.spend(0, 10);
        pace.idle(30_000);
        pace.refill(30_100, 600);
        assert_eq!(pace.whole_tokens(), 1);
    }

    #[test]
    fn the_measured_rate_covers_the_last_minute() {
        let mut pace = Pace::new(0, 600);
        assert_eq!(pace.measured_per_min(0), None);
        pace.spend(10_000, 5);
        pace.spend(20_000, 5);
        assert_eq!(pace.measured_per_min(30_000), Some(20.0));
        assert_eq!(pace.measured_per_min(75_000), Some(5.0));
        assert_eq!(pace.measured_per_min(200_000), None);
    }

    fn party(status: PartyStatus, joined: i64, capacity: i64, deadline_at: i64) -> Party {
        Party {
            id: 1,
            leader_id: 1,
            market_id: 1,
            item_id: 1,
            title: String::new(),
            description: String::new(),
            capacity,
            joined,
            min_members: 2,
            price_per_share: None,
            meet_at: deadline_at + 1,
            deadline_at,
            status,
            cancel_reason: None,
            lat: 0.0,
            lng: 0.0,
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn rooms_close_when_their_party_fills_is_cancelled_or_closes() {
        assert_eq!(
            closing_reason(&party(PartyStatus::Recruiting, 3, 10, 100), 50),
            None
        );
        assert_eq!(
            closing_reason(&party(PartyStatus::Full, 10, 10, 100), 50),
            Some("full")
        );
        assert_eq!(
            closing_reason(&party(PartyStatus::Cancelled, 3, 10, 100), 50),
            Some("cancelled")
        );
        assert_eq!(
            closing_reason(&party(PartyStatus::Recruiting, 3, 10, 100), 100),
            Some("closed")
        );
        assert_eq!(
            closing_reason(&party(PartyStatus::Closed, 3, 10, 100), 50),
            Some("closed")
        );
    }
}
