//! Waiting rooms through HTTP and SSE: passes, exact FIFO admission, never more admissions than
//! free seats, expiry, abandoned entries, closing when full, the automatic opening, and two
//! instances sharing one room.

use crate::common;

use std::time::Duration;

use api::state::Settings;
use common::{assert_problem, test_settings, Backend, TestApp, TestUser};
use futures::future::join_all;
use serde_json::{json, Value};

/// Settings for the queue tests: a fast admitter, a generous pass, and entries that are never
/// abandoned unless a test says so.
fn settings() -> Settings {
    let mut s = test_settings();
    s.queue.rate_per_min = 60_000;
    s.queue.pass_ttl = Duration::from_secs(60);
    s.queue.stale_after = Duration::from_secs(3600);
    s
}

on_both_backends!(with super::settings() =>
    booking_a_party_with_its_room_on_needs_a_pass,
    entering_twice_keeps_the_first_place,
    admission_follows_entry_order_and_never_exceeds_the_free_seats,
    an_unused_pass_expires_and_its_seat_goes_to_the_next_person,
    when_the_party_fills_everyone_waiting_is_told_the_room_closed,
    a_follower_sees_its_position_and_then_its_admission_over_sse,
    passes_are_bound_to_their_user_and_party,
    bad_waiting_room_requests_are_refused_with_problems,
    racing_entrants_are_admitted_in_entry_order_and_never_overbook,
    the_leader_sees_and_pauses_the_room,
);

on_both_backends!(with super::stale_settings() => an_abandoned_entry_is_dropped_when_its_turn_comes);
on_both_backends!(with super::burst_settings() => a_burst_of_join_attempts_turns_the_room_on);
on_both_backends!(with super::operator_settings() => an_operator_sees_and_pauses_any_room);

fn operator_settings() -> Settings {
    let mut s = settings();
    s.operator_emails = vec![crate::common::OPERATOR_EMAIL.into()];
    s
}

async fn an_operator_sees_and_pauses_any_room(app: TestApp) {
    let (_leader, id) = party_with_room(&app, 5, false).await;
    let ops = app.operator().await;
    let stranger = app.user("stranger").await;
    assert_eq!(room(&app, &ops, id).await["state"], "open");
    set_room(&app, &ops, id, "pause").await;
    assert_eq!(room(&app, &ops, id).await["state"], "paused");
    assert_problem(
        app.post(
            &stranger,
            &format!("/api/v1/parties/{id}/queue/resume"),
            &json!(null),
        )
        .await,
        403,
        "not_party_leader",
    )
    .await;
}

fn stale_settings() -> Settings {
    let mut s = settings();
    s.queue.stale_after = Duration::from_secs(10);
    s
}

fn burst_settings() -> Settings {
    let mut s = settings();
    s.queue.auto_threshold = 5;
    s
}

async fn users(app: &TestApp, n: usize) -> Vec<TestUser> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(app.user(&format!("q{i}")).await);
    }
    out
}

/// A party led by a fresh user, with its room open (and paused when `paused`); returns the leader
/// and the party id.
async fn party_with_room(app: &TestApp, capacity: i64, paused: bool) -> (TestUser, i64) {
    party_with_room_opened_with(app, capacity, paused, json!({})).await
}

/// A party whose leader opened its room with `open` as the body.
async fn party_with_room_opened_with(
    app: &TestApp,
    capacity: i64,
    paused: bool,
    open: Value,
) -> (TestUser, i64) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, capacity).await;
    let id = party["id"].as_i64().unwrap();
    let res = app
        .post(&leader, &format!("/api/v1/parties/{id}/queue/open"), &open)
        .await;
    assert_eq!(res.status(), 200, "open the room");
    if paused {
        let res = app
            .post(
                &leader,
                &format!("/api/v1/parties/{id}/queue/pause"),
                &json!(null),
            )
            .await;
        assert_eq!(res.status(), 200, "pause the room");
    }
    (leader, id)
}

async fn enter(app: &TestApp, user: &TestUser, id: i64) -> (u16, Value) {
    let res = app
        .post(user, &format!("/api/v1/parties/{id}/queue"), &json!(null))
        .await;
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn enter_raw(app: &TestApp, user: &TestUser, id: i64) -> reqwest::Response {
    app.post(user, &format!("/api/v1/parties/{id}/queue"), &json!(null))
        .await
}

async fn me(app: &TestApp, user: &TestUser, id: i64) -> Value {
    let res = app
        .get(Some(user), &format!("/api/v1/parties/{id}/queue/me"))
        .await;
    assert_eq!(res.status(), 200, "queue status");
    res.json().await.unwrap()
}

async fn room(app: &TestApp, leader: &TestUser, id: i64) -> Value {
    let res = app
        .get(Some(leader), &format!("/api/v1/parties/{id}/queue"))
        .await;
    assert_eq!(res.status(), 200, "room view");
    res.json().await.unwrap()
}

async fn set_room(app: &TestApp, leader: &TestUser, id: i64, action: &str) {
    let res = app
        .post(
            leader,
            &format!("/api/v1/parties/{id}/queue/{action}"),
            &json!(null),
        )
        .await;
    assert_eq!(res.status(), 200, "{action} the room");
}

/// Polls until `user`'s state is not `waiting` (the admitter runs every 20 ms).
async fn wait_until_not_waiting(app: &TestApp, user: &TestUser, id: i64) -> Value {
    for _ in 0..500 {
        let status = me(app, user, id).await;
        if status["state"] != "waiting" {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("still waiting after 10 s");
}

/// Polls until `user`'s state is `state`. The queue records a passed turn in the step that removes
/// the user, so on the way the user never reads as not in the queue.
async fn eventually_state(app: &TestApp, user: &TestUser, id: i64, state: &str) {
    for _ in 0..500 {
        let res = app
            .get(Some(user), &format!("/api/v1/parties/{id}/queue/me"))
            .await;
        assert_eq!(
            res.status(),
            200,
            "never out of the queue on the way to {state}"
        );
        if res.json::<Value>().await.unwrap()["state"] == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never reached {state}: {}", me(app, user, id).await);
}

/// Polls the room until `check` holds.
async fn wait_for_room(
    app: &TestApp,
    leader: &TestUser,
    id: i64,
    check: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..500 {
        let view = room(app, leader, id).await;
        if check(&view) {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the room never reached the expected state: {}",
        room(app, leader, id).await
    );
}

async fn book(app: &TestApp, user: &TestUser, id: i64, pass: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/api/v1/parties/{id}/bookings")))
        .bearer_auth(&user.token);
    if let Some(pass) = pass {
        req = req.header("admission-pass", pass);
    }
    req.send().await.unwrap()
}

async fn booking_a_party_with_its_room_on_needs_a_pass(app: TestApp) {
    let (leader, id) = party_with_room(&app, 5, false).await;
    let user = app.user("shopper").await;
    let body = assert_problem(book(&app, &user, id, None).await, 403, "admission_required").await;
    assert_eq!(body["field"], "admission-pass");

    let (status, entered) = enter(&app, &user, id).await;
    assert_eq!(status, 201, "{entered}");
    let admitted = wait_until_not_waiting(&app, &user, id).await;
    assert_eq!(admitted["state"], "admitted", "{admitted}");
    let pass = admitted["pass"].as_str().unwrap().to_owned();
    assert!(admitted["pass_expires_at"].is_string());

    assert_eq!(book(&app, &user, id, Some(&pass)).await.status(), 201);
    // The pass was consumed: after leaving, it does not book again.
    assert_eq!(
        app.delete(&user, &format!("/api/v1/parties/{id}/bookings/me"))
            .await
            .status(),
        200
    );
    assert_problem(
        book(&app, &user, id, Some(&pass)).await,
        403,
        "admission_pass_expired",
    )
    .await;

    let view = room(&app, &leader, id).await;
    assert_eq!(view["admitted_total"], 1, "{view}");
    assert_eq!(view["passes_in_flight"], 0, "{view}");
}

async fn entering_twice_keeps_the_first_place(app: TestApp) {
    // 6 admissions a minute: one every 10 s, so each place waits 10 s longer than the one before.
    let (_leader, id) =
        party_with_room_opened_with(&app, 10, true, json!({"rate_per_min": 6})).await;
    let [a, b, c]: [TestUser; 3] = users(&app, 3).await.try_into().unwrap();
    for (i, u) in [&a, &b, &c].into_iter().enumerate() {
        let (status, body) = enter(&app, u, id).await;
        assert_eq!(status, 201);
        assert_eq!(body["state"], "waiting");
        assert_eq!(body["position"], i + 1, "{body}");
        assert_eq!(body["ahead"], i, "{body}");
        assert_eq!(body["estimated_wait_secs"], 10 * (i + 1), "{body}");
    }
    let (status, again) = enter(&app, &a, id).await;
    assert_eq!(status, 200, "entering again is not a new entry");
    assert_eq!(again["position"], 1, "{again}");
    assert_eq!(
        app.delete(&b, &format!("/api/v1/parties/{id}/queue/me"))
            .await
            .status(),
        204
    );
    assert_eq!(me(&app, &c, id).await["position"], 2);
    assert_eq!(me(&app, &a, id).await["position"], 1);
}

async fn admission_follows_entry_order_and_never_exceeds_the_free_seats(app: TestApp) {
    // 4 seats, the leader holds one: 3 free.
    let (leader, id) = party_with_room(&app, 4, true).await;
    let people = users(&app, 8).await;
    for u in &people {
        assert_eq!(enter(&app, u, id).await.0, 201);
    }
    set_room(&app, &leader, id, "resume").await;
    wait_for_room(&app, &leader, id, |v| {
        v["passes_in_flight"] == 3 && v["admitted_total"] == 3
    })
    .await;
    // Give the admitter more rounds: it must not admit past the free seats.
    app.admitter_ticks(3).await;
    for (i, u) in people.iter().enumerate() {
        let status = me(&app, u, id).await;
        if i < 3 {
            assert_eq!(status["state"], "admitted", "person {i}: {status}");
        } else {
            assert_eq!(status["state"], "waiting", "person {i}: {status}");
            assert_eq!(status["position"], i - 2, "person {i}: {status}");
        }
    }
    // One books (the seat moves from in flight to joined): still nobody else fits.
    let pass = me(&app, &people[0], id).await["pass"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(book(&app, &people[0], id, Some(&pass)).await.status(), 201);
    // One gives the pass back: exactly the next person is admitted.
    assert_eq!(
        app.delete(&people[1], &format!("/api/v1/parties/{id}/queue/me"))
            .await
            .status(),
        204
    );
    assert_eq!(
        wait_until_not_waiting(&app, &people[3], id).await["state"],
        "admitted"
    );
    app.admitter_ticks(3).await;
    assert_eq!(me(&app, &people[4], id).await["position"], 1);
    let view = room(&app, &leader, id).await;
    assert_eq!(view["admitted_total"], 4, "{view}");
    assert_eq!(view["passes_in_flight"], 2, "{view}");
    assert_eq!(view["waiting"], 4, "{view}");
}

async fn an_unused_pass_expires_and_its_seat_goes_to_the_next_person(app: TestApp) {
    let (leader, id) = party_with_room(&app, 2, true).await;
    let [a, b]: [TestUser; 2] = users(&app, 2).await.try_into().unwrap();
    enter(&app, &a, id).await;
    enter(&app, &b, id).await;
    set_room(&app, &leader, id, "resume").await;
    let admitted = wait_until_not_waiting(&app, &a, id).await;
    let pass = admitted["pass"].as_str().unwrap().to_owned();
    assert_eq!(me(&app, &b, id).await["state"], "waiting");

    app.state.clock.advance_ms(61_000);
    assert_eq!(
        wait_until_not_waiting(&app, &b, id).await["state"],
        "admitted"
    );
    eventually_state(&app, &a, id, "expired").await;
    assert_problem(
        book(&app, &a, id, Some(&pass)).await,
        403,
        "admission_pass_expired",
    )
    .await;
    wait_for_room(&app, &leader, id, |v| v["expired_total"] == 1).await;
}

async fn an_abandoned_entry_is_dropped_when_its_turn_comes(app: TestApp) {
    let (leader, id) = party_with_room(&app, 5, true).await;
    let [gone, here]: [TestUser; 2] = users(&app, 2).await.try_into().unwrap();
    enter(&app, &gone, id).await;
    enter(&app, &here, id).await;
    app.state.clock.advance_ms(20_000);
    // `here` polls (follows); `gone` does not.
    assert_eq!(me(&app, &here, id).await["position"], 2);
    set_room(&app, &leader, id, "resume").await;
    assert_eq!(
        wait_until_not_waiting(&app, &here, id).await["state"],
        "admitted"
    );
    eventually_state(&app, &gone, id, "expired").await;
    wait_for_room(&app, &leader, id, |v| {
        v["dropped_total"] == 1 && v["admitted_total"] == 1
    })
    .await;
}

/// Reads SSE events (name, JSON data) from a response until `stop` says so or 10 s pass.
async fn sse_events(
    mut res: reqwest::Response,
    stop: impl Fn(&str) -> bool,
) -> Vec<(String, Value)> {
    let mut buf = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let chunk = tokio::time::timeout_at(deadline, res.chunk())
            .await
            .expect("SSE event in time")
            .expect("SSE stream");
        let Some(chunk) = chunk else { return events };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut name = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if data.is_empty() {
                continue; // a keep-alive comment
            }
            let done = stop(&name);
            events.push((name, serde_json::from_str(&data).unwrap()));
            if done {
                return events;
            }
        }
    }
}

async fn follow(app: &TestApp, user: &TestUser, id: i64) -> reqwest::Response {
    let res = app
        .get(Some(user), &format!("/api/v1/parties/{id}/queue/me/events"))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    res
}

async fn when_the_party_fills_everyone_waiting_is_told_the_room_closed(app: TestApp) {
    let (leader, id) = party_with_room(&app, 2, true).await;
    let [a, b, c]: [TestUser; 3] = users(&app, 3).await.try_into().unwrap();
    for u in [&a, &b, &c] {
        enter(&app, u, id).await;
    }
    let follower = follow(&app, &c, id).await;
    let events = tokio::spawn(sse_events(follower, |name| name == "closed"));
    set_room(&app, &leader, id, "resume").await;
    let pass = wait_until_not_waiting(&app, &a, id).await["pass"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(book(&app, &a, id, Some(&pass)).await.status(), 201);

    let events = events.await.unwrap();
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "closed", "{events:?}");
    assert_eq!(data["close_reason"], "full");
    let b_status = me(&app, &b, id).await;
    assert_eq!(b_status["state"], "closed");
    assert_eq!(b_status["close_reason"], "full");
    assert_problem(enter_raw(&app, &c, id).await, 409, "queue_closed").await;
    let view = room(&app, &leader, id).await;
    assert_eq!(view["state"], "closed");
    assert_eq!(view["waiting"], 0);
}

async fn a_follower_sees_its_position_and_then_its_admission_over_sse(app: TestApp) {
    let (leader, id) = party_with_room(&app, 3, true).await;
    let [a, b, c]: [TestUser; 3] = users(&app, 3).await.try_into().unwrap();
    for u in [&a, &b, &c] {
        enter(&app, u, id).await;
    }
    let follower = follow(&app, &c, id).await;
    let events = tokio::spawn(sse_events(follower, |name| name == "admitted"));
    set_room(&app, &leader, id, "resume").await;
    // Two seats: a and b are admitted; a books, b gives up, so c's turn comes.
    let pass_a = wait_until_not_waiting(&app, &a, id).await["pass"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_until_not_waiting(&app, &b, id).await;
    assert_eq!(book(&app, &a, id, Some(&pass_a)).await.status(), 201);
    assert_eq!(
        app.delete(&b, &format!("/api/v1/parties/{id}/queue/me"))
            .await
            .status(),
        204
    );

    let events = events.await.unwrap();
    assert_eq!(events[0].0, "position", "{events:?}");
    assert_eq!(events[0].1["position"], 3, "{events:?}");
    let positions: Vec<u64> = events
        .iter()
        .filter(|(n, _)| n == "position")
        .map(|(_, d)| d["position"].as_u64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[1] <= w[0]),
        "positions never rise: {positions:?}"
    );
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "admitted");
    let pass = data["pass"].as_str().unwrap();
    assert_eq!(book(&app, &c, id, Some(pass)).await.status(), 201);
}

async fn passes_are_bound_to_their_user_and_party(app: TestApp) {
    let (_l1, p1) = party_with_room(&app, 5, false).await;
    let (_l2, p2) = party_with_room(&app, 5, false).await;
    let [a, b]: [TestUser; 2] = users(&app, 2).await.try_into().unwrap();
    enter(&app, &a, p1).await;
    enter(&app, &b, p2).await;
    let pass_a = wait_until_not_waiting(&app, &a, p1).await["pass"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_until_not_waiting(&app, &b, p2).await;
    assert_problem(
        book(&app, &b, p1, Some(&pass_a)).await,
        403,
        "admission_pass_wrong_user",
    )
    .await;
    assert_problem(
        book(&app, &a, p2, Some(&pass_a)).await,
        403,
        "admission_pass_wrong_party",
    )
    .await;
    assert_problem(
        book(&app, &a, p1, Some("garbage")).await,
        403,
        "invalid_admission_pass",
    )
    .await;
    // An access token is not a pass.
    let token = a.token.clone();
    assert_problem(
        book(&app, &a, p1, Some(&token)).await,
        403,
        "invalid_admission_pass",
    )
    .await;
    assert_eq!(book(&app, &a, p1, Some(&pass_a)).await.status(), 201);
}

async fn bad_waiting_room_requests_are_refused_with_problems(app: TestApp) {
    let leader = app.user("leader").await;
    let other = app.user("other").await;
    let party = app.party(&leader, 5).await;
    let id = party["id"].as_i64().unwrap();
    let q = format!("/api/v1/parties/{id}/queue");

    assert_problem(enter_raw(&app, &other, id).await, 409, "queue_off").await;
    assert_problem(
        app.get(Some(&other), &format!("{q}/me")).await,
        409,
        "queue_off",
    )
    .await;
    assert_problem(
        app.post(&other, &format!("{q}/open"), &json!({})).await,
        403,
        "not_party_leader",
    )
    .await;
    let body = assert_problem(
        app.post(&leader, &format!("{q}/open"), &json!({"rate_per_min": 0}))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "rate_per_min");
    let body = assert_problem(
        app.post(
            &leader,
            &format!("{q}/open"),
            &json!({"rate_per_min": "fast"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "rate_per_min");
    let res = app
        .client
        .post(app.url(&format!("{q}/open")))
        .bearer_auth(&leader.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "malformed_request").await;
    // A body must say it is JSON.
    let res = app
        .client
        .post(app.url(&format!("{q}/open")))
        .bearer_auth(&leader.token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported_media_type").await;
    assert_problem(
        app.post(&leader, "/api/v1/parties/999999/queue/open", &json!({}))
            .await,
        404,
        "party_not_found",
    )
    .await;
    assert_eq!(
        app.post(&leader, &format!("{q}/open"), &json!({}))
            .await
            .status(),
        200
    );
    assert_problem(
        app.post(&leader, &format!("{q}/resume"), &json!(null))
            .await,
        409,
        "invalid_queue_state",
    )
    .await;
    assert_problem(app.get(Some(&other), &q).await, 403, "not_party_leader").await;
    assert_problem(
        app.get(Some(&other), &format!("{q}/me")).await,
        404,
        "not_in_queue",
    )
    .await;
    assert_problem(
        app.get(Some(&other), &format!("{q}/me/events")).await,
        404,
        "not_in_queue",
    )
    .await;
    assert_problem(
        app.delete(&other, &format!("{q}/me")).await,
        404,
        "not_in_queue",
    )
    .await;
    assert_problem(enter_raw(&app, &leader, id).await, 409, "already_member").await;
    assert_problem(app.get(None, &format!("{q}/me")).await, 401, "unauthorized").await;
    assert_problem(
        enter_raw(&app, &other, 999_999).await,
        404,
        "party_not_found",
    )
    .await;
}

async fn racing_entrants_are_admitted_in_entry_order_and_never_overbook(app: TestApp) {
    // 11 seats, the leader holds one: 10 free for 60 entrants racing in.
    let (leader, id) = party_with_room(&app, 11, true).await;
    let people = users(&app, 60).await;
    let entered = join_all(people.iter().map(|u| enter(&app, u, id))).await;
    let mut order: Vec<(u64, usize)> = entered
        .iter()
        .enumerate()
        .map(|(i, (status, body))| {
            assert_eq!(*status, 201, "{body}");
            (body["ahead"].as_u64().unwrap(), i)
        })
        .collect();
    order.sort();
    let aheads: Vec<u64> = order.iter().map(|(a, _)| *a).collect();
    assert_eq!(
        aheads,
        (0..60).collect::<Vec<u64>>(),
        "every place given once"
    );

    set_room(&app, &leader, id, "resume").await;
    // Everyone follows by polling and books as soon as admitted.
    let outcomes = join_all(people.iter().map(|u| async {
        let status = wait_until_not_waiting(&app, u, id).await;
        match status["state"].as_str().unwrap() {
            "admitted" => {
                let pass = status["pass"].as_str().unwrap();
                book(&app, u, id, Some(pass)).await.status().as_u16()
            }
            "closed" => 0,
            other => panic!("unexpected state {other}"),
        }
    }))
    .await;
    let booked: Vec<usize> = order
        .iter()
        .map(|(_, i)| *i)
        .filter(|i| outcomes[*i] == 201)
        .collect();
    let first_ten: Vec<usize> = order.iter().take(10).map(|(_, i)| *i).collect();
    assert_eq!(booked, first_ten, "exactly the first ten entrants booked");
    assert!(
        outcomes.iter().all(|s| *s == 201 || *s == 0),
        "{outcomes:?}"
    );
    let party: Value = app
        .get(None, &format!("/api/v1/parties/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(party["joined"], 11);
    assert_eq!(
        store::bookings::count_active(app.db(), id).await.unwrap(),
        11
    );
}

async fn the_leader_sees_and_pauses_the_room(app: TestApp) {
    let (leader, id) = party_with_room(&app, 10, false).await;
    let view = room(&app, &leader, id).await;
    assert_eq!(view["state"], "open");
    assert_eq!(view["rate_per_min"], 60_000);
    assert_eq!(view["free_seats"], 9);
    assert_eq!(view["auto_opened"], false);
    set_room(&app, &leader, id, "pause").await;
    let people = users(&app, 3).await;
    for u in &people {
        enter(&app, u, id).await;
    }
    app.admitter_ticks(3).await;
    let view = room(&app, &leader, id).await;
    assert_eq!(view["state"], "paused");
    assert_eq!(
        view["waiting"], 3,
        "nobody is admitted while paused: {view}"
    );
    assert_eq!(view["passes_in_flight"], 0);
    set_room(&app, &leader, id, "resume").await;
    // The counters are written just after the admissions: wait for both.
    let view = wait_for_room(&app, &leader, id, |v| {
        v["passes_in_flight"] == 3 && v["admitted_total"] == 3
    })
    .await;
    assert_eq!(view["waiting"], 0);
    // Measured (3 admissions over at least a second: at most 180 a minute), not the configured
    // 60,000 per minute.
    let measured = view["admission_rate_per_min"].as_f64().unwrap();
    assert!(measured > 0.0 && measured <= 180.0, "{view}");
}

async fn a_burst_of_join_attempts_turns_the_room_on(app: TestApp) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, 20).await;
    let id = party["id"].as_i64().unwrap();
    let people = users(&app, 6).await;
    for u in &people[..5] {
        assert_eq!(book(&app, u, id, None).await.status(), 201);
    }
    assert_problem(
        book(&app, &people[5], id, None).await,
        403,
        "admission_required",
    )
    .await;
    let view = room(&app, &leader, id).await;
    assert_eq!(view["state"], "open");
    assert_eq!(view["auto_opened"], true);
    let (status, _) = enter(&app, &people[5], id).await;
    assert_eq!(status, 201);
    let pass = wait_until_not_waiting(&app, &people[5], id).await["pass"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(book(&app, &people[5], id, Some(&pass)).await.status(), 201);
}

/// Scale-out: two instances on one PostgreSQL and Redis share one room; exactly one admitter runs,
/// and a user sees the same place through either instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_room_and_one_admitter() {
    let Some(a) = TestApp::spawn_with(Backend::Scaled, settings()).await else {
        return;
    };
    let b = a.spawn_sibling().await;
    let (leader, id) = party_with_room(&a, 6, true).await;
    let people = users(&a, 12).await;
    for (i, u) in people.iter().enumerate() {
        let via = if i % 2 == 0 { &a } else { &b };
        let (status, body) = enter(via, u, id).await;
        assert_eq!(status, 201);
        assert_eq!(body["position"], i + 1, "{body}");
    }
    for (i, u) in people.iter().enumerate() {
        assert_eq!(me(&a, u, id).await, me(&b, u, id).await, "person {i}");
    }
    set_room(&b, &leader, id, "resume").await;
    wait_for_room(&a, &leader, id, |v| {
        v["passes_in_flight"] == 5 && v["admitted_total"] == 5
    })
    .await;
    a.admitter_ticks(3).await;
    b.admitter_ticks(3).await;
    let view = room(&b, &leader, id).await;
    assert_eq!(view["admitted_total"], 5, "{view}");
    // One of the two holds the admitter lease; nobody else can take it.
    let probe = a
        .state
        .live
        .lease
        .acquire(api::queue::admitter::LEASE, "probe", a.state.now(), 1)
        .await
        .unwrap();
    assert!(!probe, "the lease is held");
    for (i, u) in people.iter().enumerate() {
        let state = me(&b, u, id).await["state"].as_str().unwrap().to_owned();
        assert_eq!(
            state,
            if i < 5 { "admitted" } else { "waiting" },
            "person {i}"
        );
    }
    // A pass from one instance books through the other.
    let pass = me(&a, &people[0], id).await["pass"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(book(&b, &people[0], id, Some(&pass)).await.status(), 201);

    // The instance holding the lease goes away; the other takes admitting over.
    a.shutdown().await;
    assert_eq!(
        b.delete(&people[1], &format!("/api/v1/parties/{id}/queue/me"))
            .await
            .status(),
        204
    );
    assert_eq!(
        wait_until_not_waiting(&b, &people[5], id).await["state"],
        "admitted"
    );
    b.shutdown().await;
}
