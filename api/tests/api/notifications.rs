//! Notifications end to end: wishlists, the inbox written by the `notifications` consumer, the
//! SSE stream with replay (across instances on PostgreSQL + Redis), and reminders before the meet
//! under the app's clock. Tests wait for effects by polling, never for a due time.

use std::time::Duration;

use crate::common;

use common::{assert_problem, eventually, join, time_of, TestApp, TestUser};
use serde_json::{json, Value};

on_both_backends!(with crate::common::jobs_settings() =>
    wishlists_are_added_listed_and_deleted_and_bad_shapes_are_refused,
    a_user_whose_wishlists_all_match_gets_one_notification_and_nearby_misses_get_none,
    members_and_leaders_are_told_of_changes_but_never_of_their_own,
    the_inbox_pages_newest_first_and_marks_read,
    a_replayed_event_writes_no_second_notification,
    a_notification_written_while_away_arrives_on_reconnect,
    an_id_that_cannot_be_replayed_gets_reset,
    a_meet_moved_twice_gives_one_reminder_of_each_lead_per_member_at_the_new_times,
    a_cancelled_party_gets_no_reminders,
);

const HOUR: i64 = 3_600_000;
/// Where `TestApp::market_at` parties meet in these tests.
const LAT: f64 = 37.5558;
const LNG: f64 = 126.9063;

async fn inbox(app: &TestApp, user: &TestUser, query: &str) -> Value {
    let res = app
        .get(Some(user), &format!("/api/v1/me/notifications{query}"))
        .await;
    assert_eq!(res.status(), 200, "inbox");
    res.json().await.unwrap()
}

/// Waits until `user` has `n` notifications; returns them, newest first.
async fn wait_for_inbox(app: &TestApp, user: &TestUser, n: usize) -> Vec<Value> {
    eventually(&format!("{n} notifications"), || async {
        let items = inbox(app, user, "?limit=100").await["items"]
            .as_array()
            .unwrap()
            .clone();
        (items.len() >= n).then_some(items)
    })
    .await
}

fn kinds(items: &[Value]) -> Vec<&str> {
    items.iter().map(|n| n["kind"].as_str().unwrap()).collect()
}

async fn wish(app: &TestApp, user: &TestUser, body: Value) -> reqwest::Response {
    app.post(user, "/api/v1/me/wishlists", &body).await
}

async fn wish_ok(app: &TestApp, user: &TestUser, body: Value) -> i64 {
    let res = wish(app, user, body.clone()).await;
    assert_eq!(res.status(), 201, "{body}");
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn create_party(
    app: &TestApp,
    leader: &TestUser,
    market: i64,
    item: i64,
    capacity: i64,
) -> Value {
    let res = app
        .post(
            leader,
            "/api/v1/parties",
            &app.party_body(market, item, capacity),
        )
        .await;
    assert_eq!(res.status(), 201, "create party");
    res.json().await.unwrap()
}

async fn move_meet(app: &TestApp, leader: &TestUser, id: i64, meet_at: i64) {
    let res = app
        .patch(
            leader,
            &format!("/api/v1/parties/{id}"),
            &json!({ "meet_at": api::time::Timestamp(meet_at) }),
        )
        .await;
    assert_eq!(res.status(), 200, "move the meet");
}

fn ring(points: &[(f64, f64)]) -> Value {
    let mut coords: Vec<Value> = points.iter().map(|(lng, lat)| json!([lng, lat])).collect();
    coords.push(coords[0].clone());
    json!({ "type": "Polygon", "coordinates": [coords] })
}

/// A square (0.02°) with a notch cut down from its top edge to `tip_lat` at the party's longitude:
/// concave, with the party below the tip (inside) or in the notch (outside).
fn notched(tip_lat: f64) -> Value {
    ring(&[
        (LNG - 0.01, LAT - 0.01),
        (LNG + 0.01, LAT - 0.01),
        (LNG + 0.01, LAT + 0.01),
        (LNG + 0.005, LAT + 0.01),
        (LNG, tip_lat),
        (LNG - 0.005, LAT + 0.01),
        (LNG - 0.01, LAT + 0.01),
    ])
}

async fn wishlists_are_added_listed_and_deleted_and_bad_shapes_are_refused(app: TestApp) {
    let user = app.user("찜").await;
    let (market, item) = app.market_and_item().await;
    let m = wish_ok(&app, &user, json!({"kind": "market", "market_id": market})).await;
    wish_ok(&app, &user, json!({"kind": "item", "item_id": item})).await;
    wish_ok(&app, &user, json!({"kind": "keyword", "keyword": " 한우 "})).await;
    wish_ok(
        &app,
        &user,
        json!({"kind": "area", "center": {"lat": LAT, "lng": LNG}, "radius_m": 3000}),
    )
    .await;
    wish_ok(
        &app,
        &user,
        json!({"kind": "area", "polygon": notched(LAT + 0.004)}),
    )
    .await;
    let listed: Value = app
        .get(Some(&user), "/api/v1/me/wishlists")
        .await
        .json()
        .await
        .unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(kinds(items), ["area", "area", "keyword", "item", "market"]);
    assert_eq!(items[2]["keyword"], "한우");
    assert_eq!(items[1]["radius_m"], 3000.0);
    assert_eq!(items[0]["polygon"]["type"], "Polygon");

    let bowtie = ring(&[
        (127.0, 37.5),
        (127.01, 37.51),
        (127.01, 37.5),
        (127.0, 37.51),
    ]);
    let body = assert_problem(
        wish(&app, &user, json!({"kind": "area", "polygon": bowtie})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "polygon.coordinates");
    let body = assert_problem(
        wish(
            &app,
            &user,
            json!({"kind": "area", "center": {"lat": LAT, "lng": LNG}, "radius_m": 10001}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "radius_m");
    let open = json!({"type": "Polygon", "coordinates": [[[127.0, 37.5], [127.01, 37.5], [127.0, 37.51]]]});
    let body = assert_problem(
        wish(&app, &user, json!({"kind": "area", "polygon": open})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "polygon.coordinates");
    let body = assert_problem(
        wish(&app, &user, json!({"kind": "market", "market_id": 999_999})).await,
        422,
        "market_not_found",
    )
    .await;
    assert_eq!(body["field"], "market_id");
    for i in 1..10 {
        wish_ok(
            &app,
            &user,
            json!({"kind": "keyword", "keyword": format!("단어{i}")}),
        )
        .await;
    }
    assert_problem(
        wish(
            &app,
            &user,
            json!({"kind": "keyword", "keyword": "열한번째"}),
        )
        .await,
        409,
        "too_many_keywords",
    )
    .await;

    assert_eq!(
        app.delete(&user, &format!("/api/v1/me/wishlists/{m}"))
            .await
            .status(),
        204
    );
    assert_eq!(
        app.delete(&user, &format!("/api/v1/me/wishlists/{m}"))
            .await
            .status(),
        404
    );
    let other = app.user("남").await;
    let theirs = wish_ok(&app, &other, json!({"kind": "keyword", "keyword": "쌀"})).await;
    assert_eq!(
        app.delete(&user, &format!("/api/v1/me/wishlists/{theirs}"))
            .await
            .status(),
        404,
        "not mine"
    );
}

async fn a_user_whose_wishlists_all_match_gets_one_notification_and_nearby_misses_get_none(
    app: TestApp,
) {
    let (market, item) = (
        app.market_at(LAT, LNG).await,
        app.item_in("030102001").await,
    );
    let leader = app.user("리더").await;
    let all = app.user("전부").await;
    let concave_in = app.user("오목안").await;
    let concave_out = app.user("오목밖").await;
    let edge_out = app.user("변밖").await;
    let circle_out = app.user("원밖").await;
    for body in [
        json!({"kind": "market", "market_id": market}),
        json!({"kind": "item", "item_id": item}),
        json!({"kind": "keyword", "keyword": "신라면"}),
        json!({"kind": "area", "center": {"lat": LAT, "lng": LNG}, "radius_m": 500}),
        json!({"kind": "area", "polygon": notched(LAT + 0.004)}),
    ] {
        wish_ok(&app, &all, body).await;
    }
    // The leader's own wishlist matches too: they are not told of their own party.
    wish_ok(
        &app,
        &leader,
        json!({"kind": "market", "market_id": market}),
    )
    .await;
    // The party lies ~44 m below the notch's tip: inside the concave shape.
    wish_ok(
        &app,
        &concave_in,
        json!({"kind": "area", "polygon": notched(LAT + 0.0004)}),
    )
    .await;
    // The tip is ~90 m below the party: it sits in the notch, outside.
    wish_ok(
        &app,
        &concave_out,
        json!({"kind": "area", "polygon": notched(LAT - 0.0008)}),
    )
    .await;
    // A square whose east edge is ~9 m west of the party.
    let west = ring(&[
        (LNG - 0.02, LAT - 0.01),
        (LNG - 0.0001, LAT - 0.01),
        (LNG - 0.0001, LAT + 0.01),
        (LNG - 0.02, LAT + 0.01),
    ]);
    wish_ok(&app, &edge_out, json!({"kind": "area", "polygon": west})).await;
    // A circle whose edge stops ~10 m short of the party (its centre 0.009° ≈ 1,000.8 m north).
    wish_ok(
        &app,
        &circle_out,
        json!({"kind": "area", "center": {"lat": LAT + 0.009, "lng": LNG}, "radius_m": 990}),
    )
    .await;

    let party = create_party(&app, &leader, market, item, 4).await;
    // One event, one batch: once one of them is told, everyone who will be is.
    let got = wait_for_inbox(&app, &concave_in, 1).await;
    assert_eq!(got[0]["kind"], "party_created");
    let got = wait_for_inbox(&app, &all, 1).await;
    assert_eq!(
        got.len(),
        1,
        "one notification however many wishlists match"
    );
    assert_eq!(got[0]["party_id"], party["id"]);
    assert_eq!(got[0]["seq"], 1);
    assert_eq!(got[0]["read"], false);
    for (who, user) in [
        ("leader", &leader),
        ("concave_out", &concave_out),
        ("edge_out", &edge_out),
        ("circle_out", &circle_out),
    ] {
        let items = inbox(&app, user, "").await;
        assert_eq!(items["items"], json!([]), "{who} was told");
        assert_eq!(items["unread"], 0);
    }
}

async fn members_and_leaders_are_told_of_changes_but_never_of_their_own(app: TestApp) {
    let leader = app.user("리더").await;
    let stays = app.user("남는이").await;
    let leaves = app.user("떠나는이").await;
    let party = app.party(&leader, 3).await;
    let id = party["id"].as_i64().unwrap();
    join(&app, &stays, id).await;
    join(&app, &leaves, id).await; // fills the party
    let res = app
        .delete(&leaves, &format!("/api/v1/parties/{id}/bookings/me"))
        .await;
    assert_eq!(res.status(), 200, "leave");
    move_meet(&app, &leader, id, time_of(&party, "meet_at") + HOUR).await;
    let res = app
        .post(
            &leader,
            &format!("/api/v1/parties/{id}/cancel"),
            &json!({"reason": "비가 와요"}),
        )
        .await;
    assert_eq!(res.status(), 200, "cancel");

    let told = wait_for_inbox(&app, &stays, 2).await;
    assert_eq!(kinds(&told), ["party_cancelled", "party_changed"]);
    assert!(told.iter().all(|n| n["party_id"] == id));
    let told = wait_for_inbox(&app, &leader, 2).await;
    assert_eq!(
        kinds(&told),
        ["member_left", "party_full"],
        "not of their own edit or cancel"
    );
    assert_eq!(
        inbox(&app, &leaves, "").await["items"],
        json!([]),
        "gone before the move and the cancel"
    );
}

async fn the_inbox_pages_newest_first_and_marks_read(app: TestApp) {
    let leader = app.user("리더").await;
    let fan = app.user("팬").await;
    let (market, item) = app.market_and_item().await;
    wish_ok(&app, &fan, json!({"kind": "market", "market_id": market})).await;
    for _ in 0..3 {
        create_party(&app, &leader, market, item, 4).await;
    }
    wait_for_inbox(&app, &fan, 3).await;
    let first = inbox(&app, &fan, "?limit=2").await;
    let seqs: Vec<i64> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 2]);
    assert_eq!(first["unread"], 3);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = inbox(&app, &fan, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(rest["items"][0]["seq"], 1);
    assert_eq!(rest["next_cursor"], Value::Null);

    let res = app
        .post(&fan, "/api/v1/me/notifications/2/read", &json!(null))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["read"], true);
    let unread = inbox(&app, &fan, "?unread=true").await;
    let seqs: Vec<i64> = unread["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 1]);
    assert_eq!(unread["unread"], 2);
    assert_problem(
        app.post(&fan, "/api/v1/me/notifications/99/read", &json!(null))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.post(&leader, "/api/v1/me/notifications/1/read", &json!(null))
            .await,
        404,
        "not_found",
    )
    .await;
    let res = app
        .post(&fan, "/api/v1/me/notifications/read-all", &json!(null))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"marked": 2, "unread": 0})
    );
    assert_eq!(inbox(&app, &fan, "").await["unread"], 0);
}

async fn consumer_position(app: &TestApp) -> (i64, i64) {
    sqlx::query_as("SELECT last_tx, last_id FROM outbox_consumers WHERE name = 'notifications'")
        .fetch_one(app.db().pool())
        .await
        .unwrap()
}

async fn a_replayed_event_writes_no_second_notification(app: TestApp) {
    let leader = app.user("리더").await;
    let fan = app.user("팬").await;
    let (market, item) = app.market_and_item().await;
    wish_ok(&app, &fan, json!({"kind": "market", "market_id": market})).await;
    create_party(&app, &leader, market, item, 4).await;
    wait_for_inbox(&app, &fan, 1).await;
    let reached = consumer_position(&app).await;
    // Deliver every event again, as a consumer whose position was lost would.
    sqlx::query(
        "UPDATE outbox_consumers SET last_tx = 0, last_id = 0 WHERE name = 'notifications'",
    )
    .execute(app.db().pool())
    .await
    .unwrap();
    eventually("the consumer went through the events again", || async {
        (consumer_position(&app).await >= reached).then_some(())
    })
    .await;
    let items = inbox(&app, &fan, "").await;
    assert_eq!(items["items"].as_array().unwrap().len(), 1, "{items}");
    // The next notification follows without a gap.
    create_party(&app, &leader, market, item, 4).await;
    let items = wait_for_inbox(&app, &fan, 2).await;
    assert_eq!(items[0]["seq"], 2);
}

/// Reads SSE events (name, id, JSON data) until `n` have arrived (comments skipped), for 20 s.
async fn sse_events(res: &mut reqwest::Response, n: usize) -> Vec<(String, String, Value)> {
    let mut buf = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while events.len() < n {
        let chunk = tokio::time::timeout_at(deadline, res.chunk())
            .await
            .expect("SSE event in time")
            .expect("SSE stream")
            .expect("the stream went on");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut name, mut id, mut data) =
                (String::from("message"), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if !data.is_empty() {
                events.push((name, id, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

async fn open_stream(
    app: &TestApp,
    user: &TestUser,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .get(app.url("/api/v1/me/notifications/stream"))
        .bearer_auth(&user.token);
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    res
}

async fn a_notification_written_while_away_arrives_on_reconnect(app: TestApp) {
    let leader = app.user("리더").await;
    let fan = app.user("팬").await;
    let (market, item) = app.market_and_item().await;
    wish_ok(&app, &fan, json!({"kind": "market", "market_id": market})).await;
    let mut stream = open_stream(&app, &fan, None).await;
    let first = create_party(&app, &leader, market, item, 4).await;
    let got = sse_events(&mut stream, 1).await;
    assert_eq!(got[0].0, "notification");
    assert_eq!(got[0].1, "1");
    assert_eq!(got[0].2["party_id"], first["id"]);
    assert_eq!(got[0].2["seq"], 1);
    drop(stream);

    // Written while the client is away.
    let away = create_party(&app, &leader, market, item, 4).await;
    wait_for_inbox(&app, &fan, 2).await;
    // Scale-out: back on another instance (the embedded mode has one).
    let sibling = match app.backend {
        common::Backend::Scaled => Some(app.spawn_sibling_with(common::test_settings()).await),
        common::Backend::Embedded => None,
    };
    let other = sibling.as_ref().unwrap_or(&app);
    let mut stream = open_stream(other, &fan, Some("1")).await;
    let got = sse_events(&mut stream, 1).await;
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str()),
        ("notification", "2")
    );
    assert_eq!(got[0].2["party_id"], away["id"]);
    let live = create_party(&app, &leader, market, item, 4).await;
    let got = sse_events(&mut stream, 1).await;
    assert_eq!(got[0].1, "3", "then live ones, none repeated");
    assert_eq!(got[0].2["party_id"], live["id"]);

    // The query form, for clients that cannot set the header.
    let res = app
        .client
        .get(other.url("/api/v1/me/notifications/stream?last_event_id=0"))
        .bearer_auth(&fan.token)
        .send()
        .await
        .unwrap();
    let mut replay = res;
    let got = sse_events(&mut replay, 3).await;
    let ids: Vec<&str> = got.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
}

async fn an_id_that_cannot_be_replayed_gets_reset(app: TestApp) {
    let leader = app.user("리더").await;
    let fan = app.user("팬").await;
    let (market, item) = app.market_and_item().await;
    wish_ok(&app, &fan, json!({"kind": "market", "market_id": market})).await;
    create_party(&app, &leader, market, item, 4).await;
    wait_for_inbox(&app, &fan, 1).await;
    for (last, unknown) in [(1, "999"), (2, "not-an-id")] {
        let mut stream = open_stream(&app, &fan, Some(unknown)).await;
        let got = sse_events(&mut stream, 1).await;
        assert_eq!(got[0].0, "reset", "{unknown}");
        assert_eq!(got[0].1, last.to_string(), "resumes after my last");
        assert_eq!(got[0].2["last_seq"], last);
        // And goes on live from there.
        create_party(&app, &leader, market, item, 4).await;
        let got = sse_events(&mut stream, 1).await;
        assert_eq!(got[0].0, "notification");
        assert_eq!(got[0].1, (last + 1).to_string());
    }
}

async fn reminders_of(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let items = inbox(app, user, "?limit=100").await["items"]
        .as_array()
        .unwrap()
        .clone();
    items
        .into_iter()
        .filter(|n| n["kind"] == "reminder")
        .collect()
}

async fn wait_for_reminders(app: &TestApp, user: &TestUser, n: usize) -> Vec<Value> {
    eventually(&format!("{n} reminders"), || async {
        let got = reminders_of(app, user).await;
        (got.len() >= n).then_some(got)
    })
    .await
}

async fn a_meet_moved_twice_gives_one_reminder_of_each_lead_per_member_at_the_new_times(
    app: TestApp,
) {
    let leader = app.user("리더").await;
    let member = app.user("멤버").await;
    let party = app.party(&leader, 4).await;
    let id = party["id"].as_i64().unwrap();
    join(&app, &member, id).await;
    let first = time_of(&party, "meet_at");
    move_meet(&app, &leader, id, first + 24 * HOUR).await;
    let meet = first + 48 * HOUR;
    move_meet(&app, &leader, id, meet).await;

    // A minute into the last day before the (final) meet: the old times' reminders never come.
    app.state
        .clock
        .advance_ms(meet - 24 * HOUR + 60_000 - app.state.now());
    for user in [&leader, &member] {
        let got = wait_for_reminders(&app, user, 1).await;
        assert_eq!(got[0]["title"], "내일 공구 모임이 있어요");
        assert!(time_of(&got[0], "created_at") >= meet - 24 * HOUR);
    }
    app.state
        .clock
        .advance_ms(meet - HOUR + 60_000 - app.state.now());
    for user in [&leader, &member] {
        let got = wait_for_reminders(&app, user, 2).await;
        assert_eq!(got[0]["title"], "한 시간 뒤 공구 모임이에요");
        assert!(time_of(&got[0], "created_at") >= meet - HOUR);
    }
    // Later sweeps send nothing more: what the sweeper reads is only what was not sent.
    let reached = consumer_position(&app).await;
    let another = app.party(&leader, 4).await; // an event the consumer must pass
    eventually("the consumer passed a later event", || async {
        (consumer_position(&app).await > reached).then_some(())
    })
    .await;
    assert!(another["id"].is_i64());
    for user in [&leader, &member] {
        assert_eq!(reminders_of(&app, user).await.len(), 2, "one of each lead");
    }
}

async fn a_cancelled_party_gets_no_reminders(app: TestApp) {
    let leader = app.user("리더").await;
    let member = app.user("멤버").await;
    let cancelled = app.party(&leader, 4).await;
    let kept = app.party(&leader, 4).await;
    for party in [&cancelled, &kept] {
        join(&app, &member, party["id"].as_i64().unwrap()).await;
    }
    let id = cancelled["id"].as_i64().unwrap();
    let res = app
        .post(
            &leader,
            &format!("/api/v1/parties/{id}/cancel"),
            &json!({"reason": "취소"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    // Half an hour before both meets: only the 1 h reminder is due, for the kept party only.
    app.state
        .clock
        .advance_ms(time_of(&kept, "meet_at") - HOUR / 2 - app.state.now());
    let got = wait_for_reminders(&app, &member, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["party_id"], kept["id"]);
    let all = inbox(&app, &member, "?limit=100").await;
    assert_eq!(
        kinds(all["items"].as_array().unwrap()),
        ["reminder", "party_cancelled"]
    );
}
