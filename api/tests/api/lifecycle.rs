//! The party lifecycle's time-driven steps: closing (or cancelling for too few members) at the
//! deadline, completing after the meet, doing nothing when stale, and a join racing the close.
//! Time is the app's clock, moved by the test.

use crate::common;

use common::{assert_problem, TestApp};
use futures::future::join_all;
use serde_json::{json, Value};
use store::transitions::{self, Step};

on_both_backends!(
    a_party_with_enough_members_closes_at_its_deadline,
    too_few_members_cancel_the_party_at_its_deadline,
    a_step_before_its_time_or_twice_does_nothing,
    a_closed_party_completes_after_its_meet,
    a_join_racing_the_close_is_booked_before_it_or_refused,
    min_members_is_checked_against_the_capacity,
);

const HOUR: i64 = 3_600_000;

async fn party_json(app: &TestApp, id: i64) -> Value {
    app.get(None, &format!("/api/v1/parties/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

/// The kinds of the outbox events written for party `id`, oldest first.
async fn event_kinds(app: &TestApp, id: i64) -> Vec<(String, Value)> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, CAST(payload AS TEXT) FROM outbox WHERE topic = 'parties' ORDER BY id",
    )
    .fetch_all(app.db().pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(kind, data)| (kind, serde_json::from_str::<Value>(&data).unwrap()))
        .filter(|(_, data)| data["party"]["id"] == id)
        .collect()
}

async fn a_party_with_enough_members_closes_at_its_deadline(app: TestApp) {
    let leader = app.user("leader").await;
    let member = app.user("member").await;
    let party = app.party(&leader, 4).await;
    let id = party["id"].as_i64().unwrap();
    assert_eq!(party["min_members"], 2);
    let res = app
        .post(
            &member,
            &format!("/api/v1/parties/{id}/bookings"),
            &json!(null),
        )
        .await;
    assert_eq!(res.status(), 201);
    app.state.clock.advance_ms(3 * 24 * HOUR);
    let step = transitions::close_at_deadline(app.db(), id, app.state.now())
        .await
        .unwrap();
    let Step::Done(closed) = step else {
        panic!("due and open: {step:?}")
    };
    assert_eq!(closed.status.as_str(), "closed");
    let shown = party_json(&app, id).await;
    assert_eq!(shown["status"], "closed");
    assert_eq!(shown["cancel_reason"], Value::Null);
    assert_eq!(shown["joined"], 2);
    let kinds: Vec<String> = event_kinds(&app, id)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(kinds.last().map(String::as_str), Some("party.closed"));
    // A closed party takes no bookings.
    let late = app.user("late").await;
    let res = app
        .post(
            &late,
            &format!("/api/v1/parties/{id}/bookings"),
            &json!(null),
        )
        .await;
    assert_problem(res, 409, "party_closed").await;
}

async fn too_few_members_cancel_the_party_at_its_deadline(app: TestApp) {
    let leader = app.user("leader").await;
    let member = app.user("member").await;
    let (market, item) = app.market_and_item().await;
    let mut body = app.party_body(market, item, 6);
    body["min_members"] = json!(3);
    let res = app.post(&leader, "/api/v1/parties", &body).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let res = app
        .post(
            &member,
            &format!("/api/v1/parties/{id}/bookings"),
            &json!(null),
        )
        .await;
    assert_eq!(res.status(), 201);
    app.state.clock.advance_ms(3 * 24 * HOUR);
    let step = transitions::close_at_deadline(app.db(), id, app.state.now())
        .await
        .unwrap();
    assert!(matches!(step, Step::Done(_)), "{step:?}");
    let shown = party_json(&app, id).await;
    assert_eq!(shown["status"], "cancelled");
    assert_eq!(shown["cancel_reason"], "not_enough_members");
    let events = event_kinds(&app, id).await;
    let (kind, data) = events.last().unwrap();
    assert_eq!(kind, "party.cancelled");
    assert_eq!(
        data["member_ids"],
        json!([leader.id, member.id]),
        "the members are named, to be told"
    );
}

async fn a_step_before_its_time_or_twice_does_nothing(app: TestApp) {
    let leader = app.user("leader").await;
    let id = app.party(&leader, 4).await["id"].as_i64().unwrap();
    let now = app.state.now();
    let before = event_kinds(&app, id).await.len();
    assert_eq!(
        transitions::close_at_deadline(app.db(), id, now)
            .await
            .unwrap(),
        Step::Stale,
        "the deadline is ahead"
    );
    assert_eq!(
        transitions::complete_after_meet(app.db(), id, now + 10 * 24 * HOUR, 3 * HOUR)
            .await
            .unwrap(),
        Step::Stale,
        "not closed yet"
    );
    let later = now + 3 * 24 * HOUR;
    assert!(matches!(
        transitions::close_at_deadline(app.db(), id, later)
            .await
            .unwrap(),
        Step::Done(_)
    ));
    assert_eq!(
        transitions::close_at_deadline(app.db(), id, later)
            .await
            .unwrap(),
        Step::Stale,
        "a repeated step"
    );
    assert_eq!(
        transitions::close_at_deadline(app.db(), 999_999, later)
            .await
            .unwrap(),
        Step::Stale,
        "an unknown party"
    );
    assert_eq!(event_kinds(&app, id).await.len(), before + 1, "one event");
}

async fn a_closed_party_completes_after_its_meet(app: TestApp) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, 4).await;
    let id = party["id"].as_i64().unwrap();
    let meet = api::time::Timestamp::parse(party["meet_at"].as_str().unwrap())
        .unwrap()
        .0;
    let member = app.user("member").await;
    app.post(
        &member,
        &format!("/api/v1/parties/{id}/bookings"),
        &json!(null),
    )
    .await;
    transitions::close_at_deadline(app.db(), id, meet)
        .await
        .unwrap();
    let after = 3 * HOUR;
    assert_eq!(
        transitions::complete_after_meet(app.db(), id, meet + after - 1, after)
            .await
            .unwrap(),
        Step::Stale,
        "a millisecond early"
    );
    let due = transitions::due_to_complete(app.db(), meet + after, after, 10)
        .await
        .unwrap();
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(due[0].at, meet);
    let step = transitions::complete_after_meet(app.db(), id, meet + after, after)
        .await
        .unwrap();
    assert!(matches!(step, Step::Done(ref p) if p.status.as_str() == "completed"));
    assert_eq!(party_json(&app, id).await["status"], "completed");
    let kinds: Vec<String> = event_kinds(&app, id)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(kinds.last().map(String::as_str), Some("party.completed"));
    assert!(
        transitions::due_to_complete(app.db(), meet + after, after, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_join_racing_the_close_is_booked_before_it_or_refused(app: TestApp) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, 30).await;
    let id = party["id"].as_i64().unwrap();
    let deadline = api::time::Timestamp::parse(party["deadline_at"].as_str().unwrap())
        .unwrap()
        .0;
    let mut users = Vec::new();
    for i in 0..25 {
        users.push(app.user(&format!("r{i}")).await);
    }
    let path = format!("/api/v1/parties/{id}/bookings");
    // One member before the race, so the party has its two members whenever the close lands.
    let first = app.user("first").await;
    assert_eq!(app.post(&first, &path, &json!(null)).await.status(), 201);
    // The joins run on the app's clock (before the deadline); the close runs as the sweeper would
    // once the deadline has passed.
    let joins = join_all(users.iter().map(|u| app.post(u, &path, &json!(null))));
    let close = transitions::close_at_deadline(app.db(), id, deadline);
    let (joins, close) = tokio::join!(joins, close);
    assert!(matches!(close.unwrap(), Step::Done(_)));
    let mut booked = 0;
    for res in joins {
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        assert!(
            status == 201 || (status == 409 && body["code"] == "party_closed"),
            "{status} {body}"
        );
        booked += i64::from(status == 201);
    }
    let shown = party_json(&app, id).await;
    assert_eq!(shown["status"], "closed");
    let active = store::bookings::count_active(app.db(), id).await.unwrap();
    assert_eq!(shown["joined"], active, "joined equals booking rows");
    assert_eq!(
        active,
        2 + booked,
        "the leader, the first member and every 201"
    );
}

async fn min_members_is_checked_against_the_capacity(app: TestApp) {
    let leader = app.user("leader").await;
    let (market, item) = app.market_and_item().await;
    for bad in [1, 5] {
        let mut body = app.party_body(market, item, 4);
        body["min_members"] = json!(bad);
        let res = app.post(&leader, "/api/v1/parties", &body).await;
        let problem = assert_problem(res, 422, "validation_failed").await;
        assert_eq!(problem["field"], "min_members", "{bad}");
    }
    let mut body = app.party_body(market, item, 4);
    body["min_members"] = json!(4);
    let res = app.post(&leader, "/api/v1/parties", &body).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.json::<Value>().await.unwrap()["min_members"], 4);
}
