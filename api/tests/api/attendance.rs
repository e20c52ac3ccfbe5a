//! Attendance and penalties: the leader's marks and their window, one penalty per (party, user)
//! however often it is marked or settled, corrections revoking it, bans that start at the
//! threshold and never stack, the profile and an operator's revocation.
//!
//! The penalty job's work is `store::penalties::settle`, called here as the job calls it.

use crate::common;

use common::{assert_problem, TestApp, TestUser};
use futures::future::join_all;
use serde_json::{json, Value};
use store::penalties::{self, Settled};
use store::transitions;

on_both_backends!(
    marks_are_taken_from_the_meet_until_the_window_closes,
    only_the_leader_marks_and_only_members,
    a_no_show_is_one_penalty_and_a_correction_revokes_it,
    fifty_concurrent_markings_and_settlements_make_one_penalty,
    the_third_penalty_bans_and_a_fourth_does_not_extend_it,
    an_operator_revokes_a_penalty_and_the_ban_is_recomputed,
);

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// A party led by `leader` with `members` joined, closed at its deadline, with the app's clock
/// moved just past its meet.
async fn met_party(app: &TestApp, leader: &TestUser, members: &[&TestUser]) -> i64 {
    let party = app.party(leader, 10).await;
    let id = party["id"].as_i64().unwrap();
    for m in members {
        let res = app
            .post(m, &format!("/api/v1/parties/{id}/bookings"), &json!(null))
            .await;
        assert_eq!(res.status(), 201);
    }
    let meet = api::time::Timestamp::parse(party["meet_at"].as_str().unwrap())
        .unwrap()
        .0;
    transitions::close_at_deadline(app.db(), id, meet)
        .await
        .unwrap();
    let now = app.state.now();
    if now < meet + 60_000 {
        app.state.clock.advance_ms(meet + 60_000 - now);
    }
    id
}

async fn put_marks(app: &TestApp, user: &TestUser, id: i64, marks: Value) -> reqwest::Response {
    let path = format!("/api/v1/parties/{id}/attendance");
    app.put(user, &path, &json!({ "members": marks })).await
}

/// Runs the penalty job's work for every member of `id`, as the jobs consumer does per mark.
async fn settle_all(app: &TestApp, id: i64, users: &[&TestUser]) {
    let policy = app.state.settings.lifecycle.penalties;
    for u in users {
        penalties::settle(app.db(), id, u.id, app.state.now(), &policy)
            .await
            .unwrap();
    }
}

async fn profile(app: &TestApp, user: &TestUser) -> Value {
    app.get(None, &format!("/api/v1/users/{}", user.id))
        .await
        .json()
        .await
        .unwrap()
}

async fn marks_are_taken_from_the_meet_until_the_window_closes(app: TestApp) {
    let leader = app.user("leader").await;
    let member = app.user("member").await;
    let party = app.party(&leader, 4).await;
    let id = party["id"].as_i64().unwrap();
    app.post(
        &member,
        &format!("/api/v1/parties/{id}/bookings"),
        &json!(null),
    )
    .await;
    let meet = api::time::Timestamp::parse(party["meet_at"].as_str().unwrap())
        .unwrap()
        .0;
    transitions::close_at_deadline(app.db(), id, meet)
        .await
        .unwrap();
    let mark = json!([{ "user_id": member.id, "attended": true }]);
    // Before the meet.
    let res = put_marks(&app, &leader, id, mark.clone()).await;
    assert_problem(res, 409, "too_early").await;
    // At the meet: taken.
    app.state.clock.advance_ms(meet - app.state.now());
    let res = put_marks(&app, &leader, id, mark.clone()).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["members"][0]["user_id"], member.id);
    assert_eq!(body["members"][0]["status"], "attended");
    assert_eq!(
        body["members"].as_array().unwrap().len(),
        1,
        "not the leader"
    );
    // A minute before the window closes, then a minute after (the clock keeps running).
    app.state.clock.advance_ms(7 * DAY - 60_000);
    let no_show = json!([{ "user_id": member.id, "attended": false }]);
    assert_eq!(
        put_marks(&app, &leader, id, no_show.clone()).await.status(),
        200
    );
    app.state.clock.advance_ms(120_000);
    let res = put_marks(&app, &leader, id, mark).await;
    assert_problem(res, 409, "attendance_closed").await;
    let read: Value = app
        .get(Some(&member), &format!("/api/v1/parties/{id}/attendance"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["members"][0]["status"], "no_show");
}

async fn only_the_leader_marks_and_only_members(app: TestApp) {
    let leader = app.user("leader").await;
    let member = app.user("member").await;
    let stranger = app.user("stranger").await;
    let id = met_party(&app, &leader, &[&member]).await;
    let res = put_marks(
        &app,
        &member,
        id,
        json!([{ "user_id": member.id, "attended": true }]),
    )
    .await;
    assert_problem(res, 403, "not_party_leader").await;
    for (marks, why) in [
        (
            json!([{ "user_id": stranger.id, "attended": false }]),
            "a stranger",
        ),
        (
            json!([{ "user_id": leader.id, "attended": true }]),
            "the leader",
        ),
    ] {
        let res = put_marks(&app, &leader, id, marks).await;
        let problem = assert_problem(res, 422, "validation_failed").await;
        assert_eq!(problem["field"], "members[0].user_id", "{why}");
    }
    let twice = json!([
        { "user_id": member.id, "attended": true },
        { "user_id": member.id, "attended": false }
    ]);
    let problem = assert_problem(
        put_marks(&app, &leader, id, twice).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["field"], "members[1].user_id");
    // Nothing was half-written by the refused requests.
    let read: Value = app
        .get(Some(&leader), &format!("/api/v1/parties/{id}/attendance"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["members"][0]["status"], "joined");
}

async fn a_no_show_is_one_penalty_and_a_correction_revokes_it(app: TestApp) {
    let leader = app.user("leader").await;
    let member = app.user("member").await;
    let id = met_party(&app, &leader, &[&member]).await;
    let policy = app.state.settings.lifecycle.penalties;
    let res = put_marks(
        &app,
        &leader,
        id,
        json!([{ "user_id": member.id, "attended": false }]),
    )
    .await;
    assert_eq!(res.status(), 200);
    let settled = penalties::settle(app.db(), id, member.id, app.state.now(), &policy)
        .await
        .unwrap();
    assert_eq!(settled, Settled::Applied);
    assert_eq!(profile(&app, &member).await["active_penalties"], 1);
    let mine: Value = app
        .get(Some(&member), "/api/v1/me/penalties")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(mine["items"][0]["party_id"], id);
    assert_eq!(mine["items"][0]["revoked_at"], Value::Null);
    // The leader corrects the mark within the window: the penalty is revoked.
    let res = put_marks(
        &app,
        &leader,
        id,
        json!([{ "user_id": member.id, "attended": true }]),
    )
    .await;
    assert_eq!(res.status(), 200);
    let settled = penalties::settle(app.db(), id, member.id, app.state.now(), &policy)
        .await
        .unwrap();
    assert_eq!(settled, Settled::Revoked);
    penalties::forget_count(app.state.live.cache.as_ref(), member.id).await;
    let shown = profile(&app, &member).await;
    assert_eq!(shown["active_penalties"], 0);
    assert_eq!(shown["parties_attended"], 1);
    let mine: Value = app
        .get(Some(&member), "/api/v1/me/penalties")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "kept, revoked");
    assert!(mine["items"][0]["revoked_at"].is_string());
}

async fn fifty_concurrent_markings_and_settlements_make_one_penalty(app: TestApp) {
    let leader = app.user("leader").await;
    let member = app.user("member").await;
    let id = met_party(&app, &leader, &[&member]).await;
    let marks = json!([{ "user_id": member.id, "attended": false }]);
    let puts = join_all((0..50).map(|_| put_marks(&app, &leader, id, marks.clone()))).await;
    assert!(puts.iter().all(|r| r.status() == 200));
    let policy = app.state.settings.lifecycle.penalties;
    let now = app.state.now();
    let settles =
        join_all((0..50).map(|_| penalties::settle(app.db(), id, member.id, now, &policy))).await;
    let applied = settles
        .into_iter()
        .map(Result::unwrap)
        .filter(|s| *s == Settled::Applied)
        .count();
    assert_eq!(
        applied, 1,
        "one settlement applied it; the others found it there"
    );
    let (rows,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM penalties WHERE party_id = $1 AND user_id = $2")
            .bind(id)
            .bind(member.id)
            .fetch_one(app.db().pool())
            .await
            .unwrap();
    assert_eq!(rows, 1);
    let (marked,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE kind = 'party.attendance_marked'")
            .fetch_one(app.db().pool())
            .await
            .unwrap();
    assert_eq!(marked, 1, "one change, one event: repeats change nothing");
}

async fn the_third_penalty_bans_and_a_fourth_does_not_extend_it(app: TestApp) {
    let leader = app.user("leader").await;
    let member = app.user("member").await;
    let mut parties = Vec::new();
    for _ in 0..4 {
        parties.push(app.party(&leader, 4).await["id"].as_i64().unwrap());
    }
    for id in &parties {
        app.post(
            &member,
            &format!("/api/v1/parties/{id}/bookings"),
            &json!(null),
        )
        .await;
        transitions::close_at_deadline(app.db(), *id, app.state.now() + 3 * DAY)
            .await
            .unwrap();
    }
    app.state.clock.advance_ms(3 * DAY + 60_000);
    let mut bans = Vec::new();
    for id in &parties {
        let res = put_marks(
            &app,
            &leader,
            *id,
            json!([{ "user_id": member.id, "attended": false }]),
        )
        .await;
        assert_eq!(res.status(), 200);
        settle_all(&app, *id, &[&member]).await;
        penalties::forget_count(app.state.live.cache.as_ref(), member.id).await;
        bans.push(profile(&app, &member).await["banned_until"].clone());
        app.state.clock.advance_ms(HOUR);
    }
    assert_eq!(bans[0], Value::Null);
    assert_eq!(bans[1], Value::Null);
    assert!(bans[2].is_string(), "the third penalty bans: {bans:?}");
    assert_eq!(
        bans[3], bans[2],
        "a fourth penalty does not extend or stack the ban"
    );
    let (banned_events,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE kind = 'user.banned'")
            .fetch_one(app.db().pool())
            .await
            .unwrap();
    assert_eq!(banned_events, 1);
    // Banned: cannot create or join.
    let res = app
        .post(&member, "/api/v1/parties", &{
            let (market, item) = app.market_and_item().await;
            app.party_body(market, item, 4)
        })
        .await;
    assert_problem(res, 403, "user_banned").await;
}

async fn an_operator_revokes_a_penalty_and_the_ban_is_recomputed(app: TestApp) {
    let leader = app.user("leader").await;
    let member = app.user("member").await;
    let id = met_party(&app, &leader, &[&member]).await;
    put_marks(
        &app,
        &leader,
        id,
        json!([{ "user_id": member.id, "attended": false }]),
    )
    .await;
    settle_all(&app, id, &[&member]).await;
    let mine: Value = app
        .get(Some(&member), "/api/v1/me/penalties")
        .await
        .json()
        .await
        .unwrap();
    let penalty = mine["items"][0]["id"].as_i64().unwrap();
    // Not an operator.
    let res = app
        .delete(&leader, &format!("/api/v1/penalties/{penalty}"))
        .await;
    assert_problem(res, 403, "forbidden").await;
    // The store's revocation as the operator endpoint runs it (operators are configured by email;
    // the endpoint's check is covered by the refusal above).
    let policy = app.state.settings.lifecycle.penalties;
    let revoked = penalties::revoke(app.db(), penalty, leader.id, app.state.now(), &policy)
        .await
        .unwrap()
        .expect("revoked");
    assert!(revoked.revoked_at.is_some());
    assert!(
        penalties::revoke(app.db(), penalty, leader.id, app.state.now(), &policy)
            .await
            .unwrap()
            .is_none(),
        "once"
    );
    // An operator's revocation is final: settling the still-no_show booking does not restore it.
    assert_eq!(
        penalties::settle(app.db(), id, member.id, app.state.now(), &policy)
            .await
            .unwrap(),
        Settled::Unchanged
    );
    penalties::forget_count(app.state.live.cache.as_ref(), member.id).await;
    assert_eq!(profile(&app, &member).await["active_penalties"], 0);
}
