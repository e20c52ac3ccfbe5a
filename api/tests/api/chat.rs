//! Party chat over WebSocket: order, idempotent resends, recovery after reconnect and after a lost
//! bus subscription, refusals at the handshake, bad frames, history, read cursors, system messages.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::{Backend, TestApp, TestUser};

mod away;
mod presence;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn ticket(app: &TestApp, user: &TestUser) -> String {
    let res = app
        .post(user, "/api/v1/auth/stream-ticket", &json!({}))
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["ticket"].as_str().unwrap().to_owned()
}

fn ws_url(app: &TestApp, party: i64, ticket: &str, since: Option<i64>) -> String {
    let since = since.map(|s| format!("&since_seq={s}")).unwrap_or_default();
    format!(
        "ws://{}/api/v1/parties/{party}/chat/ws?ticket={ticket}{since}",
        app.addr
    )
}

async fn connect(app: &TestApp, user: &TestUser, party: i64, since: Option<i64>) -> Ws {
    let t = ticket(app, user).await;
    let (ws, _) = tokio_tungstenite::connect_async(ws_url(app, party, &t, since))
        .await
        .expect("chat handshake");
    ws
}

/// The handshake's refusal: status and problem code.
async fn refused(url: String) -> (u16, String) {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => panic!("the handshake was accepted"),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let body: Value =
                serde_json::from_slice(res.body().as_deref().unwrap_or(b"{}")).unwrap();
            (
                res.status().as_u16(),
                body["code"].as_str().unwrap_or("").to_owned(),
            )
        }
        Err(other) => panic!("unexpected handshake error {other}"),
    }
}

/// The next text frame (typing and presence notices skipped).
async fn next(ws: &mut Ws) -> Value {
    loop {
        let v = next_notice(ws).await;
        if v["type"] != "typing" && v["type"] != "presence" {
            return v;
        }
    }
}

/// The next text frame of any type.
async fn next_notice(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a frame in time")
            .expect("socket open")
            .expect("frame");
        if let WsMessage::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// The next message with `client_msg_id` `id` (system messages arriving live are passed over).
async fn ack(ws: &mut Ws, id: &str) -> Value {
    loop {
        let m = next(ws).await;
        if m["client_msg_id"] == id {
            return m;
        }
    }
}

async fn send(ws: &mut Ws, id: &str, text: &str) {
    let frame = json!({"type": "send", "client_msg_id": id, "text": text});
    ws.send(WsMessage::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The close frame's code and reason.
async fn closed(ws: &mut Ws) -> (u16, String) {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("the socket closes in time");
        match msg {
            Some(Ok(WsMessage::Close(Some(frame)))) => {
                return (frame.code.into(), frame.reason.to_string())
            }
            Some(Ok(_)) => continue,
            other => panic!("closed without a close frame: {other:?}"),
        }
    }
}

async fn member(app: &TestApp, party: i64, nickname: &str) -> TestUser {
    let user = app.user(nickname).await;
    let res = app
        .post(
            &user,
            &format!("/api/v1/parties/{party}/bookings"),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 201);
    user
}

/// A party of a leader and one member.
async fn room(app: &TestApp) -> (i64, TestUser, TestUser) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, 10).await["id"].as_i64().unwrap();
    let bob = member(app, party, "bob").await;
    // The consumer writes "bob joined" on its own time: wait for it so it is not taken for live.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while system_messages(app, party).await < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no member_joined message"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (party, leader, bob)
}

async fn system_messages(app: &TestApp, party: i64) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM chat_messages WHERE party_id = $1 AND kind = 'system'",
    )
    .bind(party)
    .fetch_one(app.db().pool())
    .await
    .unwrap();
    n
}

/// Test settings with a send limit no test here reaches, and an operator (for the reports).
fn settings() -> api::state::Settings {
    let mut settings = crate::common::test_settings();
    settings.chat.send_limit = 10_000;
    settings.operator_emails = vec![crate::common::OPERATOR_EMAIL.into()];
    settings
}

async fn user_messages(app: &TestApp, party: i64) -> i64 {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM chat_messages WHERE party_id = $1 AND kind = 'user'")
            .bind(party)
            .fetch_one(app.db().pool())
            .await
            .unwrap();
    n
}

/// A second instance on PostgreSQL + Redis; the embedded backend has one.
async fn other_instance(app: &TestApp) -> Option<TestApp> {
    match app.backend {
        Backend::Scaled => Some(app.spawn_sibling_with(app.state.settings.clone()).await),
        Backend::Embedded => None,
    }
}

on_both_backends!(with super::settings() =>
    members_see_messages_in_seq_order_and_a_resend_stores_one,
    concurrent_resends_of_one_id_store_one_message_and_leave_no_gap,
    a_reconnecting_client_receives_exactly_what_it_missed,
    a_killed_bus_subscription_is_caught_up_from_sql,
    strangers_left_members_and_bad_tickets_are_refused_at_the_handshake,
    bad_frames_get_an_error_frame_and_store_nothing,
    history_pages_backwards_and_read_cursors_count_unread,
    a_member_who_leaves_gets_a_system_message_and_a_close_frame,
);

async fn members_see_messages_in_seq_order_and_a_resend_stores_one(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let other = other_instance(&app).await;
    let bob_app = other.as_ref().unwrap_or(&app);
    let mut a = connect(&app, &leader, party, None).await;
    let mut b = connect(bob_app, &bob, party, None).await;
    for i in 0..5 {
        send(&mut a, &format!("a{i}"), &format!("from leader {i}")).await;
        send(&mut b, &format!("b{i}"), &format!("from bob {i}")).await;
    }
    let mut seen_a = Vec::new();
    let mut seen_b = Vec::new();
    for _ in 0..10 {
        let m = next(&mut a).await;
        assert_eq!(m["type"], "message", "{m}");
        seen_a.push((m["seq"].as_i64().unwrap(), m["text"].clone()));
        let m = next(&mut b).await;
        seen_b.push((m["seq"].as_i64().unwrap(), m["text"].clone()));
    }
    assert_eq!(seen_a, seen_b, "one order for everyone");
    let seqs: Vec<i64> = seen_a.iter().map(|(s, _)| *s).collect();
    let first = seqs[0];
    assert_eq!(seqs, (first..first + 10).collect::<Vec<_>>(), "gap-free");

    // A retry of a0 after a dropped connection: the original comes back, nothing new is stored.
    let original = seen_a.iter().find(|(_, t)| t == "from leader 0").unwrap().0;
    send(&mut a, "a0", "from leader 0").await;
    let ack = next(&mut a).await;
    assert_eq!(ack["seq"], original);
    assert_eq!(ack["client_msg_id"], "a0");
    assert_eq!(user_messages(&app, party).await, 10);
}

async fn concurrent_resends_of_one_id_store_one_message_and_leave_no_gap(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let other = other_instance(&app).await;
    let second = other.as_ref().unwrap_or(&app);
    // The leader on two sockets (on two instances in scale-out) sends each id from both at once,
    // as a client retrying on a new connection before the old one is gone would.
    let mut a = connect(&app, &leader, party, None).await;
    let mut b = connect(second, &leader, party, None).await;
    const ROUNDS: usize = 10;
    for round in 0..ROUNDS {
        let id = format!("twice-{round}");
        tokio::join!(
            send(&mut a, &id, "sent twice"),
            send(&mut b, &id, "sent twice")
        );
    }
    // Both sockets hear of every id (as an acknowledgement, a resend's answer or a delivery),
    // always with one seq.
    for ws in [&mut a, &mut b] {
        let mut seen = std::collections::HashMap::new();
        while seen.len() < ROUNDS {
            let m = next(ws).await;
            if let Some(id) = m["client_msg_id"].as_str() {
                let seq = m["seq"].as_i64().unwrap();
                assert_eq!(
                    *seen.entry(id.to_owned()).or_insert(seq),
                    seq,
                    "{id}: one seq"
                );
            }
        }
    }
    assert_eq!(user_messages(&app, party).await, ROUNDS as i64);
    // Every seq from 1 is taken once: a resend's rolled-back bump left no hole.
    send(&mut a, "after", "and one more").await;
    let last = ack(&mut a, "after").await["seq"].as_i64().unwrap();
    let page: Value = app
        .get(
            Some(&bob),
            &format!("/api/v1/parties/{party}/chat/messages?limit=100"),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut seqs: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    seqs.reverse();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
}

async fn a_reconnecting_client_receives_exactly_what_it_missed(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let mut b = connect(&app, &bob, party, None).await;
    send(&mut b, "hello", "hello").await;
    let last = next(&mut b).await["seq"].as_i64().unwrap();
    b.close(None).await.unwrap();
    drop(b);
    let mut a = connect(&app, &leader, party, None).await;
    for i in 0..30 {
        send(&mut a, &format!("m{i}"), &format!("message {i}")).await;
        assert_eq!(next(&mut a).await["text"], format!("message {i}"));
    }
    let other = other_instance(&app).await;
    let mut b = connect(other.as_ref().unwrap_or(&app), &bob, party, Some(last)).await;
    for i in 0..30 {
        let m = next(&mut b).await;
        assert_eq!(m["seq"], last + 1 + i, "{m}");
        assert_eq!(m["text"], format!("message {i}"));
    }
    // And then live ones, with nothing replayed twice.
    send(&mut a, "live", "live").await;
    let m = next(&mut b).await;
    assert_eq!(
        (m["seq"].as_i64(), m["text"].as_str()),
        (Some(last + 31), Some("live"))
    );
}

async fn a_killed_bus_subscription_is_caught_up_from_sql(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let mut a = connect(&app, &leader, party, None).await;
    let mut b = connect(&app, &bob, party, None).await;
    send(&mut a, "1", "before").await;
    let first = next(&mut b).await["seq"].as_i64().unwrap();
    assert_eq!(next(&mut a).await["seq"], first);
    if let Some(bus) = app.state.live.redis_bus.clone() {
        let addr = bus.pubsub_local_addr().expect("tcp");
        let mut con = app.state.live.redis.as_ref().unwrap().manager();
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ADDR")
            .arg(addr.to_string())
            .arg("SKIPME")
            .arg("yes")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(killed, 1);
    }
    for i in 0..20 {
        send(&mut a, &format!("k{i}"), &format!("during {i}")).await;
    }
    for i in 0..20 {
        let m = next(&mut b).await;
        assert_eq!(m["seq"], first + 1 + i, "{m}");
        assert_eq!(m["text"], format!("during {i}"));
    }
}

async fn strangers_left_members_and_bad_tickets_are_refused_at_the_handshake(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let stranger = app.user("stranger").await;
    let t = ticket(&app, &stranger).await;
    assert_eq!(
        refused(ws_url(&app, party, &t, None)).await,
        (403, "not_a_member".into())
    );

    let res = app
        .delete(&bob, &format!("/api/v1/parties/{party}/bookings/me"))
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let t = ticket(&app, &bob).await;
    assert_eq!(
        refused(ws_url(&app, party, &t, None)).await,
        (403, "left_party".into())
    );

    assert_eq!(
        refused(ws_url(&app, party, "not-a-ticket", None)).await,
        (401, "invalid_ticket".into())
    );
    let t = ticket(&app, &leader).await;
    let (_ws, _) = tokio_tungstenite::connect_async(ws_url(&app, party, &t, None))
        .await
        .unwrap();
    assert_eq!(
        refused(ws_url(&app, party, &t, None)).await,
        (401, "invalid_ticket".into()),
        "a ticket works once"
    );
    let t = ticket(&app, &leader).await;
    assert_eq!(refused(ws_url(&app, 999_999, &t, None)).await.0, 404);
    // A plain GET is not a handshake.
    let res = app
        .get(Some(&leader), &format!("/api/v1/parties/{party}/chat/ws"))
        .await;
    crate::common::assert_problem(res, 426, "upgrade_required").await;
}

async fn bad_frames_get_an_error_frame_and_store_nothing(app: TestApp) {
    let (party, leader, _bob) = room(&app).await;
    let mut a = connect(&app, &leader, party, None).await;
    let cases = [
        ("not json".to_owned(), "malformed_frame"),
        (r#"{"no_type":1}"#.to_owned(), "malformed_frame"),
        (r#"{"type":"shout","text":"x"}"#.to_owned(), "unknown_type"),
        (r#"{"type":"send","text":"x"}"#.to_owned(), "invalid_frame"),
        (
            json!({"type":"send","client_msg_id":"big","text":"a".repeat(2_001)}).to_string(),
            "text_too_long",
        ),
    ];
    for (frame, code) in cases {
        a.send(WsMessage::Text(frame.into())).await.unwrap();
        let err = next(&mut a).await;
        assert_eq!(
            (err["type"].as_str(), err["code"].as_str()),
            (Some("error"), Some(code))
        );
    }
    // The socket is still open and works.
    send(&mut a, "ok", &"가".repeat(2_000)).await;
    let m = next(&mut a).await;
    assert_eq!(m["type"], "message");
    assert_eq!(user_messages(&app, party).await, 1);
}

async fn history_pages_backwards_and_read_cursors_count_unread(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let mut a = connect(&app, &leader, party, None).await;
    let mut seqs = Vec::new();
    for i in 0..5 {
        send(&mut a, &format!("h{i}"), &format!("history {i}")).await;
        seqs.push(next(&mut a).await["seq"].as_i64().unwrap());
    }
    let page: Value = app
        .get(
            Some(&bob),
            &format!("/api/v1/parties/{party}/chat/messages?limit=3"),
        )
        .await
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["history 4", "history 3", "history 2"]);
    let before = page["next_before_seq"].as_i64().unwrap();
    let older: Value = app
        .get(
            Some(&bob),
            &format!("/api/v1/parties/{party}/chat/messages?limit=3&before_seq={before}"),
        )
        .await
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = older["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "user")
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["history 1", "history 0"]);

    let rooms: Value = app
        .get(Some(&bob), "/api/v1/me/chats")
        .await
        .json()
        .await
        .unwrap();
    let mine = &rooms["items"][0];
    assert_eq!(mine["party_id"], party);
    assert_eq!(mine["last_message"]["text"], "history 4");
    let unread_before = mine["unread"].as_i64().unwrap();
    assert!(unread_before >= 5, "{mine}");

    let read = app
        .post(
            &bob,
            &format!("/api/v1/parties/{party}/chat/read"),
            &json!({"seq": seqs[2]}),
        )
        .await;
    assert_eq!(read.json::<Value>().await.unwrap()["seq"], seqs[2]);
    let back = app
        .post(
            &bob,
            &format!("/api/v1/parties/{party}/chat/read"),
            &json!({"seq": 0}),
        )
        .await;
    assert_eq!(
        back.json::<Value>().await.unwrap()["seq"],
        seqs[2],
        "never backwards"
    );
    let rooms: Value = app
        .get(Some(&bob), "/api/v1/me/chats")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rooms["items"][0]["unread"], 2);
    // The sender's own messages are read.
    let rooms: Value = app
        .get(Some(&leader), "/api/v1/me/chats")
        .await
        .json()
        .await
        .unwrap();
    let leader_room = &rooms["items"][0];
    assert_eq!(leader_room["read_seq"], seqs[4], "{leader_room}");

    let stranger = app.user("stranger").await;
    let res = app
        .get(
            Some(&stranger),
            &format!("/api/v1/parties/{party}/chat/messages"),
        )
        .await;
    crate::common::assert_problem(res, 403, "not_a_member").await;
}

async fn a_member_who_leaves_gets_a_system_message_and_a_close_frame(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let mut a = connect(&app, &leader, party, Some(0)).await;
    // Bob's joining is the room's first message, written by the chat consumer.
    let joined = next(&mut a).await;
    assert_eq!(
        (joined["kind"].as_str(), joined["event"].as_str()),
        (Some("system"), Some("member_joined"))
    );
    assert_eq!(joined["user_id"], bob.id);
    let mut b = connect(&app, &bob, party, None).await;
    let res = app
        .delete(&bob, &format!("/api/v1/parties/{party}/bookings/me"))
        .await;
    assert!(res.status().is_success());
    let (code, reason) = closed(&mut b).await;
    assert_eq!((code, reason.as_str()), (1008, "left_party"));
    let left = next(&mut a).await;
    assert_eq!(left["event"], "member_left");
    assert_eq!(left["seq"], joined["seq"].as_i64().unwrap() + 1);
    // Written once, whatever the number of instances running the consumer.
    let _second = other_instance(&app).await;
    assert_eq!(system_messages(&app, party).await, 2);
}

/// Test settings allowing three messages per window.
fn limited() -> api::state::Settings {
    let mut settings = crate::common::test_settings();
    settings.chat.send_limit = 3;
    settings.chat.send_window = Duration::from_secs(3_600);
    settings
}

on_both_backends!(with super::limited() => a_sender_past_the_rate_limit_gets_an_error_frame_and_stays_connected);

async fn a_sender_past_the_rate_limit_gets_an_error_frame_and_stays_connected(app: TestApp) {
    let (party, leader, _bob) = room(&app).await;
    let mut a = connect(&app, &leader, party, None).await;
    for i in 0..3 {
        send(&mut a, &format!("r{i}"), "hi").await;
        assert_eq!(next(&mut a).await["type"], "message");
    }
    send(&mut a, "r3", "one too many").await;
    let err = next(&mut a).await;
    assert_eq!(
        (err["type"].as_str(), err["code"].as_str()),
        (Some("error"), Some("rate_limited"))
    );
    // Still open: a read frame is accepted and the cursor moves.
    a.send(WsMessage::Text(
        json!({"type": "read", "seq": 1}).to_string().into(),
    ))
    .await
    .unwrap();
    a.send(WsMessage::Text(json!({"type": "shout"}).to_string().into()))
        .await
        .unwrap();
    assert_eq!(next(&mut a).await["code"], "unknown_type");
    assert_eq!(user_messages(&app, party).await, 3);
}

on_both_backends!(a_cancelled_party_says_so_in_the_chat_and_closes_the_sockets);

async fn a_cancelled_party_says_so_in_the_chat_and_closes_the_sockets(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let mut b = connect(&app, &bob, party, None).await;
    let res = app
        .post(
            &leader,
            &format!("/api/v1/parties/{party}/cancel"),
            &json!({"reason": "rain"}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let m = next(&mut b).await;
    assert_eq!(
        (m["kind"].as_str(), m["event"].as_str()),
        (Some("system"), Some("cancelled"))
    );
    assert!(m["text"].as_str().unwrap().contains("rain"), "{m}");
    assert_eq!(closed(&mut b).await, (1008, "party_cancelled".to_owned()));
    // The room is closed to live talk, its history stays readable.
    let t = ticket(&app, &bob).await;
    assert_eq!(
        refused(ws_url(&app, party, &t, None)).await,
        (409, "party_cancelled".into())
    );
    let res = app
        .get(
            Some(&bob),
            &format!("/api/v1/parties/{party}/chat/messages"),
        )
        .await;
    assert_eq!(res.status(), 200);
}

on_both_backends!(with super::settings() =>
    a_sender_deletes_their_message_and_sockets_see_the_tombstone,
    the_leader_deletes_any_message_and_others_may_not,
    members_report_a_message_once,
);

async fn a_sender_deletes_their_message_and_sockets_see_the_tombstone(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let other = other_instance(&app).await;
    let mut a = connect(other.as_ref().unwrap_or(&app), &leader, party, None).await;
    let mut b = connect(&app, &bob, party, None).await;
    send(&mut b, "oops", "wrong room").await;
    let seq = next(&mut b).await["seq"].as_i64().unwrap();
    assert_eq!(next(&mut a).await["seq"], seq);

    let res = app
        .delete(
            &bob,
            &format!("/api/v1/parties/{party}/chat/messages/{seq}"),
        )
        .await;
    assert_eq!(res.status(), 200);
    let tombstone: Value = res.json().await.unwrap();
    assert_eq!(
        (
            tombstone["seq"].as_i64(),
            tombstone["deleted"].as_bool(),
            tombstone["text"].as_str()
        ),
        (Some(seq), Some(true), Some(""))
    );
    // Both sockets, on either instance, learn of it.
    for ws in [&mut a, &mut b] {
        let frame = next(ws).await;
        assert_eq!(
            frame,
            json!({"type": "deleted", "seq": seq, "deleted_by": bob.id})
        );
    }
    // The sequence keeps its place: a reconnect replays the tombstone, and the history shows it.
    let mut again = connect(&app, &leader, party, Some(seq - 1)).await;
    let replayed = next(&mut again).await;
    assert_eq!(
        (
            replayed["seq"].as_i64(),
            replayed["deleted"].as_bool(),
            replayed["text"].as_str()
        ),
        (Some(seq), Some(true), Some(""))
    );
    let page: Value = app
        .get(
            Some(&leader),
            &format!("/api/v1/parties/{party}/chat/messages"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["deleted"], true);
    // Deleting again changes nothing; unknown seqs are 404.
    let res = app
        .delete(
            &bob,
            &format!("/api/v1/parties/{party}/chat/messages/{seq}"),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .delete(
            &bob,
            &format!("/api/v1/parties/{party}/chat/messages/{}", seq + 100),
        )
        .await;
    crate::common::assert_problem(res, 404, "not_found").await;
}

async fn the_leader_deletes_any_message_and_others_may_not(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let carol = member(&app, party, "carol").await;
    let mut b = connect(&app, &bob, party, None).await;
    send(&mut b, "1", "bob's").await;
    // (Carol's joining may come first, live.)
    let seq = ack(&mut b, "1").await["seq"].as_i64().unwrap();
    let path = format!("/api/v1/parties/{party}/chat/messages/{seq}");
    let res = app.delete(&carol, &path).await;
    crate::common::assert_problem(res, 403, "not_your_message").await;
    let stranger = app.user("stranger").await;
    let res = app.delete(&stranger, &path).await;
    crate::common::assert_problem(res, 403, "not_a_member").await;
    // System messages (bob and carol joining) are not anyone's to delete.
    let res = app
        .delete(&leader, &format!("/api/v1/parties/{party}/chat/messages/1"))
        .await;
    crate::common::assert_problem(res, 403, "system_message").await;
    let (text,): (String,) =
        sqlx::query_as("SELECT text FROM chat_messages WHERE party_id = $1 AND seq = $2")
            .bind(party)
            .bind(seq)
            .fetch_one(app.db().pool())
            .await
            .unwrap();
    assert_eq!(text, "bob's", "refusals change nothing");

    let res = app.delete(&leader, &path).await;
    assert_eq!(res.status(), 200);
    // (Carol's joining may still arrive first, live.)
    let frame = loop {
        let frame = next(&mut b).await;
        if frame["type"] != "message" {
            break frame;
        }
    };
    assert_eq!(
        frame,
        json!({"type": "deleted", "seq": seq, "deleted_by": leader.id})
    );
    let (deleted_by,): (Option<i64>,) =
        sqlx::query_as("SELECT deleted_by FROM chat_messages WHERE party_id = $1 AND seq = $2")
            .bind(party)
            .bind(seq)
            .fetch_one(app.db().pool())
            .await
            .unwrap();
    assert_eq!(deleted_by, Some(leader.id));
}

async fn members_report_a_message_once(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let mut b = connect(&app, &bob, party, None).await;
    send(&mut b, "1", "buy my coins").await;
    let seq = next(&mut b).await["seq"].as_i64().unwrap();
    let path = format!("/api/v1/parties/{party}/chat/messages/{seq}/report");
    let res = app
        .post(&leader, &path, &json!({"reason": "  spam  "}))
        .await;
    assert_eq!(res.status(), 201);
    let report: Value = res.json().await.unwrap();
    assert_eq!(
        (report["seq"].as_i64(), report["reason"].as_str()),
        (Some(seq), Some("spam"))
    );
    let res = app.post(&leader, &path, &json!({"reason": "again"})).await;
    crate::common::assert_problem(res, 409, "already_reported").await;

    let res = app.post(&leader, &path, &json!({"reason": "   "})).await;
    let body = crate::common::assert_problem(res, 422, "validation_failed").await;
    assert_eq!(body["field"], "reason");
    let stranger = app.user("stranger").await;
    let res = app.post(&stranger, &path, &json!({"reason": "spam"})).await;
    crate::common::assert_problem(res, 403, "not_a_member").await;
    let res = app
        .post(
            &leader,
            &format!("/api/v1/parties/{party}/chat/messages/{}/report", seq + 100),
            &json!({"reason": "spam"}),
        )
        .await;
    crate::common::assert_problem(res, 404, "not_found").await;

    let stored: Vec<(i64, String)> = sqlx::query_as(
        "SELECT r.reporter_id, r.reason FROM chat_reports r \
         JOIN chat_messages m ON m.id = r.message_id WHERE m.party_id = $1",
    )
    .bind(party)
    .fetch_all(app.db().pool())
    .await
    .unwrap();
    assert_eq!(stored, vec![(leader.id, "spam".to_owned())]);

    // Operators read the reports with the message; nobody else may.
    let res = app.get(Some(&leader), "/api/v1/admin/chat-reports").await;
    crate::common::assert_problem(res, 403, "forbidden").await;
    let ops = app.operator().await;
    let page: Value = app
        .get(Some(&ops), "/api/v1/admin/chat-reports")
        .await
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(
        (
            items[0]["party_id"].as_i64(),
            items[0]["seq"].as_i64(),
            items[0]["sender_id"].as_i64(),
            items[0]["text"].as_str(),
            items[0]["reporter_id"].as_i64(),
            items[0]["reason"].as_str(),
        ),
        (
            Some(party),
            Some(seq),
            Some(bob.id),
            Some("buy my coins"),
            Some(leader.id),
            Some("spam")
        )
    );
    assert!(page["next_cursor"].is_null());
}
