//! What a hostile or careless client tried, and what must hold: far-future times, control
//! characters, oversized and trailing bodies, credentials in the idempotency table, forged
//! forwarded addresses, deleted accounts, lockouts, waiting rooms switched on by one account,
//! look-alike accounts, event streams per user and after logout, and who reads operational data.

use crate::common;

use std::time::Duration;

use api::state::Settings;
use common::{assert_problem, ids, Backend, TestApp, TestUser};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_backends!(
    far_future_times_are_refused,
    a_stored_far_future_party_breaks_no_list_nearby_or_restart,
    control_characters_are_refused_in_queries_naming_the_parameter,
    control_characters_are_refused_in_bodies_and_nothing_is_written,
    bytes_after_the_json_document_are_refused,
    too_large_and_non_json_bodies_are_problems,
    a_token_of_a_deleted_account_is_unauthorized,
    login_and_refresh_responses_are_never_stored_for_replay,
    a_retry_with_an_admission_pass_is_a_new_request,
    look_alike_emails_are_one_account,
    security_headers_are_on_every_response,
    unsafe_request_ids_are_replaced,
);
on_both_backends!(with super::burst_settings() => one_account_cannot_switch_a_waiting_room_on_and_the_leader_can_switch_it_off);
on_both_backends!(with super::forwarded_settings() => the_proxy_appended_address_is_the_client);
on_both_backends!(with super::lockout_settings() => a_strangers_failures_do_not_lock_the_owner_out);
on_both_backends!(with super::signup_settings() => signups_are_limited_per_address);
on_both_backends!(with super::stream_settings() => event_streams_are_capped_and_end_at_logout);
on_both_backends!(with super::operators_settings() => ingest_runs_can_be_kept_for_operators);

const PASSWORD: &str = "correct horse battery";

fn count_of(page: &Value) -> usize {
    page["items"].as_array().map_or(0, Vec::len)
}

async fn party_count(app: &TestApp) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM parties")
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    n
}

async fn far_future_times_are_refused(app: TestApp) {
    let leader = app.user("leader").await;
    let (market, item) = app.market_and_item().await;
    let mut body = app.party_body(market, item, 4);
    body["meet_at"] = json!("9999-12-31T23:59:59Z");
    let problem = assert_problem(
        app.post(&leader, "/api/v1/parties", &body).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["field"], "meet_at");

    // A little over the default horizon of a year: the deadline is checked too.
    let past_horizon = api::time::Timestamp(app.state.now() + 366 * 24 * 3600 * 1000);
    let mut body = app.party_body(market, item, 4);
    body["meet_at"] = json!(past_horizon);
    body["deadline_at"] = json!(past_horizon);
    let problem = assert_problem(
        app.post(&leader, "/api/v1/parties", &body).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["field"], "meet_at");

    // Within the horizon is fine, and PATCH is held to the same bound.
    let party = app.party(&leader, 4).await;
    let path = format!("/api/v1/parties/{}", party["id"]);
    let res = app
        .patch(
            &leader,
            &path,
            &json!({ "meet_at": "9999-12-31T23:59:59Z" }),
        )
        .await;
    let problem = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(problem["field"], "meet_at");
    let got: Value = app.get(None, &path).await.json().await.unwrap();
    assert_eq!(got["meet_at"], party["meet_at"], "nothing changed");
    assert_eq!(party_count(&app).await, 1);
}

/// A party whose meet is at the last second RFC 3339 can write in UTC (year 10000 in Korea),
/// written past the API's checks straight into the store with its event: every read of it, the
/// nearby index on this instance, and a freshly started instance all keep working.
async fn a_stored_far_future_party_breaks_no_list_nearby_or_restart(app: TestApp) {
    let leader = app.user("leader").await;
    let (market, item) = app.market_and_item().await;
    let last_second = 253_402_300_799_000;
    let party = store::parties::create_party(
        app.db(),
        &store::parties::NewParty {
            leader_id: leader.id,
            market_id: market,
            item_id: item,
            title: "먼 미래".into(),
            description: String::new(),
            capacity: 4,
            min_members: 2,
            price_per_share: None,
            meet_at: last_second,
            deadline_at: last_second - 3_600_000,
        },
        app.state.now(),
    )
    .await
    .unwrap();
    let ordinary = app.party(&leader, 4).await["id"].as_i64().unwrap();

    let one: Value = app
        .get(None, &format!("/api/v1/parties/{}", party.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["meet_at"], "9999-12-31T23:59:59Z", "shown in UTC");
    let list: Value = app.get(None, "/api/v1/parties").await.json().await.unwrap();
    assert_eq!(ids(&list), vec![ordinary, party.id]);
    let mine: Value = app
        .get(Some(&leader), "/api/v1/me/parties")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(count_of(&mine), 2);

    let nearby = "/api/v1/parties/nearby?lat=37.5558&lng=126.9063&radius_m=1000";
    let found = eventually(&app, nearby, |p| ids(p).len() == 2).await;
    assert!(ids(&found).contains(&party.id));
    // The index still follows events after the odd one.
    let later = app.party(&leader, 4).await["id"].as_i64().unwrap();
    eventually(&app, nearby, |p| ids(p).contains(&later)).await;

    // A restart loads the index from SQL, odd row included.
    let restarted = app.spawn_sibling().await;
    let page: Value = restarted.get(None, nearby).await.json().await.unwrap();
    assert_eq!(count_of(&page), 3, "{page}");
    let list: Value = restarted
        .get(None, "/api/v1/parties")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(count_of(&list), 3);
    restarted.shutdown().await;
}

/// Polls `path` until `check` holds (events reach the index asynchronously).
async fn eventually(app: &TestApp, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let res = app.get(None, path).await;
        assert_eq!(res.status(), 200, "{path}");
        let body: Value = res.json().await.unwrap();
        if check(&body) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "never held: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn control_characters_are_refused_in_queries_naming_the_parameter(app: TestApp) {
    for (path, field) in [
        ("/api/v1/items?q=%00", "q"),
        ("/api/v1/markets?q=%00", "q"),
        ("/api/v1/markets?region=%00", "region"),
        ("/api/v1/markets?kind=a%00", "kind"),
        ("/api/v1/ingest/runs?source=%00", "source"),
        ("/api/v1/parties?status=%1b", "status"),
        ("/api/v1/items?q=%C2%85", "q"),
    ] {
        let problem = assert_problem(app.get(None, path).await, 422, "validation_failed").await;
        assert_eq!(problem["field"], field, "{path}");
    }
}

async fn control_characters_are_refused_in_bodies_and_nothing_is_written(app: TestApp) {
    let leader = app.user("leader").await;
    let (market, item) = app.market_and_item().await;
    for field in ["title", "description"] {
        let mut body = app.party_body(market, item, 4);
        body[field] = json!("신라면\u{0000}");
        let problem = assert_problem(
            app.post(&leader, "/api/v1/parties", &body).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["field"], field);
    }
    assert_eq!(party_count(&app).await, 0);
    let party = app.party(&leader, 4).await;
    let cancel = format!("/api/v1/parties/{}/cancel", party["id"]);
    let problem = assert_problem(
        app.post(&leader, &cancel, &json!({ "reason": "\u{0000}" }))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["field"], "reason");
    let got: Value = app
        .get(None, &format!("/api/v1/parties/{}", party["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "recruiting");
    let problem = assert_problem(
        app.post_anon(
            "/api/v1/auth/signup",
            &json!({ "email": "nul@example.com", "password": PASSWORD, "nickname": "a\u{0007}" }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["field"], "nickname");
}

async fn bytes_after_the_json_document_are_refused(app: TestApp) {
    let leader = app.user("leader").await;
    let (market, item) = app.market_and_item().await;
    let body = format!("{}xyz", app.party_body(market, item, 4));
    let res = app
        .client
        .post(app.url("/api/v1/parties"))
        .bearer_auth(&leader.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "malformed_request").await;
    assert_eq!(party_count(&app).await, 0);
}

async fn too_large_and_non_json_bodies_are_problems(app: TestApp) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, 4).await;
    for path in [
        "/api/v1/auth/logout".to_owned(),
        format!("/api/v1/parties/{}/queue/open", party["id"]),
        "/api/v1/parties".to_owned(),
        format!("/api/v1/parties/{}/cancel", party["id"]),
    ] {
        // A declared length over the limit is refused before the body is read (so no body is
        // sent here: the server answers and closes without waiting for it).
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 3000000\r\n\r\n",
            leader.token
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
        assert!(answer.contains("\"payload_too_large\""), "{answer}");
        // Just over the limit, without a declared length, is refused while reading.
        let chunks = futures::stream::iter((0..17).map(|i| {
            let size = if i < 16 { 64 * 1024 } else { 1024 };
            Ok::<_, std::io::Error>(hyper::body::Frame::data(bytes::Bytes::from(vec![
                b' ';
                size
            ])))
        }));
        let res = app
            .client
            .post(app.url(&path))
            .bearer_auth(&leader.token)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap(http_body_util::StreamBody::new(chunks)))
            .send()
            .await
            .unwrap();
        assert_problem(res, 413, "payload_too_large").await;
    }
    for path in [
        "/api/v1/auth/logout".to_owned(),
        format!("/api/v1/parties/{}/queue/open", party["id"]),
    ] {
        let res = app
            .client
            .post(app.url(&path))
            .bearer_auth(&leader.token)
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_problem(res, 415, "unsupported_media_type").await;
    }
    // Nothing above logged the leader out or opened the room.
    let res = app
        .get(
            Some(&leader),
            &format!("/api/v1/parties/{}/queue", party["id"]),
        )
        .await;
    assert_problem(res, 409, "queue_off").await;
}

async fn a_token_of_a_deleted_account_is_unauthorized(app: TestApp) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, 4).await;
    let ghost = app.user("ghost").await;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(ghost.id)
        .execute(app.db().pool())
        .await
        .unwrap();
    let (market, item) = app.market_and_item().await;
    let res = app
        .post(&ghost, "/api/v1/parties", &app.party_body(market, item, 4))
        .await;
    assert_problem(res, 401, "unauthorized").await;
    let res = app
        .post(
            &ghost,
            &format!("/api/v1/parties/{}/bookings", party["id"]),
            &json!({}),
        )
        .await;
    assert_problem(res, 401, "unauthorized").await;
    assert_problem(
        app.get(Some(&ghost), "/api/v1/me").await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(party_count(&app).await, 1);
}

async fn signup(app: &TestApp, email: &str) -> reqwest::Response {
    app.post_anon(
        "/api/v1/auth/signup",
        &json!({ "email": email, "password": PASSWORD, "nickname": "손님" }),
    )
    .await
}

async fn login_as(
    app: &TestApp,
    email: &str,
    password: &str,
    from: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }));
    if let Some(addr) = from {
        req = req.header("x-forwarded-for", addr);
    }
    req.send().await.unwrap()
}

async fn login_and_refresh_responses_are_never_stored_for_replay(app: TestApp) {
    assert_eq!(signup(&app, "idem@example.com").await.status(), 201);
    let first: Value = login_as(&app, "idem@example.com", PASSWORD, None)
        .await
        .json()
        .await
        .unwrap();
    let bearer = first["access_token"].as_str().unwrap().to_owned();
    let login_with_key = || {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .bearer_auth(&bearer)
            .header("idempotency-key", "login-1")
            .json(&json!({ "email": "idem@example.com", "password": PASSWORD }))
            .send()
    };
    let a = login_with_key().await.unwrap();
    assert_eq!(a.status(), 200);
    assert_eq!(a.headers()["cache-control"], "no-store");
    let a: Value = a.json().await.unwrap();
    let b = login_with_key().await.unwrap();
    assert!(b.headers().get("idempotent-replayed").is_none());
    let b: Value = b.json().await.unwrap();
    assert_ne!(
        a["refresh_token"], b["refresh_token"],
        "a new session, not a replay"
    );

    let refresh_with_key = || {
        app.client
            .post(app.url("/api/v1/auth/refresh"))
            .bearer_auth(&bearer)
            .header("idempotency-key", "refresh-1")
            .json(&json!({ "refresh_token": a["refresh_token"] }))
            .send()
    };
    let res = refresh_with_key().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let c: Value = res.json().await.unwrap();
    // The retry is the same token presented twice: reuse detection answers, not a stored pair.
    assert_problem(
        refresh_with_key().await.unwrap(),
        401,
        "refresh_token_reused",
    )
    .await;

    let stored: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT response_body FROM idempotency_keys")
            .fetch_all(app.db().pool())
            .await
            .unwrap();
    for pair in [&a, &b, &c] {
        for token in ["access_token", "refresh_token"] {
            let token = pair[token].as_str().unwrap();
            assert!(
                stored
                    .iter()
                    .all(|(body,)| !body.as_deref().unwrap_or("").contains(token)),
                "no credentials in the idempotency table"
            );
        }
    }
}

async fn book(
    app: &TestApp,
    user: &TestUser,
    party: i64,
    key: &str,
    pass: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/api/v1/parties/{party}/bookings")))
        .bearer_auth(&user.token)
        .header("idempotency-key", key);
    if let Some(pass) = pass {
        req = req.header("admission-pass", pass);
    }
    req.send().await.unwrap()
}

async fn wait_for_pass(app: &TestApp, user: &TestUser, party: i64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status: Value = app
            .get(Some(user), &format!("/api/v1/parties/{party}/queue/me"))
            .await
            .json()
            .await
            .unwrap();
        if let Some(pass) = status["pass"].as_str() {
            return pass.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never admitted: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_retry_with_an_admission_pass_is_a_new_request(app: TestApp) {
    let leader = app.user("leader").await;
    let id = app.party(&leader, 4).await["id"].as_i64().unwrap();
    let res = app
        .post(
            &leader,
            &format!("/api/v1/parties/{id}/queue/open"),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let shopper = app.user("shopper").await;
    assert_problem(
        book(&app, &shopper, id, "join-1", None).await,
        403,
        "admission_required",
    )
    .await;
    let res = app
        .post(&shopper, &format!("/api/v1/parties/{id}/queue"), &json!({}))
        .await;
    assert_eq!(res.status(), 201);
    let pass = wait_for_pass(&app, &shopper, id).await;
    // With the pass it is another request: not the earlier 403 replayed, but a key reused for a
    // different request, which says so.
    let res = book(&app, &shopper, id, "join-1", Some(&pass)).await;
    let problem = assert_problem(res, 422, "idempotency_key_reused").await;
    assert_eq!(problem["field"], "Idempotency-Key");
    let res = book(&app, &shopper, id, "join-2", Some(&pass)).await;
    assert_eq!(res.status(), 201);
    // The same request again is the replay.
    let res = book(&app, &shopper, id, "join-2", Some(&pass)).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
}

async fn one_account_cannot_switch_a_waiting_room_on_and_the_leader_can_switch_it_off(
    app: TestApp,
) {
    // These apps open a room after 5 distinct users try within the window.
    let leader = app.user("leader").await;
    let id = app.party(&leader, 20).await["id"].as_i64().unwrap();
    let pest = app.user("pest").await;
    assert_eq!(book(&app, &pest, id, "p-0", None).await.status(), 201);
    for i in 1..=20 {
        let res = book(&app, &pest, id, &format!("p-{i}"), None).await;
        assert_problem(res, 409, "already_member").await;
    }
    let room = format!("/api/v1/parties/{id}/queue");
    assert_problem(app.get(Some(&leader), &room).await, 409, "queue_off").await;

    // Five distinct people do switch it on; its leader switches it off again.
    let mut people = Vec::new();
    for i in 0..5 {
        people.push(app.user(&format!("p{i}")).await);
    }
    for (i, u) in people[..4].iter().enumerate() {
        assert_eq!(
            book(&app, u, id, &format!("a-{i}"), None).await.status(),
            201
        );
    }
    assert_problem(
        book(&app, &people[4], id, "a-4", None).await,
        403,
        "admission_required",
    )
    .await;
    let view: Value = app.get(Some(&leader), &room).await.json().await.unwrap();
    assert_eq!(view["state"], "open");
    assert_eq!(view["auto_opened"], true);
    let outsider = app.user("outsider").await;
    let res = app
        .post(&outsider, &format!("{room}/close"), &json!({}))
        .await;
    assert_problem(res, 403, "not_party_leader").await;
    let res = app
        .post(&leader, &format!("{room}/close"), &json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["state"], "closed");
    assert_eq!(view["close_reason"], "leader");
    assert_eq!(book(&app, &people[4], id, "a-5", None).await.status(), 201);
    let res = app
        .post(&leader, &format!("{room}/close"), &json!({}))
        .await;
    assert_problem(res, 409, "invalid_queue_state").await;
}

fn burst_settings() -> Settings {
    let mut s = common::test_settings();
    s.queue.auto_threshold = 5;
    s
}

async fn look_alike_emails_are_one_account(app: TestApp) {
    assert_eq!(signup(&app, "ｋｉｍ@example.com").await.status(), 201);
    assert_problem(signup(&app, "kim@example.com").await, 409, "email_taken").await;
    for bad in ["k\u{0456}m@example.com", "ki\u{200b}m@example.com"] {
        let problem = assert_problem(signup(&app, bad).await, 422, "validation_failed").await;
        assert_eq!(problem["field"], "email");
    }
    let res = app
        .post_anon(
            "/api/v1/auth/signup",
            &json!({ "email": "weak@example.com", "password": "password123", "nickname": "약한" }),
        )
        .await;
    let problem = assert_problem(res, 422, "weak_password").await;
    assert_eq!(problem["field"], "password");
}

async fn security_headers_are_on_every_response(app: TestApp) {
    for path in ["/healthz", "/api/v1/parties", "/api/v1/nope", "/docs/"] {
        let res = app.get(None, path).await;
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        if path.starts_with("/docs") {
            assert!(csp.contains("script-src 'self'"), "{csp}");
        }
    }
}

async fn unsafe_request_ids_are_replaced(app: TestApp) {
    for forged in ["x user.id=1 logged in", "{\"a\":1}", &"a".repeat(65)] {
        let res = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", forged)
            .send()
            .await
            .unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(id, forged);
        assert_eq!(id.len(), 36, "a generated uuid: {id}");
    }
}

fn forwarded_settings() -> Settings {
    Settings {
        trust_forwarded_for: true,
        login_limit_per_addr: 3,
        login_limit_per_email: 100,
        login_limit_per_account: 100,
        ..common::test_settings()
    }
}

async fn the_proxy_appended_address_is_the_client(app: TestApp) {
    for i in 0..3 {
        let forged = format!("10.0.0.{i}, 203.0.113.7");
        let res = login_as(
            &app,
            &format!("u{i}@example.com"),
            "wrong password!",
            Some(&forged),
        )
        .await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let res = login_as(
        &app,
        "u9@example.com",
        "wrong password!",
        Some("10.9.9.9, 203.0.113.7"),
    )
    .await;
    assert_problem(res, 429, "too_many_attempts").await;
    let res = login_as(
        &app,
        "u9@example.com",
        "wrong password!",
        Some("203.0.113.8"),
    )
    .await;
    assert_problem(res, 401, "invalid_credentials").await;
}

fn lockout_settings() -> Settings {
    Settings {
        trust_forwarded_for: true,
        login_limit_per_email: 3,
        // Counted: 3 failures, the refused fourth, the owner: 5; two more fail, the next is refused.
        login_limit_per_account: 7,
        ..common::test_settings()
    }
}

async fn a_strangers_failures_do_not_lock_the_owner_out(app: TestApp) {
    assert_eq!(signup(&app, "owner@example.com").await.status(), 201);
    for _ in 0..3 {
        let res = login_as(
            &app,
            "owner@example.com",
            "guess guess",
            Some("198.51.100.1"),
        )
        .await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let res = login_as(
        &app,
        "owner@example.com",
        "guess guess",
        Some("198.51.100.1"),
    )
    .await;
    assert_problem(res, 429, "too_many_attempts").await;
    let res = login_as(&app, "owner@example.com", PASSWORD, Some("192.0.2.50")).await;
    assert_eq!(res.status(), 200, "the owner elsewhere is not locked out");
    // The account-wide backstop: attempts spread over addresses are still bounded.
    for i in 0..2 {
        let res = login_as(
            &app,
            "owner@example.com",
            "guess",
            Some(&format!("198.51.100.{}", 10 + i)),
        )
        .await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let res = login_as(&app, "owner@example.com", "guess", Some("198.51.100.99")).await;
    assert_problem(res, 429, "too_many_attempts").await;
}

fn signup_settings() -> Settings {
    Settings {
        signup_limit_per_addr: 2,
        ..common::test_settings()
    }
}

async fn signups_are_limited_per_address(app: TestApp) {
    assert_eq!(signup(&app, "one@example.com").await.status(), 201);
    assert_eq!(signup(&app, "two@example.com").await.status(), 201);
    let res = signup(&app, "three@example.com").await;
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429, "too_many_signups").await;
}

fn stream_settings() -> Settings {
    Settings {
        max_streams_per_user: 2,
        ..common::test_settings()
    }
}

async fn event_streams_are_capped_and_end_at_logout(app: TestApp) {
    let leader = app.user("leader").await;
    let id = app.party(&leader, 4).await["id"].as_i64().unwrap();
    app.post(
        &leader,
        &format!("/api/v1/parties/{id}/queue/open"),
        &json!({ "rate_per_min": 1 }),
    )
    .await;
    let waiting = app.user("waiting").await;
    // Someone ahead holds the one admission of the minute, so `waiting` stays waiting.
    let ahead = app.user("ahead").await;
    app.post(&ahead, &format!("/api/v1/parties/{id}/queue"), &json!({}))
        .await;
    app.post(&waiting, &format!("/api/v1/parties/{id}/queue"), &json!({}))
        .await;
    let events = format!("/api/v1/parties/{id}/queue/me/events");
    let a = app.get(Some(&waiting), &events).await;
    let b = app.get(Some(&waiting), &events).await;
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    assert_problem(
        app.get(Some(&waiting), &events).await,
        429,
        "too_many_streams",
    )
    .await;

    let res = app.post(&waiting, "/api/v1/auth/logout", &json!({})).await;
    assert_eq!(res.status(), 204);
    for mut stream in [a, b] {
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !text.contains("event: ended") {
            let chunk = tokio::time::timeout_at(deadline, stream.chunk())
                .await
                .expect("the stream ended after logout");
            match chunk {
                Ok(Some(bytes)) => text.push_str(&String::from_utf8_lossy(&bytes)),
                _ => break,
            }
        }
        assert!(text.contains("event: ended"), "{text}");
    }
    // Their slots are free again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.state.streams.open(waiting.id) > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "slots not given back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn operators_settings() -> Settings {
    Settings {
        ingest_runs_access: api::config::Access::Operators,
        operator_emails: vec![crate::common::OPERATOR_EMAIL.into()],
        ..common::test_settings()
    }
}

async fn ingest_runs_can_be_kept_for_operators(app: TestApp) {
    let path = "/api/v1/ingest/runs";
    assert_problem(app.get(None, path).await, 401, "unauthorized").await;
    let someone = app.user("someone").await;
    assert_problem(app.get(Some(&someone), path).await, 403, "operators_only").await;
    let ops =
        store::users::insert_user(app.db(), "ops@test.gonggu.kr", "x", "ops", app.state.now())
            .await
            .unwrap();
    let token = app.state.keys.issue(ops.id, app.state.now()).unwrap();
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// `/metrics` on its own listener is not on the API's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_a_listener_of_their_own() {
    let mut settings = common::test_settings();
    settings.http.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let app = TestApp::spawn_with(Backend::Embedded, settings)
        .await
        .unwrap();
    assert_problem(app.get(None, "/metrics").await, 404, "route_not_found").await;
    let metrics = app.metrics_addr().expect("a metrics listener");
    let res = app
        .client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("http_requests_total"));
    app.shutdown().await;
}
