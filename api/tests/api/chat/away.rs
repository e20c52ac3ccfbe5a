//! "New messages" notifications for members with no open socket: one per quiet period, under the
//! app's clock.

use std::time::Duration;

use serde_json::Value;

use super::{connect, next, next_notice, room, send};
use crate::common::{eventually, TestApp, TestUser};

/// Chat test settings with the away sweep every 50 ms, and presence that outlasts the test's
/// moves of the clock (an hour of heartbeat: present for three), so an open socket stays present.
fn settings() -> api::state::Settings {
    let mut settings = super::settings();
    settings.chat.notify_every = Duration::from_millis(50);
    settings.chat.heartbeat = Duration::from_secs(3_600);
    settings
}

/// `user`'s `chat_message` notifications, newest first.
async fn chat_notices(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let inbox: Value = app
        .get(Some(user), "/api/v1/me/notifications?limit=100")
        .await
        .json()
        .await
        .unwrap();
    inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "chat_message")
        .cloned()
        .collect()
}

/// Runs one sweep here, so whatever is due now has been written when it returns.
async fn sweep(app: &TestApp) {
    api::chat::away::sweep(&app.state).await.unwrap();
}

on_both_backends!(with super::settings() => an_away_member_gets_one_new_messages_notification_per_quiet_period);

async fn an_away_member_gets_one_new_messages_notification_per_quiet_period(app: TestApp) {
    let (party, leader, bob) = room(&app).await;
    let mut a = connect(&app, &leader, party, None).await;
    for i in 0..3 {
        send(&mut a, &format!("m{i}"), "anyone there?").await;
        next(&mut a).await;
    }
    // Bob has no socket: the background sweep tells him, once for the three.
    let first = eventually("bob is told of new messages", || async {
        let got = chat_notices(&app, &bob).await;
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["party_id"], party);
    assert_eq!(first[0]["body"], "신라면 나눠요", "names the party");
    // More messages within the quiet period (sent after the notice: the clock moves a little):
    // nothing more.
    app.state.clock.advance_ms(1);
    send(&mut a, "m3", "hello?").await;
    next(&mut a).await;
    sweep(&app).await;
    assert_eq!(chat_notices(&app, &bob).await.len(), 1);
    // The leader has a socket open (and sent them): never told.
    assert!(chat_notices(&app, &leader).await.is_empty());

    // Once the quiet period is over, the message sent since the first notice earns one more.
    let quiet = api::state::millis(app.state.settings.chat.notify_quiet);
    app.state.clock.advance_ms(quiet);
    sweep(&app).await;
    assert_eq!(chat_notices(&app, &bob).await.len(), 2);
    // With nothing new, another period passes without one.
    app.state.clock.advance_ms(quiet);
    sweep(&app).await;
    assert_eq!(chat_notices(&app, &bob).await.len(), 2);

    // New messages while bob is in the room (a socket open): not notified.
    let mut b = connect(&app, &bob, party, None).await;
    send(&mut a, "m4", "there you are").await;
    next(&mut a).await;
    assert_eq!(next(&mut b).await["text"], "there you are");
    app.state.clock.advance_ms(quiet);
    sweep(&app).await;
    assert_eq!(chat_notices(&app, &bob).await.len(), 2);
}

/// Chat test settings whose background sweep stays out of the way (once an hour), so only the
/// sweeps the test runs write notifications.
fn manual_settings() -> api::state::Settings {
    let mut settings = settings();
    settings.chat.notify_every = Duration::from_secs(3_600);
    settings
}

on_both_backends!(with super::manual_settings() => a_page_of_present_members_does_not_hide_the_rooms_after_it);

async fn a_page_of_present_members_does_not_hide_the_rooms_after_it(app: TestApp) {
    let mut rooms = Vec::new();
    for _ in 0..3 {
        rooms.push(room(&app).await);
    }
    rooms.sort_by_key(|(party, _, _)| *party);
    // In the first room (in party order) bob is present; in the other two he is away.
    let (first, _, present) = &rooms[0];
    let mut b = connect(&app, present, *first, None).await;
    assert_eq!(next_notice(&mut b).await["type"], "presence", "in the room");
    let mut leaders = Vec::new();
    for (i, (party, leader, _)) in rooms.iter().enumerate() {
        let mut a = connect(&app, leader, *party, None).await;
        send(&mut a, &format!("r{i}"), "hi all").await;
        next(&mut a).await;
        leaders.push(a);
    }
    // One room a page: the first page has nobody to tell, and the sweep goes on past it.
    let written = api::chat::away::sweep_in_pages(&app.state, 1)
        .await
        .unwrap();
    assert_eq!(written, 2);
    assert!(chat_notices(&app, present).await.is_empty());
    for (party, _, away) in &rooms[1..] {
        let got = chat_notices(&app, away).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["party_id"], *party);
    }
    // A second sweep, in pages of two, finds nothing new.
    assert_eq!(
        api::chat::away::sweep_in_pages(&app.state, 2)
            .await
            .unwrap(),
        0
    );
}
