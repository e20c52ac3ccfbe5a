//! In-process waiting rooms for the embedded default.
//!
//! Every operation takes one `std::sync::Mutex` for its whole (synchronous) body, which makes each
//! one atomic, as the Redis scripts are. Positions are asked for on every heartbeat of every
//! follower, so they are prefix sums over a Fenwick tree (O(log n)) rather than a walk of the line.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{AdmitOutcome, Entered, QueueSpot, RoomCounts, WaitingRoom, GONE_TTL_MS};
use crate::live::LiveError;

/// Slots a line may hold beyond twice its waiting users before it is compacted.
const SLACK: usize = 64;

/// A waiting user.
struct Waiter {
    /// Index into [`Room::line`].
    slot: usize,
    /// When the user was last seen following the queue.
    seen: i64,
}

/// One party's room.
#[derive(Default)]
struct Room {
    /// Entry order: one slot per entry since the last compaction, `None` once that user is gone.
    line: Vec<Option<i64>>,
    /// No slot before this one is occupied.
    head: usize,
    /// Fenwick tree over the occupancy of `line` (entry `i` covers slots `(i + 1 - lowbit(i + 1)) ..= i`).
    ranks: Vec<u32>,
    waiting: HashMap<i64, Waiter>,
    /// Admitted users and when their admission expires.
    admitted: HashMap<i64, i64>,
    /// Users whose turn passed (admission lapsed, or dropped as abandoned), and when.
    gone: HashMap<i64, i64>,
}

impl Room {
    /// Occupied slots before `slot`: the number of users ahead of whoever holds it.
    fn ahead(&self, slot: usize) -> u64 {
        let mut sum = 0u64;
        let mut i = slot;
        while i > 0 {
            sum += u64::from(self.ranks[i - 1]);
            i &= i - 1;
        }
        sum
    }

    /// Appends `user` at the back and returns their slot.
    fn push(&mut self, user: i64) -> usize {
        let slot = self.line.len();
        let i = slot + 1;
        let lower = i - (i & i.wrapping_neg());
        // The new node covers slots lower..=slot: the ones already there, plus this one.
        let covered = self.ahead(slot) - self.ahead(lower);
        self.line.push(Some(user));
        self.ranks.push(covered as u32 + 1);
        slot
    }

    /// Empties `slot`, then keeps the line short: reset when nobody waits, compacted when mostly holes.
    fn vacate(&mut self, slot: usize) {
        self.line[slot] = None;
        let mut i = slot + 1;
        while i <= self.ranks.len() {
            self.ranks[i - 1] -= 1;
            i += i & i.wrapping_neg();
        }
        while self.head < self.line.len() && self.line[self.head].is_none() {
            self.head += 1;
        }
        if self.waiting.is_empty() {
            self.line.clear();
            self.ranks.clear();
            self.head = 0;
        } else if self.line.len() > 2 * self.waiting.len() + SLACK {
            let users: Vec<i64> = self.line[self.head..].iter().flatten().copied().collect();
            self.line.clear();
            self.ranks.clear();
            self.head = 0;
            for user in users {
                let slot = self.push(user);
                if let Some(w) = self.waiting.get_mut(&user) {
                    w.slot = slot;
                }
            }
        }
    }

    /// Removes a waiting user; returns whether they were waiting.
    fn unqueue(&mut self, user: i64) -> bool {
        match self.waiting.remove(&user) {
            Some(w) => {
                self.vacate(w.slot);
                true
            }
            None => false,
        }
    }

    /// The waiting users in entry order.
    fn in_line(&self) -> impl Iterator<Item = i64> + '_ {
        self.line[self.head..].iter().flatten().copied()
    }

    fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.admitted.is_empty() && self.gone.is_empty()
    }

    /// Forgets turns that passed more than [`GONE_TTL_MS`] before `now`.
    fn forget_old(&mut self, now: i64) {
        let horizon = now.saturating_sub(GONE_TTL_MS);
        self.gone.retain(|_, &mut at| at > horizon);
    }
}

/// Waiting rooms in process memory. Rooms are dropped as soon as they empty.
#[derive(Default)]
pub struct MemoryWaitingRoom {
    rooms: Mutex<HashMap<i64, Room>>,
}

impl MemoryWaitingRoom {
    /// Runs `f` on the party's room (created if missing) under the lock, and drops the room if
    /// that left it empty.
    fn with_room<T>(&self, party: i64, f: impl FnOnce(&mut Room) -> T) -> T {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let room = rooms.entry(party).or_default();
        let out = f(room);
        if room.is_empty() {
            rooms.remove(&party);
        }
        out
    }

    /// Runs `f` on the party's room if there is one, without creating it.
    fn read_room<T>(&self, party: i64, f: impl FnOnce(Option<&Room>) -> T) -> T {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        f(rooms.get(&party))
    }
}

#[async_trait]
impl WaitingRoom for MemoryWaitingRoom {
    async fn enter(&self, party: i64, user: i64, now: i64) -> Result<Entered, LiveError> {
        Ok(self.with_room(party, |room| {
            room.gone.remove(&user);
            match room.admitted.get(&user) {
                Some(&expires_at) if expires_at > now => return Entered::Admitted { expires_at },
                // An expired admission is gone: the user queues again at the back.
                Some(_) => {
                    room.admitted.remove(&user);
                }
                None => {}
            }
            if let Some(w) = room.waiting.get_mut(&user) {
                w.seen = w.seen.max(now);
                let slot = w.slot;
                return Entered::AlreadyWaiting {
                    ahead: room.ahead(slot),
                };
            }
            let slot = room.push(user);
            room.waiting.insert(user, Waiter { slot, seen: now });
            Entered::Waiting {
                ahead: room.ahead(slot),
            }
        }))
    }

    async fn spot(&self, party: i64, user: i64, now: i64) -> Result<QueueSpot, LiveError> {
        Ok(self.read_room(party, |room| {
            let Some(room) = room else {
                return QueueSpot::Absent;
            };
            if let Some(w) = room.waiting.get(&user) {
                return QueueSpot::Waiting {
                    ahead: room.ahead(w.slot),
                };
            }
            match room.admitted.get(&user) {
                Some(&expires_at) if expires_at > now => QueueSpot::Admitted { expires_at },
                Some(&since) => QueueSpot::Gone { since },
                None => match room.gone.get(&user) {
                    Some(&since) if since > now.saturating_sub(GONE_TTL_MS) => {
                        QueueSpot::Gone { since }
                    }
                    _ => QueueSpot::Absent,
                },
            }
        }))
    }

    async fn touch(&self, party: i64, user: i64, now: i64) -> Result<(), LiveError> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = rooms
            .get_mut(&party)
            .and_then(|room| room.waiting.get_mut(&user))
        {
            w.seen = w.seen.max(now);
        }
        Ok(())
    }

    async fn leave(&self, party: i64, user: i64) -> Result<bool, LiveError> {
        Ok(self.with_room(party, |room| {
            let waited = room.unqueue(user);
            let admitted = room.admitted.remove(&user).is_some();
            room.gone.remove(&user);
            waited || admitted
        }))
    }

    async fn admit(
        &self,
        party: i64,
        n: u64,
        now: i64,
        ttl_ms: i64,
        stale_before: i64,
    ) -> Result<AdmitOutcome, LiveError> {
        let expires_at = now.saturating_add(ttl_ms);
        Ok(self.with_room(party, |room| {
            let mut out = AdmitOutcome::default();
            while (out.admitted.len() as u64) < n {
                let Some(user) = room.in_line().next() else {
                    break;
                };
                let seen = room.waiting.get(&user).map_or(i64::MIN, |w| w.seen);
                room.unqueue(user);
                if seen < stale_before {
                    room.gone.insert(user, now);
                    out.dropped.push(user);
                } else {
                    room.admitted.insert(user, expires_at);
                    out.admitted.push(user);
                }
            }
            if !out.dropped.is_empty() {
                room.forget_old(now);
            }
            out
        }))
    }

    async fn consume(&self, party: i64, user: i64, now: i64) -> Result<bool, LiveError> {
        Ok(
            self.with_room(party, |room| match room.admitted.get(&user) {
                Some(&expires_at) if expires_at > now => {
                    room.admitted.remove(&user);
                    true
                }
                _ => false,
            }),
        )
    }

    async fn expire(&self, party: i64, now: i64) -> Result<Vec<i64>, LiveError> {
        Ok(self.with_room(party, |room| {
            let mut gone: Vec<(i64, i64)> = room
                .admitted
                .iter()
                .filter(|(_, &expires_at)| expires_at <= now)
                .map(|(&user, &expires_at)| (expires_at, user))
                .collect();
            gone.sort_unstable();
            for (_, user) in &gone {
                room.admitted.remove(user);
                room.gone.insert(*user, now);
            }
            if !gone.is_empty() {
                room.forget_old(now);
            }
            gone.into_iter().map(|(_, user)| user).collect()
        }))
    }

    async fn counts(&self, party: i64, now: i64) -> Result<RoomCounts, LiveError> {
        Ok(self.read_room(party, |room| {
            room.map_or_else(RoomCounts::default, |room| RoomCounts {
                waiting: room.waiting.len() as u64,
                in_flight: room.admitted.values().filter(|&&at| at > now).count() as u64,
            })
        }))
    }

    async fn close(&self, party: i64) -> Result<u64, LiveError> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        Ok(rooms
            .remove(&party)
            .map_or(0, |room| room.waiting.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random enters, leaves, admissions and re-entries against a plain list: every position the
    /// Fenwick tree reports (across resets and compactions) matches counting by hand.
    #[tokio::test]
    async fn positions_match_a_plain_list_under_random_churn() {
        let room = MemoryWaitingRoom::default();
        let mut model: Vec<i64> = Vec::new();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for step in 0..20_000 {
            let user = next(400) as i64;
            match next(10) {
                0..=4 => {
                    let entered = room.enter(1, user, 0).await.unwrap();
                    match model.iter().position(|&u| u == user) {
                        Some(i) => assert_eq!(entered, Entered::AlreadyWaiting { ahead: i as u64 }),
                        None => {
                            assert!(matches!(entered, Entered::Waiting { .. }));
                            model.push(user);
                        }
                    }
                }
                5..=7 => {
                    let was = model.iter().position(|&u| u == user);
                    // Admissions never happen here, so `leave` is true exactly for waiters.
                    assert_eq!(room.leave(1, user).await.unwrap(), was.is_some());
                    if let Some(i) = was {
                        model.remove(i);
                    }
                }
                _ => {
                    let n = next(4);
                    let out = room.admit(1, n, 0, 1, i64::MIN).await.unwrap();
                    let take = model.len().min(n as usize);
                    assert_eq!(out.admitted, model.drain(..take).collect::<Vec<_>>());
                    // Forget the admissions so the model stays a plain list.
                    for user in out.admitted {
                        room.leave(1, user).await.unwrap();
                    }
                }
            }
            if step % 97 == 0 {
                for (i, &user) in model.iter().enumerate() {
                    assert_eq!(
                        room.spot(1, user, 0).await.unwrap(),
                        QueueSpot::Waiting { ahead: i as u64 },
                        "step {step}"
                    );
                }
                assert_eq!(room.counts(1, 0).await.unwrap().waiting, model.len() as u64);
            }
        }
    }
}
