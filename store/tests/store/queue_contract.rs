//! The waiting-room contract: the in-process and the Redis implementations must both pass every
//! test here. Redis runs when `GONGGU_TEST_REDIS_URL` is set (CI sets it and
//! `GONGGU_TEST_REQUIRE_SERVICES=1`, which turns a missing service into a failure).
//!
//! Time is an argument of every call, so nothing here sleeps.

use std::collections::HashSet;
use std::sync::Arc;

use store::live::{AdmitOutcome, Entered, Live, QueueSpot, RoomCounts, WaitingRoom};

/// A plausible "now" in unix milliseconds.
const T0: i64 = 1_700_000_000_000;
/// Admissions last a minute in these tests.
const TTL: i64 = 60_000;
/// Nobody is stale.
const NONE_STALE: i64 = i64::MIN;
const PARTY: i64 = 42;

fn redis_url() -> Option<String> {
    store::testing::scaled_urls().map(|(_, redis)| redis)
}

fn prefix() -> String {
    store::testing::unique_name("gt-queue")
}

async fn redis_room() -> Option<Arc<dyn WaitingRoom>> {
    let url = redis_url()?;
    Some(
        Live::redis(&url, &prefix())
            .await
            .expect("connect to redis")
            .queue,
    )
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory() {
                    super::$name(store::live::Live::memory().queue).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis() {
                    if let Some(room) = super::redis_room().await {
                        super::$name(room).await;
                    }
                }
            }
        )*
    };
}

contract!(
    entering_twice_keeps_the_first_position,
    positions_count_the_people_ahead_and_shrink_as_earlier_users_leave_or_are_admitted,
    positions_stay_exact_after_many_users_leave_from_the_middle,
    admit_takes_exactly_n_in_entry_order,
    admitting_from_an_empty_or_missing_room_admits_nobody,
    a_stale_waiting_user_is_dropped_at_their_turn_and_not_admitted,
    a_touch_keeps_a_waiting_user_from_going_stale,
    an_admitted_user_who_enters_again_is_told_they_are_admitted,
    an_admission_is_consumed_once_only,
    an_expired_admission_cannot_be_consumed_and_is_returned_by_expire,
    a_user_whose_admission_expired_enters_again_at_the_back,
    a_passed_turn_is_remembered_for_an_hour_unless_the_user_enters_again_or_leaves,
    leaving_removes_a_waiting_or_admitted_user_and_says_whether_they_were_there,
    counts_are_the_waiting_users_and_the_unexpired_admissions,
    close_counts_the_waiters_and_empties_the_room,
    parties_have_separate_rooms,
    concurrent_entrants_are_admitted_once_each_in_perfect_fifo_order,
);

async fn enter_all(room: &dyn WaitingRoom, users: impl IntoIterator<Item = i64>, now: i64) {
    for user in users {
        room.enter(PARTY, user, now).await.unwrap();
    }
}

async fn ahead_of(room: &dyn WaitingRoom, user: i64) -> u64 {
    match room.spot(PARTY, user, T0).await.unwrap() {
        QueueSpot::Waiting { ahead } => ahead,
        other => panic!("user {user} is not waiting: {other:?}"),
    }
}

/// The waiting line among `users`, front first, read through `spot`: their places must be
/// exactly 0, 1, 2, … and nobody else may be waiting.
async fn line(
    room: &dyn WaitingRoom,
    party: i64,
    users: impl IntoIterator<Item = i64>,
) -> Vec<i64> {
    let mut placed = Vec::new();
    for user in users {
        if let QueueSpot::Waiting { ahead } = room.spot(party, user, T0).await.unwrap() {
            placed.push((ahead, user));
        }
    }
    placed.sort_unstable();
    for (i, (ahead, _)) in placed.iter().enumerate() {
        assert_eq!(*ahead, i as u64, "places are contiguous: {placed:?}");
    }
    assert_eq!(
        room.counts(party, T0).await.unwrap().waiting,
        placed.len() as u64,
        "nobody else waits"
    );
    placed.into_iter().map(|(_, user)| user).collect()
}

async fn entering_twice_keeps_the_first_position(room: Arc<dyn WaitingRoom>) {
    assert_eq!(
        room.enter(PARTY, 1, T0).await.unwrap(),
        Entered::Waiting { ahead: 0 }
    );
    assert_eq!(
        room.enter(PARTY, 2, T0).await.unwrap(),
        Entered::Waiting { ahead: 1 }
    );
    assert_eq!(
        room.enter(PARTY, 1, T0 + 1).await.unwrap(),
        Entered::AlreadyWaiting { ahead: 0 }
    );
    assert_eq!(
        room.enter(PARTY, 3, T0 + 2).await.unwrap(),
        Entered::Waiting { ahead: 2 },
        "re-entering did not create a second place"
    );
    assert_eq!(room.counts(PARTY, T0).await.unwrap().waiting, 3);
    assert_eq!(line(&*room, PARTY, 1..=3).await, vec![1, 2, 3]);
}

async fn positions_count_the_people_ahead_and_shrink_as_earlier_users_leave_or_are_admitted(
    room: Arc<dyn WaitingRoom>,
) {
    enter_all(&*room, 1..=5, T0).await;
    for user in 1..=5 {
        assert_eq!(ahead_of(&*room, user).await, (user - 1) as u64);
    }
    assert!(room.leave(PARTY, 2).await.unwrap());
    assert_eq!(ahead_of(&*room, 1).await, 0);
    assert_eq!(ahead_of(&*room, 3).await, 1);
    assert_eq!(ahead_of(&*room, 5).await, 3);

    let out = room.admit(PARTY, 2, T0, TTL, NONE_STALE).await.unwrap();
    assert_eq!(out.admitted, vec![1, 3]);
    assert_eq!(ahead_of(&*room, 4).await, 0);
    assert_eq!(ahead_of(&*room, 5).await, 1);
    assert_eq!(
        room.enter(PARTY, 6, T0).await.unwrap(),
        Entered::Waiting { ahead: 2 }
    );
}

async fn positions_stay_exact_after_many_users_leave_from_the_middle(room: Arc<dyn WaitingRoom>) {
    enter_all(&*room, 1..=300, T0).await;
    // Everyone but each third user leaves, the front one last.
    for user in (2..=300).filter(|u| u % 3 != 0) {
        assert!(room.leave(PARTY, user).await.unwrap());
    }
    assert!(room.leave(PARTY, 1).await.unwrap());
    let left: Vec<i64> = (1..=300).filter(|u| u % 3 == 0).collect();
    assert_eq!(line(&*room, PARTY, 1..=300).await, left);
    for (i, &user) in left.iter().enumerate() {
        assert_eq!(ahead_of(&*room, user).await, i as u64, "user {user}");
    }
    assert_eq!(
        room.enter(PARTY, 1000, T0).await.unwrap(),
        Entered::Waiting {
            ahead: left.len() as u64
        }
    );
}

async fn admit_takes_exactly_n_in_entry_order(room: Arc<dyn WaitingRoom>) {
    // Ids out of numeric order, so entry order is not an accident of sorting.
    let users = [50, 7, 1000, 3, 21, 9];
    enter_all(&*room, users, T0).await;
    let first = room.admit(PARTY, 4, T0, TTL, NONE_STALE).await.unwrap();
    assert_eq!(
        first,
        AdmitOutcome {
            admitted: vec![50, 7, 1000, 3],
            dropped: vec![]
        }
    );
    for user in [50, 7, 1000, 3] {
        assert_eq!(
            room.spot(PARTY, user, T0).await.unwrap(),
            QueueSpot::Admitted {
                expires_at: T0 + TTL
            }
        );
    }
    let rest = room.admit(PARTY, 4, T0, TTL, NONE_STALE).await.unwrap();
    assert_eq!(rest.admitted, vec![21, 9], "only two were left");
    assert_eq!(room.counts(PARTY, T0).await.unwrap().waiting, 0);
}

async fn admitting_from_an_empty_or_missing_room_admits_nobody(room: Arc<dyn WaitingRoom>) {
    assert_eq!(
        room.admit(PARTY, 5, T0, TTL, NONE_STALE).await.unwrap(),
        AdmitOutcome::default()
    );
    enter_all(&*room, [1, 2], T0).await;
    assert_eq!(
        room.admit(PARTY, 0, T0, TTL, NONE_STALE).await.unwrap(),
        AdmitOutcome::default(),
        "n = 0 admits nobody"
    );
    assert_eq!(room.counts(PARTY, T0).await.unwrap().waiting, 2);
}

async fn a_stale_waiting_user_is_dropped_at_their_turn_and_not_admitted(
    room: Arc<dyn WaitingRoom>,
) {
    enter_all(&*room, [1], T0).await;
    enter_all(&*room, [2], T0 - 10_000).await; // last seen long ago
    enter_all(&*room, [3, 4], T0).await;
    enter_all(&*room, [5], T0 - 10_000).await; // stale too, but not reached this time
    enter_all(&*room, [6], T0).await;

    let out = room.admit(PARTY, 2, T0, TTL, T0 - 5_000).await.unwrap();
    assert_eq!(
        out,
        AdmitOutcome {
            admitted: vec![1, 3],
            dropped: vec![2]
        },
        "the stale user does not use up an admission"
    );
    assert_eq!(
        room.spot(PARTY, 2, T0).await.unwrap(),
        QueueSpot::Gone { since: T0 },
        "dropped in the same step that removed them"
    );
    assert_eq!(
        ahead_of(&*room, 5).await,
        1,
        "not dropped before their turn"
    );

    let out = room.admit(PARTY, 2, T0, TTL, T0 - 5_000).await.unwrap();
    assert_eq!(
        out,
        AdmitOutcome {
            admitted: vec![4, 6],
            dropped: vec![5]
        }
    );
    assert_eq!(
        room.counts(PARTY, T0).await.unwrap(),
        RoomCounts {
            waiting: 0,
            in_flight: 4
        }
    );
}

async fn a_touch_keeps_a_waiting_user_from_going_stale(room: Arc<dyn WaitingRoom>) {
    enter_all(&*room, [1, 2], T0).await;
    room.touch(PARTY, 1, T0 + 30_000).await.unwrap();
    // An older touch does not take the last-seen time back.
    room.touch(PARTY, 1, T0 + 1).await.unwrap();
    // Touching someone who is not waiting changes nothing.
    room.touch(PARTY, 99, T0 + 30_000).await.unwrap();
    assert_eq!(room.spot(PARTY, 99, T0).await.unwrap(), QueueSpot::Absent);

    let now = T0 + 40_000;
    let out = room.admit(PARTY, 5, now, TTL, now - 20_000).await.unwrap();
    assert_eq!(
        out,
        AdmitOutcome {
            admitted: vec![1],
            dropped: vec![2]
        }
    );

    // Entering again counts as being seen as well.
    enter_all(&*room, [3], now).await;
    room.enter(PARTY, 3, now + 30_000).await.unwrap();
    let later = now + 40_000;
    let out = room
        .admit(PARTY, 5, later, TTL, later - 20_000)
        .await
        .unwrap();
    assert_eq!(out.admitted, vec![3]);
}

async fn an_admitted_user_who_enters_again_is_told_they_are_admitted(room: Arc<dyn WaitingRoom>) {
    enter_all(&*room, [1, 2], T0).await;
    room.admit(PARTY, 1, T0, TTL, NONE_STALE).await.unwrap();
    assert_eq!(
        room.enter(PARTY, 1, T0 + 5).await.unwrap(),
        Entered::Admitted {
            expires_at: T0 + TTL
        }
    );
    assert_eq!(
        line(&*room, PARTY, [1, 2]).await,
        vec![2],
        "not queued a second time"
    );
}

async fn an_admission_is_consumed_once_only(room: Arc<dyn WaitingRoom>) {
    enter_all(&*room, [1, 2], T0).await;
    room.admit(PARTY, 2, T0, TTL, NONE_STALE).await.unwrap();
    assert!(room.consume(PARTY, 1, T0 + 1).await.unwrap());
    assert!(!room.consume(PARTY, 1, T0 + 2).await.unwrap());
    assert_eq!(
        room.spot(PARTY, 1, T0 + 2).await.unwrap(),
        QueueSpot::Absent
    );
    assert!(!room.consume(PARTY, 3, T0).await.unwrap(), "never admitted");
    assert_eq!(
        room.counts(PARTY, T0 + 2).await.unwrap(),
        RoomCounts {
            waiting: 0,
            in_flight: 1
        }
    );
}

async fn an_expired_admission_cannot_be_consumed_and_is_returned_by_expire(
    room: Arc<dyn WaitingRoom>,
) {
    enter_all(&*room, [10, 9, 8], T0).await;
    room.admit(PARTY, 2, T0, TTL, NONE_STALE).await.unwrap(); // 10 and 9 until T0 + TTL
    room.admit(PARTY, 1, T0 + 1_000, TTL, NONE_STALE)
        .await
        .unwrap(); // 8 until T0 + 1_000 + TTL
    let end = T0 + TTL;

    assert_eq!(
        room.spot(PARTY, 10, end - 1).await.unwrap(),
        QueueSpot::Admitted { expires_at: end }
    );
    assert_eq!(
        room.spot(PARTY, 10, end).await.unwrap(),
        QueueSpot::Gone { since: end },
        "an admission expires at its deadline"
    );
    assert!(!room.consume(PARTY, 10, end).await.unwrap());
    assert_eq!(
        room.expire(PARTY, end - 1).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(
        room.expire(PARTY, end).await.unwrap(),
        vec![9, 10],
        "by expiry, then user id"
    );
    assert_eq!(room.expire(PARTY, end).await.unwrap(), Vec::<i64>::new());
    assert_eq!(
        room.spot(PARTY, 10, end + 5).await.unwrap(),
        QueueSpot::Gone { since: end },
        "removed, and still known to have passed"
    );
    assert!(
        room.consume(PARTY, 8, end).await.unwrap(),
        "a later admission is untouched"
    );
}

async fn a_passed_turn_is_remembered_for_an_hour_unless_the_user_enters_again_or_leaves(
    room: Arc<dyn WaitingRoom>,
) {
    use store::live::GONE_TTL_MS;
    enter_all(&*room, [1, 2, 3], T0).await;
    room.admit(PARTY, 3, T0, TTL, NONE_STALE).await.unwrap();
    let end = T0 + TTL;
    assert_eq!(room.expire(PARTY, end).await.unwrap(), vec![1, 2, 3]);
    for user in [1, 2, 3] {
        assert_eq!(
            room.spot(PARTY, user, end).await.unwrap(),
            QueueSpot::Gone { since: end }
        );
    }
    assert_eq!(
        room.enter(PARTY, 1, end + 1).await.unwrap(),
        Entered::Waiting { ahead: 0 }
    );
    assert_eq!(
        room.spot(PARTY, 1, end + 1).await.unwrap(),
        QueueSpot::Waiting { ahead: 0 },
        "entering again starts over"
    );
    assert!(
        !room.leave(PARTY, 2).await.unwrap(),
        "not waiting nor admitted"
    );
    assert_eq!(
        room.spot(PARTY, 2, end + 1).await.unwrap(),
        QueueSpot::Absent
    );
    assert_eq!(
        room.spot(PARTY, 3, end + GONE_TTL_MS - 1).await.unwrap(),
        QueueSpot::Gone { since: end }
    );
    assert_eq!(
        room.spot(PARTY, 3, end + GONE_TTL_MS).await.unwrap(),
        QueueSpot::Absent,
        "forgotten after an hour"
    );
    room.close(PARTY).await.unwrap();
    assert_eq!(room.spot(PARTY, 3, end).await.unwrap(), QueueSpot::Absent);
}

async fn a_user_whose_admission_expired_enters_again_at_the_back(room: Arc<dyn WaitingRoom>) {
    enter_all(&*room, [1, 2], T0).await;
    room.admit(PARTY, 1, T0, TTL, NONE_STALE).await.unwrap();
    assert_eq!(
        room.enter(PARTY, 1, T0 + TTL).await.unwrap(),
        Entered::Waiting { ahead: 1 }
    );
    assert_eq!(
        room.expire(PARTY, T0 + TTL).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(line(&*room, PARTY, [1, 2]).await, vec![2, 1]);
}

async fn leaving_removes_a_waiting_or_admitted_user_and_says_whether_they_were_there(
    room: Arc<dyn WaitingRoom>,
) {
    enter_all(&*room, [1, 2, 3], T0).await;
    room.admit(PARTY, 1, T0, TTL, NONE_STALE).await.unwrap();
    assert!(room.leave(PARTY, 1).await.unwrap(), "admitted");
    assert!(room.leave(PARTY, 2).await.unwrap(), "waiting");
    assert!(!room.leave(PARTY, 2).await.unwrap(), "already gone");
    assert!(!room.leave(PARTY, 4).await.unwrap(), "never there");
    assert!(!room.consume(PARTY, 1, T0).await.unwrap());
    assert_eq!(
        room.counts(PARTY, T0).await.unwrap(),
        RoomCounts {
            waiting: 1,
            in_flight: 0
        }
    );
    assert!(room.leave(PARTY, 3).await.unwrap());
    assert_eq!(
        room.enter(PARTY, 5, T0).await.unwrap(),
        Entered::Waiting { ahead: 0 },
        "an emptied room starts afresh"
    );
}

async fn counts_are_the_waiting_users_and_the_unexpired_admissions(room: Arc<dyn WaitingRoom>) {
    assert_eq!(room.counts(PARTY, T0).await.unwrap(), RoomCounts::default());
    enter_all(&*room, 1..=6, T0).await;
    room.admit(PARTY, 2, T0, 1_000, NONE_STALE).await.unwrap();
    room.admit(PARTY, 1, T0, 5_000, NONE_STALE).await.unwrap();
    assert_eq!(
        room.counts(PARTY, T0).await.unwrap(),
        RoomCounts {
            waiting: 3,
            in_flight: 3
        }
    );
    assert_eq!(
        room.counts(PARTY, T0 + 1_000).await.unwrap(),
        RoomCounts {
            waiting: 3,
            in_flight: 1
        },
        "expired admissions are not in flight even before expire runs"
    );
    assert_eq!(room.counts(PARTY, T0 + 5_000).await.unwrap().in_flight, 0);
}

async fn close_counts_the_waiters_and_empties_the_room(room: Arc<dyn WaitingRoom>) {
    enter_all(&*room, [5, 3, 9, 1], T0).await;
    room.admit(PARTY, 1, T0, TTL, NONE_STALE).await.unwrap();
    assert_eq!(room.close(PARTY).await.unwrap(), 3);
    assert_eq!(room.counts(PARTY, T0).await.unwrap(), RoomCounts::default());
    assert_eq!(room.spot(PARTY, 3, T0).await.unwrap(), QueueSpot::Absent);
    assert_eq!(room.spot(PARTY, 5, T0).await.unwrap(), QueueSpot::Absent);
    assert!(
        !room.consume(PARTY, 5, T0).await.unwrap(),
        "admissions go too"
    );
    assert_eq!(room.close(PARTY).await.unwrap(), 0);
    assert_eq!(
        room.enter(PARTY, 9, T0).await.unwrap(),
        Entered::Waiting { ahead: 0 }
    );
}

async fn parties_have_separate_rooms(room: Arc<dyn WaitingRoom>) {
    room.enter(1, 100, T0).await.unwrap();
    assert_eq!(
        room.enter(2, 200, T0).await.unwrap(),
        Entered::Waiting { ahead: 0 }
    );
    assert_eq!(room.spot(2, 100, T0).await.unwrap(), QueueSpot::Absent);
    assert_eq!(
        room.admit(2, 10, T0, TTL, NONE_STALE)
            .await
            .unwrap()
            .admitted,
        vec![200]
    );
    assert_eq!(line(&*room, 1, [100, 200]).await, vec![100]);
    assert!(!room.consume(1, 200, T0).await.unwrap());
}

async fn concurrent_entrants_are_admitted_once_each_in_perfect_fifo_order(
    room: Arc<dyn WaitingRoom>,
) {
    const USERS: i64 = 200;
    const BATCH: u64 = 7;

    let entries: Vec<_> = (1..=USERS)
        .map(|user| {
            let room = room.clone();
            tokio::spawn(async move { (user, room.enter(PARTY, user, T0).await.unwrap()) })
        })
        .collect();
    let mut by_position = vec![0i64; USERS as usize];
    for entry in entries {
        match entry.await.unwrap() {
            (user, Entered::Waiting { ahead }) => {
                assert_eq!(
                    by_position[ahead as usize], 0,
                    "position {ahead} given twice"
                );
                by_position[ahead as usize] = user;
            }
            (user, other) => panic!("user {user} entered as {other:?}"),
        }
    }

    let admitters: Vec<_> = (0..4)
        .map(|_| {
            let room = room.clone();
            tokio::spawn(async move {
                let mut batches = Vec::new();
                loop {
                    let out = room.admit(PARTY, BATCH, T0, TTL, NONE_STALE).await.unwrap();
                    assert!(out.dropped.is_empty());
                    if out.admitted.is_empty() {
                        return batches;
                    }
                    assert!(out.admitted.len() as u64 <= BATCH);
                    batches.push(out.admitted);
                }
            })
        })
        .collect();
    let mut batches = Vec::new();
    for admitter in admitters {
        batches.extend(admitter.await.unwrap());
    }

    let position: std::collections::HashMap<i64, usize> = by_position
        .iter()
        .enumerate()
        .map(|(ahead, &user)| (user, ahead))
        .collect();
    // Each call took a run of consecutive places from the front...
    for batch in &batches {
        let places: Vec<usize> = batch.iter().map(|u| position[u]).collect();
        assert!(
            places.windows(2).all(|w| w[1] == w[0] + 1),
            "a batch is a consecutive run in entry order: {places:?}"
        );
    }
    // ...only the last of them short...
    let short = batches.iter().filter(|b| (b.len() as u64) < BATCH).count();
    assert!(short <= 1, "{short} batches came up short of {BATCH}");
    // ...and, put in order, they are exactly the line: everyone once, in the order they entered.
    batches.sort_by_key(|b| position[&b[0]]);
    let admitted: Vec<i64> = batches.into_iter().flatten().collect();
    assert_eq!(admitted, by_position);
    assert_eq!(
        admitted.iter().collect::<HashSet<_>>().len(),
        USERS as usize
    );
    assert_eq!(
        room.counts(PARTY, T0).await.unwrap(),
        RoomCounts {
            waiting: 0,
            in_flight: USERS as u64
        }
    );
}

/// Once a room is empty only its record of passed turns is left, with a Redis TTL; a closed room
/// and a released lease leave no key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_redis_room_leaves_no_keys_behind() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix();
    let live = store::live::redis::RedisLive::connect(&url, &prefix)
        .await
        .unwrap();
    let room = store::live::queue::RedisWaitingRoom::new(live.clone());
    let mut con = live.manager();
    let keys = |mut con: redis::aio::ConnectionManager| {
        let pattern = format!("{prefix}:*");
        async move {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(pattern)
                .query_async(&mut con)
                .await
                .unwrap();
            keys
        }
    };

    enter_all(&room, 1..=5, T0).await;
    room.enter(PARTY, 6, T0 - 60_000).await.unwrap();
    assert!(!keys(con.clone()).await.is_empty());
    room.leave(PARTY, 2).await.unwrap();
    let out = room.admit(PARTY, 10, T0, TTL, T0 - 1).await.unwrap();
    assert_eq!(out.admitted, vec![1, 3, 4, 5]);
    assert_eq!(out.dropped, vec![6]);
    for user in [1, 3] {
        assert!(room.consume(PARTY, user, T0).await.unwrap());
    }
    room.leave(PARTY, 4).await.unwrap();
    assert_eq!(room.expire(PARTY, T0 + TTL).await.unwrap(), vec![5]);
    // Only the record of passed turns (6 dropped, 5 expired) is left, and it expires by itself.
    let gone = format!("{prefix}:queue:{{{PARTY}}}:gone");
    assert_eq!(keys(con.clone()).await, vec![gone.clone()]);
    let gone_ttl: i64 = redis::cmd("PTTL")
        .arg(&gone)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        0 < gone_ttl && gone_ttl <= store::live::GONE_TTL_MS,
        "{gone_ttl}"
    );

    enter_all(&room, [7, 8], T0).await;
    room.close(PARTY).await.unwrap();
    use store::live::Lease;
    let lease = store::live::lease::RedisLease::new(live.clone());
    assert!(lease.acquire("admitter", "a", T0, 5_000).await.unwrap());
    lease.release("admitter", "a").await.unwrap();
    assert_eq!(keys(con.clone()).await, Vec::<String>::new());

    // The lease key carries a Redis TTL, so a holder that dies without releasing leaves nothing.
    assert!(lease.acquire("admitter", "a", T0, 5_000).await.unwrap());
    let ttl: i64 = redis::cmd("PTTL")
        .arg(live.key("lease", "admitter"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(ttl > 5_000, "kept past the deadline, for clock skew: {ttl}");
}
