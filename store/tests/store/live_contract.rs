//! The live-state contract: the in-process and the Redis implementations must both pass every
//! test here. Redis runs when `GONGGU_TEST_REDIS_URL` is set (CI sets it and
//! `GONGGU_TEST_REQUIRE_SERVICES=1`, which turns a missing service into a failure).

use std::time::Duration;

use bytes::Bytes;
use store::live::{BusMessage, Live};
use tokio::time::timeout;

fn redis_url() -> Option<String> {
    store::testing::scaled_urls().map(|(_, redis)| redis)
}

fn prefix() -> String {
    store::testing::unique_name("gt-live")
}

async fn redis_live() -> Option<Live> {
    let url = redis_url()?;
    Some(
        Live::redis(&url, &prefix())
            .await
            .expect("connect to redis"),
    )
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory() {
                    super::$name(store::live::Live::memory()).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis() {
                    if let Some(live) = super::redis_live().await {
                        super::$name(live).await;
                    }
                }
            }
        )*
    };
}

contract!(
    a_subscriber_gets_what_is_published_after_it_subscribed_in_order,
    every_subscriber_of_a_topic_gets_each_message,
    topics_are_kept_apart,
    a_batch_published_at_once_reaches_each_topic_in_order,
    a_cached_value_is_read_back_until_deleted,
    a_cached_value_expires_after_its_ttl,
    counters_count_up_from_one,
    the_rate_limiter_refuses_past_the_limit_per_key,
    the_rate_limit_window_resets,
    a_taken_value_goes_to_one_taker_only,
    a_lease_has_one_holder_at_a_time,
    the_holder_renews_its_lease,
    an_expired_lease_can_be_taken_over,
    a_released_lease_is_free_again_and_only_the_holder_can_release_it,
    presence_lists_each_connected_user_once_until_they_leave,
    a_presence_not_renewed_expires_and_a_heartbeat_keeps_it,
);

const T0: i64 = 1_700_000_000_000;

async fn a_lease_has_one_holder_at_a_time(live: Live) {
    let room = live.lease.clone();
    assert!(room.acquire("admitter", "a", T0, 5_000).await.unwrap());
    assert!(!room.acquire("admitter", "b", T0 + 1, 5_000).await.unwrap());
    assert!(!room
        .acquire("admitter", "b", T0 + 4_999, 5_000)
        .await
        .unwrap());
    assert!(
        room.acquire("other", "b", T0, 5_000).await.unwrap(),
        "names are independent"
    );
}

async fn the_holder_renews_its_lease(live: Live) {
    let room = live.lease.clone();
    assert!(room.acquire("admitter", "a", T0, 5_000).await.unwrap());
    assert!(room
        .acquire("admitter", "a", T0 + 4_000, 5_000)
        .await
        .unwrap());
    assert!(
        !room
            .acquire("admitter", "b", T0 + 8_000, 5_000)
            .await
            .unwrap(),
        "renewed until T0 + 9000"
    );
    assert!(room
        .acquire("admitter", "b", T0 + 9_000, 5_000)
        .await
        .unwrap());
}

async fn an_expired_lease_can_be_taken_over(live: Live) {
    let room = live.lease.clone();
    assert!(room.acquire("admitter", "a", T0, 5_000).await.unwrap());
    assert!(room
        .acquire("admitter", "b", T0 + 5_000, 5_000)
        .await
        .unwrap());
    assert!(
        !room
            .acquire("admitter", "a", T0 + 6_000, 5_000)
            .await
            .unwrap(),
        "the old holder lost it"
    );
}

async fn a_released_lease_is_free_again_and_only_the_holder_can_release_it(live: Live) {
    let room = live.lease.clone();
    assert!(room.acquire("admitter", "a", T0, 5_000).await.unwrap());
    room.release("admitter", "b").await.unwrap();
    assert!(
        !room.acquire("admitter", "b", T0 + 1, 5_000).await.unwrap(),
        "b could not release a's lease"
    );
    room.release("admitter", "a").await.unwrap();
    assert!(room.acquire("admitter", "b", T0 + 2, 5_000).await.unwrap());
    room.release("nobody-holds-this", "a").await.unwrap();
}

async fn a_taken_value_goes_to_one_taker_only(live: Live) {
    let cache = live.cache.clone();
    cache
        .set("ticket", b"42", Duration::from_secs(60))
        .await
        .unwrap();
    let takers = (0..16).map(|_| {
        let cache = cache.clone();
        tokio::spawn(async move { cache.take("ticket").await.unwrap() })
    });
    let mut got = Vec::new();
    for taker in takers {
        if let Some(v) = taker.await.unwrap() {
            got.push(v);
        }
    }
    assert_eq!(
        got,
        vec![bytes::Bytes::from_static(b"42")],
        "exactly one taker"
    );
    assert_eq!(cache.get("ticket").await.unwrap(), None);
    assert_eq!(cache.take("missing").await.unwrap(), None);
}

async fn recv(sub: &mut store::live::Subscription) -> BusMessage {
    timeout(Duration::from_secs(5), sub.recv())
        .await
        .expect("a message within 5 s")
        .expect("bus open")
}

async fn a_subscriber_gets_what_is_published_after_it_subscribed_in_order(live: Live) {
    let mut sub = live.bus.subscribe("t").await.unwrap();
    for i in 0..20 {
        live.bus
            .publish("t", format!("m{i}").as_bytes())
            .await
            .unwrap();
    }
    for i in 0..20 {
        assert_eq!(
            recv(&mut sub).await,
            BusMessage::Payload(Bytes::from(format!("m{i}")))
        );
    }
}

async fn every_subscriber_of_a_topic_gets_each_message(live: Live) {
    let mut a = live.bus.subscribe("t").await.unwrap();
    let mut b = live.bus.subscribe("t").await.unwrap();
    live.bus.publish("t", b"hello").await.unwrap();
    assert_eq!(
        recv(&mut a).await,
        BusMessage::Payload(Bytes::from_static(b"hello"))
    );
    assert_eq!(
        recv(&mut b).await,
        BusMessage::Payload(Bytes::from_static(b"hello"))
    );
}

async fn a_batch_published_at_once_reaches_each_topic_in_order(live: Live) {
    // More messages than one pipeline holds, spread over 20 topics (each within its ring).
    const TOPICS: usize = 20;
    const MESSAGES: usize = 600;
    let mut subs = Vec::new();
    for t in 0..TOPICS {
        subs.push(live.bus.subscribe(&format!("user.{t}")).await.unwrap());
    }
    let batch: Vec<(String, Vec<u8>)> = (0..MESSAGES)
        .map(|i| (format!("user.{}", i % TOPICS), format!("m{i}").into_bytes()))
        .collect();
    live.bus.publish_all(&batch).await.unwrap();
    for (t, sub) in subs.iter_mut().enumerate() {
        for i in (t..MESSAGES).step_by(TOPICS) {
            assert_eq!(
                recv(sub).await,
                BusMessage::Payload(Bytes::from(format!("m{i}")))
            );
        }
    }
}

async fn topics_are_kept_apart(live: Live) {
    let mut parties = live.bus.subscribe("parties").await.unwrap();
    live.bus.publish("chat", b"not for you").await.unwrap();
    live.bus.publish("parties", b"for you").await.unwrap();
    assert_eq!(
        recv(&mut parties).await,
        BusMessage::Payload(Bytes::from_static(b"for you"))
    );
}

async fn a_cached_value_is_read_back_until_deleted(live: Live) {
    let cache = &live.cache;
    assert_eq!(cache.get("k").await.unwrap(), None);
    cache
        .set("k", b"v1", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        cache.get("k").await.unwrap(),
        Some(Bytes::from_static(b"v1"))
    );
    cache
        .set("k", b"v2", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        cache.get("k").await.unwrap(),
        Some(Bytes::from_static(b"v2"))
    );
    cache.delete("k").await.unwrap();
    assert_eq!(cache.get("k").await.unwrap(), None);
}

async fn a_cached_value_expires_after_its_ttl(live: Live) {
    live.cache
        .set("short", b"v", Duration::from_millis(100))
        .await
        .unwrap();
    live.cache
        .set("long", b"v", Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(live.cache.get("short").await.unwrap(), None);
    assert!(live.cache.get("long").await.unwrap().is_some());
}

async fn counters_count_up_from_one(live: Live) {
    assert_eq!(live.cache.incr("gen").await.unwrap(), 1);
    assert_eq!(live.cache.incr("gen").await.unwrap(), 2);
    assert_eq!(
        live.cache.get("gen").await.unwrap(),
        Some(Bytes::from_static(b"2"))
    );
}

async fn the_rate_limiter_refuses_past_the_limit_per_key(live: Live) {
    let window = Duration::from_secs(60);
    for i in 1..=3 {
        let d = live.limiter.hit("a", 3, window).await.unwrap();
        assert!(d.allowed, "attempt {i}");
        assert_eq!(d.count, i);
    }
    let refused = live.limiter.hit("a", 3, window).await.unwrap();
    assert!(!refused.allowed);
    assert!(refused.retry_after > Duration::ZERO && refused.retry_after <= window);
    assert!(
        live.limiter.hit("b", 3, window).await.unwrap().allowed,
        "keys are independent"
    );
}

async fn the_rate_limit_window_resets(live: Live) {
    let window = Duration::from_millis(150);
    assert!(live.limiter.hit("w", 1, window).await.unwrap().allowed);
    assert!(!live.limiter.hit("w", 1, window).await.unwrap().allowed);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(live.limiter.hit("w", 1, window).await.unwrap().allowed);
}

#[tokio::test]
async fn a_memory_subscriber_that_falls_behind_is_told_of_the_gap() {
    let live = Live::memory();
    let mut sub = live.bus.subscribe("t").await.unwrap();
    for i in 0..5000 {
        live.bus
            .publish("t", format!("{i}").as_bytes())
            .await
            .unwrap();
    }
    assert_eq!(recv(&mut sub).await, BusMessage::Gap);
}

/// Per-user topics keep a small buffer (one is held for every connected user), shared topics a
/// large one: 100 messages overflow a user's notifications topic but not the parties topic.
#[tokio::test]
async fn per_user_topics_buffer_less_than_shared_ones() {
    let live = Live::memory();
    let user_topic = store::topics::notifications(7);
    let mut mine = live.bus.subscribe(&user_topic).await.unwrap();
    let mut parties = live.bus.subscribe("parties").await.unwrap();
    for i in 0..100 {
        let payload = format!("{i}");
        live.bus
            .publish(&user_topic, payload.as_bytes())
            .await
            .unwrap();
        live.bus
            .publish("parties", payload.as_bytes())
            .await
            .unwrap();
    }
    assert_eq!(recv(&mut mine).await, BusMessage::Gap);
    for i in 0..100 {
        assert_eq!(
            recv(&mut parties).await,
            BusMessage::Payload(Bytes::from(format!("{i}")))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_messages_reach_subscribers_of_another_instance() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix();
    let a = Live::redis(&url, &prefix).await.unwrap();
    let b = Live::redis(&url, &prefix).await.unwrap();
    let mut on_b = b.bus.subscribe("parties").await.unwrap();
    a.bus.publish("parties", b"from a").await.unwrap();
    assert_eq!(
        recv(&mut on_b).await,
        BusMessage::Payload(Bytes::from_static(b"from a"))
    );
    // Another deployment's prefix is not heard.
    let other = Live::redis(&url, &format!("{prefix}-other")).await.unwrap();
    other
        .bus
        .publish("parties", b"other deployment")
        .await
        .unwrap();
    a.bus.publish("parties", b"second").await.unwrap();
    assert_eq!(
        recv(&mut on_b).await,
        BusMessage::Payload(Bytes::from_static(b"second"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_bus_survives_a_dropped_connection_and_reports_the_gap() {
    let Some(url) = redis_url() else { return };
    let live = store::live::redis::RedisLive::connect(&url, &prefix())
        .await
        .unwrap();
    let bus = live.bus().await.unwrap();
    use store::live::Bus;
    let mut sub = bus.subscribe("t").await.unwrap();
    bus.publish("t", b"before").await.unwrap();
    assert_eq!(
        recv(&mut sub).await,
        BusMessage::Payload(Bytes::from_static(b"before"))
    );

    // Kill exactly our pub/sub connection on the server side.
    let addr = bus.pubsub_local_addr().expect("plain TCP connection");
    let mut con = live.manager();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ADDR")
        .arg(addr.to_string())
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(killed, 1, "our subscriber connection was found and killed");
    assert_eq!(
        recv(&mut sub).await,
        BusMessage::Gap,
        "subscribers learn they may have missed messages"
    );
    bus.publish("t", b"after").await.unwrap();
    assert_eq!(
        recv(&mut sub).await,
        BusMessage::Payload(Bytes::from_static(b"after"))
    );
    assert_ne!(
        bus.pubsub_local_addr(),
        Some(addr),
        "a new connection was opened"
    );
}

async fn presence_lists_each_connected_user_once_until_they_leave(live: Live) {
    let presence = live.presence.clone();
    assert!(presence.online("chat.1", T0).await.unwrap().is_empty());
    presence.beat("chat.1", 7, "a", T0, 30_000).await.unwrap();
    presence.beat("chat.1", 7, "b", T0, 30_000).await.unwrap();
    presence.beat("chat.1", 3, "c", T0, 30_000).await.unwrap();
    presence.beat("chat.2", 9, "d", T0, 30_000).await.unwrap();
    assert_eq!(
        presence.online("chat.1", T0).await.unwrap(),
        [3, 7],
        "rooms apart, users once"
    );
    presence.leave("chat.1", 7, "a").await.unwrap();
    assert_eq!(
        presence.online("chat.1", T0).await.unwrap(),
        [3, 7],
        "another connection of 7 is still open"
    );
    presence.leave("chat.1", 7, "b").await.unwrap();
    presence.leave("chat.1", 3, "c").await.unwrap();
    assert!(presence.online("chat.1", T0).await.unwrap().is_empty());
    assert_eq!(presence.online("chat.2", T0).await.unwrap(), [9]);
}

async fn a_presence_not_renewed_expires_and_a_heartbeat_keeps_it(live: Live) {
    let presence = live.presence.clone();
    presence
        .beat("chat.1", 1, "alive", T0, 30_000)
        .await
        .unwrap();
    presence
        .beat("chat.1", 2, "dead", T0, 30_000)
        .await
        .unwrap();
    presence
        .beat("chat.1", 1, "alive", T0 + 20_000, 30_000)
        .await
        .unwrap();
    assert_eq!(
        presence.online("chat.1", T0 + 29_999).await.unwrap(),
        [1, 2]
    );
    assert_eq!(
        presence.online("chat.1", T0 + 30_000).await.unwrap(),
        [1],
        "the connection that stopped beating is gone at its deadline"
    );
    assert!(presence
        .online("chat.1", T0 + 50_000)
        .await
        .unwrap()
        .is_empty());
}
