//! Booking under concurrency: no overbooking, idempotent retries, and the distinct refusals.

use crate::common;

use common::{assert_problem, TestApp};
use futures::future::join_all;
use serde_json::{json, Value};

on_both_backends!(
    two_hundred_concurrent_joins_take_exactly_the_free_seats,
    one_idempotency_key_retried_fifty_times_books_once,
    an_idempotency_key_with_another_body_is_refused,
    joining_twice_is_refused_as_already_member,
    the_leader_cannot_leave_and_others_can,
    leaving_reopens_a_full_party,
    joining_after_the_deadline_is_refused,
    joining_a_cancelled_party_is_refused,
    a_banned_user_cannot_join,
    joining_an_unknown_party_is_not_found,
    booking_needs_a_token,
    cancel_racing_joins_leaves_a_consistent_party,
);

async fn two_hundred_concurrent_joins_take_exactly_the_free_seats(app: TestApp) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, 10).await;
    let id = party["id"].as_i64().unwrap();
    let mut users = Vec::new();
    for i in 0..200 {
        users.push(app.user(&format!("u{i}")).await);
    }
    let results = join_all(users.iter().map(|u| async {
        let res = app
            .post(u, &format!("/api/v1/parties/{id}/bookings"), &json!(null))
            .await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        (status, body)
    }))
    .await;
    let joined = results.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(joined, 9, "the leader holds one of 10 seats");
    for (status, body) in results.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 409, "{body}");
        assert_eq!(body["code"], "party_full", "{body}");
    }
    let party: Value = app
        .get(None, &format!("/api/v1/parties/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(party["joined"], 10);
    assert_eq!(party["status"], "full");
    assert_eq!(
        store::bookings::count_active(app.db(), id).await.unwrap(),
        10
    );
}

async fn one_idempotency_key_retried_fifty_times_books_once(app: TestApp) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, 10).await;
    let id = party["id"].as_i64().unwrap();
    let member = app.user("member").await;
    let results = join_all((0..50).map(|_| async {
        let res = app
            .client
            .post(app.url(&format!("/api/v1/parties/{id}/bookings")))
            .bearer_auth(&member.token)
            .header("Idempotency-Key", "join-once")
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.text().await.unwrap())
    }))
    .await;
    let first = &results[0];
    for r in &results {
        assert_eq!(r.0, 201, "every retry sees the first result: {}", r.1);
        let a: Value = serde_json::from_str(&r.1).unwrap();
        let b: Value = serde_json::from_str(&first.1).unwrap();
        assert_eq!(a["id"], b["id"], "same booking replayed");
    }
    assert_eq!(
        store::bookings::count_active(app.db(), id).await.unwrap(),
        2
    );
    // A stored error is replayed too: a new key gets the live answer.
    let res = app
        .client
        .post(app.url(&format!("/api/v1/parties/{id}/bookings")))
        .bearer_auth(&member.token)
        .header("Idempotency-Key", "second")
        .send()
        .await
        .unwrap();
    assert_problem(res, 409, "already_member").await;
}

async fn an_idempotency_key_with_another_body_is_refused(app: TestApp) {
    let leader = app.user("leader").await;
    let (market, item) = app.market_and_item().await;
    let five = app.party_body(market, item, 5);
    let mut six = five.clone();
    six["capacity"] = json!(6);
    let send = |body: &Value| {
        app.client
            .post(app.url("/api/v1/parties"))
            .bearer_auth(&leader.token)
            .header("Idempotency-Key", "create-1")
            .json(body)
            .send()
    };
    let first = send(&five).await.unwrap();
    assert_eq!(first.status(), 201);
    let again = send(&five).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    let other = send(&six).await.unwrap();
    let body = assert_problem(other, 422, "idempotency_key_reused").await;
    assert_eq!(body["field"], "Idempotency-Key");
    let long_key = "k".repeat(256);
    let res = app
        .client
        .post(app.url("/api/v1/parties"))
        .bearer_auth(&leader.token)
        .header("Idempotency-Key", long_key)
        .json(&app.party_body(market, item, 5))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
    let (list, _) = store::parties::list_user_parties(
        app.db(),
        leader.id,
        store::parties::Role::Leader,
        None,
        10,
    )
    .await
    .unwrap();
    assert_eq!(list.len(), 1, "only the first request created a party");
}

async fn joining_twice_is_refused_as_already_member(app: TestApp) {
    let leader = app.user("leader").await;
    let id = app.party(&leader, 5).await["id"].as_i64().unwrap();
    let member = app.user("member").await;
    let path = format!("/api/v1/parties/{id}/bookings");
    assert_eq!(app.post(&member, &path, &json!(null)).await.status(), 201);
    assert_problem(
        app.post(&member, &path, &json!(null)).await,
        409,
        "already_member",
    )
    .await;
    assert_problem(
        app.post(&leader, &path, &json!(null)).await,
        409,
        "already_member",
    )
    .await;
}

async fn the_leader_cannot_leave_and_others_can(app: TestApp) {
    let leader = app.user("leader").await;
    let id = app.party(&leader, 5).await["id"].as_i64().unwrap();
    let member = app.user("member").await;
    let path = format!("/api/v1/parties/{id}/bookings");
    let me = format!("/api/v1/parties/{id}/bookings/me");
    assert_problem(app.delete(&leader, &me).await, 409, "leader_cannot_leave").await;
    assert_problem(app.delete(&member, &me).await, 409, "not_a_member").await;
    assert_eq!(app.post(&member, &path, &json!(null)).await.status(), 201);
    let res = app.delete(&member, &me).await;
    assert_eq!(res.status(), 200);
    let party: Value = res.json().await.unwrap();
    assert_eq!(party["joined"], 1);
    // Rejoining after leaving works: the old booking is history.
    assert_eq!(app.post(&member, &path, &json!(null)).await.status(), 201);
}

async fn leaving_reopens_a_full_party(app: TestApp) {
    let leader = app.user("leader").await;
    let id = app.party(&leader, 2).await["id"].as_i64().unwrap();
    let member = app.user("member").await;
    let other = app.user("other").await;
    let path = format!("/api/v1/parties/{id}/bookings");
    let res = app.post(&member, &path, &json!(null)).await;
    assert_eq!(res.status(), 201);
    let booking: Value = res.json().await.unwrap();
    assert_eq!(booking["party"]["status"], "full");
    assert_problem(
        app.post(&other, &path, &json!(null)).await,
        409,
        "party_full",
    )
    .await;
    let party: Value = app
        .delete(&member, &format!("{path}/me"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(party["status"], "recruiting");
    assert_eq!(app.post(&other, &path, &json!(null)).await.status(), 201);
}

async fn joining_after_the_deadline_is_refused(app: TestApp) {
    let leader = app.user("leader").await;
    let id = app.party(&leader, 5).await["id"].as_i64().unwrap();
    let member = app.user("member").await;
    let path = format!("/api/v1/parties/{id}/bookings");
    assert_eq!(app.post(&member, &path, &json!(null)).await.status(), 201);
    // The deadline is 71 hours away; move past it.
    app.state.clock.advance_ms(72 * 3600 * 1000);
    let late = app.user("late").await;
    assert_problem(
        app.post(&late, &path, &json!(null)).await,
        409,
        "deadline_passed",
    )
    .await;
    assert_problem(
        app.delete(&member, &format!("{path}/me")).await,
        409,
        "deadline_passed",
    )
    .await;
}

async fn joining_a_cancelled_party_is_refused(app: TestApp) {
    let leader = app.user("leader").await;
    let id = app.party(&leader, 5).await["id"].as_i64().unwrap();
    let res = app
        .post(
            &leader,
            &format!("/api/v1/parties/{id}/cancel"),
            &json!({"reason": "비가 와요"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let member = app.user("member").await;
    assert_problem(
        app.post(
            &member,
            &format!("/api/v1/parties/{id}/bookings"),
            &json!(null),
        )
        .await,
        409,
        "party_cancelled",
    )
    .await;
}

async fn a_banned_user_cannot_join(app: TestApp) {
    let leader = app.user("leader").await;
    let id = app.party(&leader, 5).await["id"].as_i64().unwrap();
    let banned = app.user("banned").await;
    let until = app.state.now() + 7 * 24 * 3600 * 1000;
    let mut tx = app.db().begin().await.unwrap();
    sqlx::query("UPDATE users SET banned_until = $1 WHERE id = $2")
        .bind(until)
        .bind(banned.id)
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let res = app
        .post(
            &banned,
            &format!("/api/v1/parties/{id}/bookings"),
            &json!(null),
        )
        .await;
    assert_problem(res, 403, "user_banned").await;
    let party: Value = app
        .get(None, &format!("/api/v1/parties/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(party["joined"], 1, "nothing half-written");
}

async fn joining_an_unknown_party_is_not_found(app: TestApp) {
    let member = app.user("member").await;
    assert_problem(
        app.post(&member, "/api/v1/parties/999999/bookings", &json!(null))
            .await,
        404,
        "party_not_found",
    )
    .await;
    let body = assert_problem(
        app.post(&member, "/api/v1/parties/abc/bookings", &json!(null))
            .await,
        400,
        "malformed_request",
    )
    .await;
    assert_eq!(body["field"], "id");
}

async fn booking_needs_a_token(app: TestApp) {
    let leader = app.user("leader").await;
    let id = app.party(&leader, 5).await["id"].as_i64().unwrap();
    let res = app
        .post_anon(&format!("/api/v1/parties/{id}/bookings"), &json!(null))
        .await;
    assert_problem(res, 401, "unauthorized").await;
    let res = app
        .client
        .post(app.url(&format!("/api/v1/parties/{id}/bookings")))
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/parties/{id}/bookings/me")))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
}

async fn cancel_racing_joins_leaves_a_consistent_party(app: TestApp) {
    let leader = app.user("leader").await;
    let id = app.party(&leader, 30).await["id"].as_i64().unwrap();
    let mut users = Vec::new();
    for i in 0..40 {
        users.push(app.user(&format!("r{i}")).await);
    }
    let path = format!("/api/v1/parties/{id}/bookings");
    let joins = join_all(users.iter().map(|u| app.post(u, &path, &json!(null))));
    let cancel_path = format!("/api/v1/parties/{id}/cancel");
    let cancel_body = json!({"reason": "취소"});
    let cancel = app.post(&leader, &cancel_path, &cancel_body);
    let (joins, cancel) = tokio::join!(joins, cancel);
    assert_eq!(cancel.status(), 200);
    let mut booked = 0;
    for res in joins {
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        assert!(
            status == 201
                || (status == 409
                    && (body["code"] == "party_cancelled" || body["code"] == "party_full")),
            "{status} {body}"
        );
        booked += i64::from(status == 201);
    }
    let party: Value = app
        .get(None, &format!("/api/v1/parties/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(party["status"], "cancelled");
    let active = store::bookings::count_active(app.db(), id).await.unwrap();
    assert_eq!(party["joined"], active, "joined equals booking rows");
    assert_eq!(
        active,
        1 + booked,
        "the leader and every join answered 201, no more"
    );
    assert!(active <= 30);
}
