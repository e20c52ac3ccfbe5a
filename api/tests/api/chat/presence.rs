//! Presence across instances and its expiry, typing notices and their throttle, and a client that
//! never reads.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::{
    ack, connect, member, next, next_notice, other_instance, room, send, ticket, ws_url, Ws,
};
use crate::common::TestApp;

/// Chat test settings with a heartbeat every 50 ms, so presence is renewed (and read) often.
fn settings() -> api::state::Settings {
    let mut settings = super::settings();
    settings.chat.heartbeat = Duration::from_millis(50);
    settings
}

/// The next `presence` frame's list.
async fn presence(ws: &mut Ws) -> Vec<i64> {
    loop {
        let v = next_notice(ws).await;
        if v["type"] == "presence" {
            return serde_json::from_value(v["online"].clone()).unwrap();
        }
    }
}

/// Presence frames until one lists exactly `want`.
async fn presence_becomes(ws: &mut Ws, want: &[i64]) {
    let mut want = want.to_vec();
    want.sort_unstable();
    while presence(ws).await != want {}
}

on_both_backends!(with super::settings() =>
    presence_lists_the_members_connected_on_any_instance,
    a_socket_that_died_without_closing_drops_out_of_presence_when_its_heartbeats_stop,
    typing_reaches_the_others_throttled,
);

async fn presence_lists_the_members_connected_on_any_instance(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let other = other_instance(&app).await;
    let mut a = connect(&app, &leader, party, None).await;
    assert_eq!(presence(&mut a).await, [leader.id], "sent once connected");
    let mut b = connect(other.as_ref().unwrap_or(&app), &bob, party, None).await;
    let both = {
        let mut both = vec![leader.id, bob.id];
        both.sort_unstable();
        both
    };
    assert_eq!(presence(&mut b).await, both);
    presence_becomes(&mut a, &both).await;
    b.close(None).await.unwrap();
    presence_becomes(&mut a, &[leader.id]).await;
}

async fn a_socket_that_died_without_closing_drops_out_of_presence_when_its_heartbeats_stop(
    app: TestApp,
) {
    let (party, leader, bob) = room(&app).await;
    let mut a = connect(&app, &leader, party, None).await;
    assert_eq!(presence(&mut a).await, [leader.id]);
    // Bob's socket on an instance that then died: present until its deadline, never removed.
    let ttl = app.state.settings.chat.presence_ttl_ms();
    app.state
        .live
        .presence
        .beat(
            &store::topics::chat(party),
            bob.id,
            "dead-instance",
            app.state.now(),
            ttl,
        )
        .await
        .unwrap();
    let mut both = vec![leader.id, bob.id];
    both.sort_unstable();
    presence_becomes(&mut a, &both).await;
    // Past the deadline the leader's own heartbeat renews it, and bob is gone.
    app.state.clock.advance_ms(ttl);
    presence_becomes(&mut a, &[leader.id]).await;
}

/// The next frame, skipping presence.
async fn next_not_presence(ws: &mut Ws) -> Value {
    loop {
        let v = next_notice(ws).await;
        if v["type"] != "presence" {
            return v;
        }
    }
}

async fn typing_reaches_the_others_throttled(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let other = other_instance(&app).await;
    let mut a = connect(&app, &leader, party, None).await;
    let mut b = connect(other.as_ref().unwrap_or(&app), &bob, party, None).await;
    presence_becomes(&mut a, &{
        let mut both = vec![leader.id, bob.id];
        both.sort_unstable();
        both
    })
    .await;
    let typing = json!({"type": "typing"}).to_string();
    for _ in 0..3 {
        b.send(WsMessage::Text(typing.clone().into()))
            .await
            .unwrap();
    }
    send(&mut b, "t1", "hi").await;
    // One notice for the three (the app's clock did not move), then the message.
    assert_eq!(
        next_not_presence(&mut a).await,
        json!({"type": "typing", "user_id": bob.id})
    );
    let m = next_not_presence(&mut a).await;
    assert_eq!(
        (m["type"].as_str(), m["text"].as_str()),
        (Some("message"), Some("hi"))
    );
    // The sender is not told of its own typing: its next frame is its message's echo.
    let echo = next_not_presence(&mut b).await;
    assert_eq!(echo["type"], "message", "{echo}");
    // Once the throttle's time has passed, typing is passed on again.
    app.state.clock.advance_ms(2_000);
    if let Some(other) = &other {
        other.state.clock.advance_ms(2_000);
    }
    b.send(WsMessage::Text(typing.into())).await.unwrap();
    assert_eq!(
        next_not_presence(&mut a).await,
        json!({"type": "typing", "user_id": bob.id})
    );
}

/// Chat test settings with a short socket queue, so a client that never reads fills it soon.
fn slow_settings() -> api::state::Settings {
    let mut settings = super::settings();
    settings.chat.send_queue = 16;
    settings
}

on_both_backends!(with super::slow_settings() => a_client_that_never_reads_is_disconnected_and_the_room_flows_on);

/// Connects over a socket with a small receive buffer, so a client that does not read fills up
/// soon.
async fn connect_small(app: &TestApp, user: &crate::common::TestUser, party: i64) -> Ws {
    let t = ticket(app, user).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(app.addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(
        ws_url(app, party, &t, None),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .expect("chat handshake");
    ws
}

async fn a_client_that_never_reads_is_disconnected_and_the_room_flows_on(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let carol = member(&app, party, "carol").await;
    let mut a = connect(&app, &leader, party, None).await;
    let mut c = connect(&app, &carol, party, None).await;
    let mut slow = connect_small(&app, &bob, party).await;
    let mut all = vec![leader.id, bob.id, carol.id];
    all.sort_unstable();
    presence_becomes(&mut c, &all).await;
    // Bob never reads. The leader talks; carol reads along, and sees bob leave the room once his
    // queue is full.
    let text = "가".repeat(2_000);
    let mut last = None;
    let mut bob_gone = false;
    for i in 0..5_000 {
        let id = format!("flood{i}");
        send(&mut a, &id, &text).await;
        ack(&mut a, &id).await;
        loop {
            let v = next_notice(&mut c).await;
            match v["type"].as_str() {
                Some("presence") => {
                    bob_gone |= !v["online"].as_array().unwrap().contains(&json!(bob.id))
                }
                Some("message") => {
                    // Every message, in order (a system message may come between, live).
                    let seq = v["seq"].as_i64().unwrap();
                    if let Some(prev) = last {
                        assert_eq!(seq, prev + 1, "carol gets every message, in order");
                    }
                    last = Some(seq);
                    if v["client_msg_id"] == id.as_str() {
                        break;
                    }
                }
                _ => {}
            }
        }
        if bob_gone {
            break;
        }
    }
    assert!(
        bob_gone,
        "the client that never reads was never disconnected"
    );
    // Bob's connection holds what fitted, then the close frame saying why (read at once: the
    // server gives a client that stopped reading a while to take it, then drops the connection).
    let mut previous: Option<i64> = None;
    let reason = loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), slow.next())
            .await
            .expect("bob's connection ends");
        match msg {
            Some(Ok(WsMessage::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if let (Some(prev), Some(seq)) = (previous, v["seq"].as_i64()) {
                    assert_eq!(seq, prev + 1, "what bob got is in order");
                }
                previous = v["seq"].as_i64().or(previous);
            }
            Some(Ok(WsMessage::Close(Some(frame)))) => {
                break (u16::from(frame.code), frame.reason.to_string())
            }
            Some(Ok(_)) => {}
            other => panic!("closed without a close frame: {other:?}"),
        }
    };
    assert_eq!(reason, (1013, "too_slow".to_owned()));
    // The room flows on after it.
    send(&mut a, "after", "still here").await;
    assert_eq!(next(&mut c).await["text"], "still here");
}
