//! Parties: create (and every refusal, with nothing half-written), read, list with filters and
//! cursors, edit, cancel, my parties, and the outbox event that every change commits with.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::{assert_problem, TestApp, TestUser};
use serde_json::{json, Value};
use store::events::{party_kind, Envelope, PARTIES_TOPIC};
use store::live::BusMessage;

on_both_backends!(
    creating_a_party_returns_it_with_its_location,
    the_smallest_and_largest_valid_parties_are_accepted,
    every_invalid_party_is_refused_naming_the_field_and_nothing_is_written,
    a_party_at_a_market_without_coordinates_is_refused,
    creating_a_party_needs_a_token,
    a_party_can_be_read_and_an_unknown_one_is_not_found,
    listing_filters_by_market_item_and_status,
    listing_pages_with_cursors_without_repeats_or_gaps,
    bad_list_parameters_are_refused_naming_the_parameter,
    a_repeated_query_parameter_or_body_field_is_refused_naming_it,
    the_leader_can_edit_title_and_meet_time,
    edits_by_others_or_without_changes_or_with_bad_times_are_refused,
    the_leader_can_cancel_with_a_reason_once,
    cancelling_after_the_meet_is_refused,
    my_parties_list_by_role,
    creating_a_party_writes_a_party_created_event_in_the_outbox,
    the_relay_publishes_party_created_on_the_bus,
    a_change_and_its_outbox_event_commit_or_roll_back_together,
);

const HOUR: i64 = 3600 * 1000;

async fn count(app: &TestApp, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "SELECT COUNT(*) FROM {table}"
    )))
    .fetch_one(app.db().pool())
    .await
    .unwrap();
    n
}

fn ts(ms: i64) -> Value {
    json!(api::time::Timestamp(ms))
}

fn ms(v: &Value) -> i64 {
    api::time::Timestamp::parse(v.as_str().expect("a time string"))
        .expect("RFC 3339")
        .0
}

fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().expect("id")
}

/// Creates a party for (`market`, `item`) through the API.
async fn party_at(app: &TestApp, leader: &TestUser, market: i64, item: i64) -> Value {
    let res = app
        .post(leader, "/api/v1/parties", &app.party_body(market, item, 4))
        .await;
    assert_eq!(res.status(), 201, "create party");
    res.json().await.unwrap()
}

async fn get_party(app: &TestApp, id: i64) -> Value {
    let res = app.get(None, &format!("/api/v1/parties/{id}")).await;
    assert_eq!(res.status(), 200, "get party {id}");
    res.json().await.unwrap()
}

async fn list(app: &TestApp, query: &str) -> Value {
    let res = app.get(None, &format!("/api/v1/parties{query}")).await;
    assert_eq!(res.status(), 200, "list {query}");
    res.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(id_of)
        .collect()
}

async fn creating_a_party_returns_it_with_its_location(app: TestApp) {
    let leader = app.user("leader").await;
    let (market, item) = app.market_and_item().await;
    let body = app.party_body(market, item, 6);
    let res = app.post(&leader, "/api/v1/parties", &body).await;
    assert_eq!(res.status(), 201);
    let location = res
        .headers()
        .get("location")
        .expect("Location")
        .to_str()
        .unwrap()
        .to_owned();
    let party: Value = res.json().await.unwrap();
    let id = id_of(&party);
    assert_eq!(location, format!("/api/v1/parties/{id}"));
    assert_eq!(party["status"], "recruiting");
    assert_eq!(party["joined"], 1, "the leader holds the first seat");
    assert_eq!(party["capacity"], 6);
    assert_eq!(party["seats_left"], 5);
    assert_eq!(party["leader_id"], leader.id);
    assert_eq!(party["market_id"], market);
    assert_eq!(party["item_id"], item);
    assert_eq!(party["title"], "신라면 나눠요");
    assert_eq!(party["description"], "입구에서 만나요");
    assert_eq!(party["price_per_share"], 4000);
    assert!(party["cancel_reason"].is_null());
    assert_eq!(party["lat"], 37.5558, "the market's coordinates");
    assert_eq!(party["lng"], 126.9063);
    for field in ["meet_at", "deadline_at", "created_at", "updated_at"] {
        let t = party[field].as_str().unwrap();
        assert!(t.ends_with("+09:00"), "{field} in Korea time: {t}");
    }
    assert_eq!(
        ms(&party["meet_at"]),
        ms(&body["meet_at"]),
        "same instant as sent"
    );
    assert_eq!(ms(&party["deadline_at"]), ms(&body["deadline_at"]));
    // A time sent in UTC comes back the same instant in +09:00.
    let meet = app.state.now() / 1000 * 1000 + 48 * HOUR;
    let utc = time::OffsetDateTime::from_unix_timestamp(meet / 1000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut utc_body = app.party_body(market, item, 3);
    utc_body["meet_at"] = json!(utc);
    utc_body["deadline_at"] = json!(utc);
    let res = app.post(&leader, "/api/v1/parties", &utc_body).await;
    assert_eq!(res.status(), 201);
    let utc_party: Value = res.json().await.unwrap();
    assert!(utc.ends_with('Z'), "{utc}");
    assert_eq!(ms(&utc_party["meet_at"]), meet);
    assert!(utc_party["meet_at"].as_str().unwrap().ends_with("+09:00"));

    let fetched: Value = app.get(None, &location).await.json().await.unwrap();
    assert_eq!(fetched, party, "the Location serves the same party");
    assert_eq!(
        store::bookings::count_active(app.db(), id).await.unwrap(),
        1
    );
}

async fn the_smallest_and_largest_valid_parties_are_accepted(app: TestApp) {
    let leader = app.user("leader").await;
    let (market, item) = app.market_and_item().await;
    let mut body = app.party_body(market, item, 2);
    body["title"] = json!("가".repeat(100));
    body["price_per_share"] = json!(0);
    let res = app.post(&leader, "/api/v1/parties", &body).await;
    assert_eq!(res.status(), 201);
    let party: Value = res.json().await.unwrap();
    assert_eq!(party["capacity"], 2);
    assert_eq!(party["price_per_share"], 0);
    let mut body = app.party_body(market, item, 50);
    body["title"] = json!("  앞뒤 공백  ");
    body.as_object_mut().unwrap().remove("price_per_share");
    body.as_object_mut().unwrap().remove("description");
    let res = app.post(&leader, "/api/v1/parties", &body).await;
    assert_eq!(res.status(), 201);
    let party: Value = res.json().await.unwrap();
    assert_eq!(party["capacity"], 50);
    assert_eq!(party["seats_left"], 49);
    assert_eq!(party["title"], "앞뒤 공백", "titles are trimmed");
    assert!(party["price_per_share"].is_null());
    assert_eq!(party["description"], "");
}

async fn every_invalid_party_is_refused_naming_the_field_and_nothing_is_written(app: TestApp) {
    let leader = app.user("leader").await;
    let (market, item) = app.market_and_item().await;
    let base = app.party_body(market, item, 5);
    let now = app.state.now();
    type Edit = Box<dyn Fn(&mut Value)>;
    let set =
        |key: &'static str, v: Value| -> Edit { Box::new(move |b: &mut Value| b[key] = v.clone()) };
    let cases: Vec<(&str, Edit, u16, &str, &str)> = vec![
        (
            "capacity 1",
            set("capacity", json!(1)),
            422,
            "validation_failed",
            "capacity",
        ),
        (
            "capacity 51",
            set("capacity", json!(51)),
            422,
            "validation_failed",
            "capacity",
        ),
        (
            "capacity 0",
            set("capacity", json!(0)),
            422,
            "validation_failed",
            "capacity",
        ),
        (
            "empty title",
            set("title", json!("")),
            422,
            "validation_failed",
            "title",
        ),
        (
            "blank title",
            set("title", json!("   ")),
            422,
            "validation_failed",
            "title",
        ),
        (
            "101-char title",
            set("title", json!("가".repeat(101))),
            422,
            "validation_failed",
            "title",
        ),
        (
            "long description",
            set("description", json!("x".repeat(2001))),
            422,
            "validation_failed",
            "description",
        ),
        (
            "negative price",
            set("price_per_share", json!(-1)),
            422,
            "validation_failed",
            "price_per_share",
        ),
        (
            "huge price",
            set("price_per_share", json!(10_000_001)),
            422,
            "validation_failed",
            "price_per_share",
        ),
        (
            "meet in the past",
            Box::new(move |b: &mut Value| {
                b["meet_at"] = ts(now - HOUR);
                b["deadline_at"] = ts(now - 2 * HOUR);
            }),
            422,
            "validation_failed",
            "meet_at",
        ),
        (
            "deadline in the past",
            set("deadline_at", ts(now - HOUR)),
            422,
            "validation_failed",
            "deadline_at",
        ),
        (
            "deadline after meet",
            Box::new(move |b: &mut Value| {
                b["meet_at"] = ts(now + 10 * HOUR);
                b["deadline_at"] = ts(now + 11 * HOUR);
            }),
            422,
            "validation_failed",
            "deadline_at",
        ),
        (
            "meet_at not a time",
            set("meet_at", json!("tomorrow evening")),
            422,
            "validation_failed",
            "meet_at",
        ),
        (
            "meet_at without offset",
            set("meet_at", json!("2030-01-01T18:00:00")),
            422,
            "validation_failed",
            "meet_at",
        ),
        (
            "meet_at a number",
            set("meet_at", json!(1_900_000_000_000_i64)),
            422,
            "validation_failed",
            "meet_at",
        ),
        (
            "capacity a string",
            set("capacity", json!("five")),
            422,
            "validation_failed",
            "capacity",
        ),
        (
            "unknown market",
            set("market_id", json!(999_999)),
            422,
            "market_not_found",
            "market_id",
        ),
        (
            "market id 0",
            set("market_id", json!(0)),
            422,
            "validation_failed",
            "market_id",
        ),
        (
            "unknown item",
            set("item_id", json!(999_999)),
            422,
            "item_not_found",
            "item_id",
        ),
        (
            "missing title",
            Box::new(|b: &mut Value| {
                b.as_object_mut().unwrap().remove("title");
            }),
            422,
            "validation_failed",
            "title",
        ),
    ];
    for (what, edit, status, code, field) in cases {
        let mut body = base.clone();
        edit(&mut body);
        let res = app.post(&leader, "/api/v1/parties", &body).await;
        let problem = assert_problem(res, status, code).await;
        assert_eq!(problem["field"], field, "{what}: {problem}");
    }

    let mut unknown = base.clone();
    unknown["colour"] = json!("red");
    let problem = assert_problem(
        app.post(&leader, "/api/v1/parties", &unknown).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        problem["field"], "colour",
        "names the unknown field: {problem}"
    );

    let res = app
        .client
        .post(app.url("/api/v1/parties"))
        .bearer_auth(&leader.token)
        .header("content-type", "application/json")
        .body("{\"market_id\": ")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "malformed_request").await;

    assert_eq!(count(&app, "parties").await, 0, "no party was written");
    assert_eq!(count(&app, "bookings").await, 0, "no booking was written");
    assert_eq!(count(&app, "outbox").await, 0, "no event was written");
    // The same body without the fault is accepted.
    assert_eq!(
        app.post(&leader, "/api/v1/parties", &base).await.status(),
        201
    );
}

async fn a_party_at_a_market_without_coordinates_is_refused(app: TestApp) {
    let leader = app.user("leader").await;
    let (_, item) = app.market_and_item().await;
    let mut tx = app.db().begin().await.unwrap();
    let market = store::catalog::upsert_row(
        &mut tx,
        "test",
        &store::catalog::MarketRow {
            source_id: "no-coordinates".into(),
            name: "좌표없는시장".into(),
            kind: "traditional_market".into(),
            ..Default::default()
        },
        app.state.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let res = app
        .post(&leader, "/api/v1/parties", &app.party_body(market, item, 4))
        .await;
    let body = assert_problem(res, 422, "market_without_location").await;
    assert_eq!(body["field"], "market_id");
    assert_eq!(count(&app, "parties").await, 0);
}

async fn creating_a_party_needs_a_token(app: TestApp) {
    let (market, item) = app.market_and_item().await;
    let res = app
        .post_anon("/api/v1/parties", &app.party_body(market, item, 4))
        .await;
    assert_problem(res, 401, "unauthorized").await;
    let res = app
        .client
        .post(app.url("/api/v1/parties"))
        .bearer_auth("not-a-jwt")
        .json(&app.party_body(market, item, 4))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    assert_eq!(count(&app, "parties").await, 0);
}

async fn a_party_can_be_read_and_an_unknown_one_is_not_found(app: TestApp) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, 3).await;
    let fetched = get_party(&app, id_of(&party)).await;
    assert_eq!(fetched, party);
    assert_problem(
        app.get(None, "/api/v1/parties/999999").await,
        404,
        "party_not_found",
    )
    .await;
    let body = assert_problem(
        app.get(None, "/api/v1/parties/abc").await,
        400,
        "malformed_request",
    )
    .await;
    assert_eq!(body["field"], "id");
}

async fn listing_filters_by_market_item_and_status(app: TestApp) {
    let leader = app.user("leader").await;
    let (m1, i1) = app.market_and_item().await;
    let (m2, i2) = app.market_and_item().await;
    let a = id_of(&party_at(&app, &leader, m1, i1).await);
    let b = id_of(&party_at(&app, &leader, m1, i2).await);
    let c = id_of(&party_at(&app, &leader, m2, i2).await);
    let res = app
        .post(
            &leader,
            &format!("/api/v1/parties/{b}/cancel"),
            &json!({"reason": "사정이 생겼어요"}),
        )
        .await;
    assert_eq!(res.status(), 200);

    assert_eq!(ids(&list(&app, "").await), vec![c, b, a], "newest first");
    assert_eq!(
        ids(&list(&app, &format!("?market_id={m1}")).await),
        vec![b, a]
    );
    assert_eq!(ids(&list(&app, &format!("?market_id={m2}")).await), vec![c]);
    assert_eq!(
        ids(&list(&app, &format!("?item_id={i2}")).await),
        vec![c, b]
    );
    assert_eq!(
        ids(&list(&app, &format!("?market_id={m1}&item_id={i2}")).await),
        vec![b]
    );
    assert_eq!(ids(&list(&app, "?status=recruiting").await), vec![c, a]);
    assert_eq!(ids(&list(&app, "?status=cancelled").await), vec![b]);
    assert_eq!(
        ids(&list(&app, &format!("?status=cancelled&market_id={m2}")).await),
        Vec::<i64>::new()
    );
    assert_eq!(ids(&list(&app, "?status=full").await), Vec::<i64>::new());
    assert_eq!(
        ids(&list(&app, "?market_id=999999").await),
        Vec::<i64>::new()
    );
    let page = list(&app, "?status=cancelled").await;
    assert_eq!(page["items"][0]["cancel_reason"], "사정이 생겼어요");
    assert!(page["next_cursor"].is_null());
}

async fn listing_pages_with_cursors_without_repeats_or_gaps(app: TestApp) {
    let leader = app.user("leader").await;
    let (market, item) = app.market_and_item().await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(id_of(&party_at(&app, &leader, market, item).await));
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page = list(&app, &query).await;
        let page_ids = ids(&page);
        sizes.push(page_ids.len());
        seen.extend(page_ids);
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => {
                assert!(
                    page["next_cursor"].is_null(),
                    "the last page has no cursor: {page}"
                );
                break;
            }
        }
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(seen, created, "every party once, newest first");
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), 5);
    // Exactly a page's worth: the page is full but there is nothing after it.
    let page = list(&app, "?limit=5").await;
    assert_eq!(ids(&page).len(), 5);
    assert!(
        page["next_cursor"].is_null(),
        "no next page after the last party: {page}"
    );
    // Cursors combine with filters.
    let page = list(&app, &format!("?limit=3&market_id={market}")).await;
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let rest = list(
        &app,
        &format!("?limit=3&market_id={market}&cursor={cursor}"),
    )
    .await;
    assert_eq!(ids(&rest), created[3..].to_vec());
    // A party created after the first page was read does not shift the pages already served.
    let first = list(&app, "?limit=2").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    party_at(&app, &leader, market, item).await;
    let second = list(&app, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(ids(&second), created[2..4].to_vec());
}

/// The API promises that a malformed request names the failing parameter. A parameter or field
/// given twice is malformed; the client needs to know which one.
async fn a_repeated_query_parameter_or_body_field_is_refused_naming_it(app: TestApp) {
    let res = app.get(None, "/api/v1/parties?limit=2&limit=3").await;
    let body = assert_problem(res, 400, "malformed_request").await;
    assert_eq!(body["field"], "limit", "{body}");
    let res = app
        .get(None, "/api/v1/parties?market_id=1&market_id=2")
        .await;
    let body = assert_problem(res, 400, "malformed_request").await;
    assert_eq!(body["field"], "market_id", "{body}");

    let leader = app.user("leader").await;
    let res = app
        .client
        .post(app.url("/api/v1/parties"))
        .bearer_auth(&leader.token)
        .header("content-type", "application/json")
        .body(r#"{"capacity": 3, "capacity": 4}"#)
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(body["field"], "capacity", "{body}");
    assert_eq!(count(&app, "parties").await, 0);
}

async fn bad_list_parameters_are_refused_naming_the_parameter(app: TestApp) {
    let cases = [
        ("?status=open", 422, "validation_failed", "status"),
        ("?status=RECRUITING", 422, "validation_failed", "status"),
        ("?limit=0", 422, "validation_failed", "limit"),
        ("?limit=101", 422, "validation_failed", "limit"),
        ("?limit=-1", 422, "validation_failed", "limit"),
        ("?limit=x", 400, "malformed_request", "limit"),
        ("?cursor=zzz", 400, "malformed_request", "cursor"),
        ("?cursor=c0", 400, "malformed_request", "cursor"),
        ("?cursor=cxyz", 400, "malformed_request", "cursor"),
        ("?market_id=abc", 400, "malformed_request", "market_id"),
    ];
    for (query, status, code, field) in cases {
        let res = app.get(None, &format!("/api/v1/parties{query}")).await;
        let body = assert_problem(res, status, code).await;
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    assert_eq!(list(&app, "?limit=100").await["items"], json!([]));
}

async fn the_leader_can_edit_title_and_meet_time(app: TestApp) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, 4).await;
    let id = id_of(&party);
    let new_meet = ms(&party["meet_at"]) + 2 * HOUR;
    let res = app
        .patch(
            &leader,
            &format!("/api/v1/parties/{id}"),
            &json!({"title": "  제목 바꿨어요 ", "meet_at": ts(new_meet)}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["title"], "제목 바꿨어요");
    assert_eq!(ms(&updated["meet_at"]), new_meet);
    assert_eq!(
        updated["deadline_at"], party["deadline_at"],
        "the deadline stays"
    );
    assert_eq!(
        updated["description"], party["description"],
        "untouched fields stay"
    );
    assert_eq!(get_party(&app, id).await, updated, "the change is stored");

    let res = app
        .patch(
            &leader,
            &format!("/api/v1/parties/{id}"),
            &json!({"description": "정문 앞"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["description"], "정문 앞");
    assert_eq!(updated["title"], "제목 바꿨어요");
    // The meet time may equal the deadline.
    let res = app
        .patch(
            &leader,
            &format!("/api/v1/parties/{id}"),
            &json!({"meet_at": party["deadline_at"]}),
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn edits_by_others_or_without_changes_or_with_bad_times_are_refused(app: TestApp) {
    let leader = app.user("leader").await;
    let other = app.user("other").await;
    let party = app.party(&leader, 4).await;
    let id = id_of(&party);
    let path = format!("/api/v1/parties/{id}");
    assert_problem(
        app.patch(&other, &path, &json!({"title": "내 거"})).await,
        403,
        "not_party_leader",
    )
    .await;
    assert_problem(
        app.patch(&leader, &path, &json!({})).await,
        422,
        "validation_failed",
    )
    .await;
    let body = assert_problem(
        app.patch(&leader, &path, &json!({"title": ""})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "title");
    let before_deadline = ms(&party["deadline_at"]) - HOUR;
    let body = assert_problem(
        app.patch(&leader, &path, &json!({"meet_at": ts(before_deadline)}))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "deadline_at", "{body}");
    let past = app.state.now() - HOUR;
    let body = assert_problem(
        app.patch(&leader, &path, &json!({"meet_at": ts(past)}))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "meet_at", "{body}");
    let body = assert_problem(
        app.patch(&leader, &path, &json!({"capacity": 10})).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("capacity"),
        "{body}"
    );
    assert_problem(
        app.patch(&leader, "/api/v1/parties/999999", &json!({"title": "없음"}))
            .await,
        404,
        "party_not_found",
    )
    .await;
    let res = app
        .client
        .patch(app.url(&path))
        .json(&json!({"title": "익명"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    assert_eq!(get_party(&app, id).await, party, "nothing changed");
}

async fn the_leader_can_cancel_with_a_reason_once(app: TestApp) {
    let leader = app.user("leader").await;
    let other = app.user("other").await;
    let party = app.party(&leader, 4).await;
    let id = id_of(&party);
    let path = format!("/api/v1/parties/{id}/cancel");
    assert_problem(
        app.post(&other, &path, &json!({"reason": "남의 파티"}))
            .await,
        403,
        "not_party_leader",
    )
    .await;
    for reason in [json!(""), json!("   "), json!("가".repeat(501))] {
        let body = assert_problem(
            app.post(&leader, &path, &json!({"reason": reason})).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(body["field"], "reason");
    }
    let body = assert_problem(
        app.post(&leader, &path, &json!({})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "reason");
    assert_eq!(
        get_party(&app, id).await["status"],
        "recruiting",
        "refusals change nothing"
    );

    let res = app
        .post(&leader, &path, &json!({"reason": " 비가 와요 "}))
        .await;
    assert_eq!(res.status(), 200);
    let cancelled: Value = res.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_reason"], "비가 와요");
    assert_eq!(get_party(&app, id).await, cancelled);

    let body = assert_problem(
        app.post(&leader, &path, &json!({"reason": "또"})).await,
        409,
        "invalid_party_status",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("cancelled"),
        "{body}"
    );
    assert_problem(
        app.patch(
            &leader,
            &format!("/api/v1/parties/{id}"),
            &json!({"title": "다시"}),
        )
        .await,
        409,
        "invalid_party_status",
    )
    .await;
    assert_problem(
        app.post(
            &leader,
            "/api/v1/parties/999999/cancel",
            &json!({"reason": "없음"}),
        )
        .await,
        404,
        "party_not_found",
    )
    .await;
    assert_eq!(
        get_party(&app, id).await["cancel_reason"],
        "비가 와요",
        "the first reason stays"
    );
}

async fn cancelling_after_the_meet_is_refused(app: TestApp) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, 4).await;
    let id = id_of(&party);
    // The party meets in three days.
    app.state.clock.advance_ms(3 * 24 * HOUR + HOUR);
    let path = format!("/api/v1/parties/{id}/cancel");
    assert_problem(
        app.post(&leader, &path, &json!({"reason": "늦었어요"}))
            .await,
        409,
        "party_already_met",
    )
    .await;
    assert_problem(
        app.patch(
            &leader,
            &format!("/api/v1/parties/{id}"),
            &json!({"title": "늦은 수정"}),
        )
        .await,
        409,
        "party_already_met",
    )
    .await;
    let after = get_party(&app, id).await;
    assert_eq!(after["status"], "recruiting");
    assert!(after["cancel_reason"].is_null());
    assert_eq!(after["title"], party["title"]);
}

async fn my_parties_list_by_role(app: TestApp) {
    let me = app.user("me").await;
    let other = app.user("other").await;
    let stranger = app.user("stranger").await;
    let mine = id_of(&app.party(&me, 4).await);
    let theirs = id_of(&app.party(&other, 4).await);
    let left = id_of(&app.party(&other, 4).await);
    let unrelated = id_of(&app.party(&stranger, 4).await);
    assert_eq!(
        app.post(
            &me,
            &format!("/api/v1/parties/{theirs}/bookings"),
            &json!(null)
        )
        .await
        .status(),
        201
    );
    assert_eq!(
        app.post(
            &me,
            &format!("/api/v1/parties/{left}/bookings"),
            &json!(null)
        )
        .await
        .status(),
        201
    );
    assert_eq!(
        app.delete(&me, &format!("/api/v1/parties/{left}/bookings/me"))
            .await
            .status(),
        200
    );

    let page = |query: &'static str| {
        let app = &app;
        let me = &me;
        async move {
            let res = app
                .get(Some(me), &format!("/api/v1/me/parties{query}"))
                .await;
            assert_eq!(res.status(), 200, "{query}");
            res.json::<Value>().await.unwrap()
        }
    };
    let leader = page("?role=leader").await;
    assert_eq!(ids(&leader), vec![mine]);
    assert_eq!(leader["items"][0]["role"], "leader");
    assert_eq!(leader["items"][0]["booking_status"], "joined");
    assert_eq!(
        leader["items"][0]["title"], "신라면 나눠요",
        "the party's fields are inline"
    );
    let member = page("?role=member").await;
    assert_eq!(ids(&member), vec![theirs], "a party left is not listed");
    assert_eq!(member["items"][0]["role"], "member");
    assert_eq!(member["items"][0]["leader_id"], other.id);
    assert_eq!(ids(&page("?role=any").await), vec![theirs, mine]);
    assert_eq!(ids(&page("").await), vec![theirs, mine]);
    let first = page("?limit=1").await;
    assert_eq!(ids(&first), vec![theirs]);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let res = app
        .get(
            Some(&me),
            &format!("/api/v1/me/parties?limit=1&cursor={cursor}"),
        )
        .await;
    let second: Value = res.json().await.unwrap();
    assert_eq!(ids(&second), vec![mine]);
    assert!(second["next_cursor"].is_null());
    assert!(!ids(&page("").await).contains(&unrelated));

    let body = assert_problem(
        app.get(Some(&me), "/api/v1/me/parties?role=boss").await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "role");
    let body = assert_problem(
        app.get(Some(&me), "/api/v1/me/parties?limit=0").await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "limit");
    assert_problem(
        app.get(None, "/api/v1/me/parties").await,
        401,
        "unauthorized",
    )
    .await;
}

async fn creating_a_party_writes_a_party_created_event_in_the_outbox(app: TestApp) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, 4).await;
    let id = id_of(&party);
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT topic, kind, payload FROM outbox ORDER BY id")
            .fetch_all(app.db().pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 1, "one event: {rows:?}");
    let (topic, kind, payload) = &rows[0];
    assert_eq!(topic, PARTIES_TOPIC);
    assert_eq!(kind, party_kind::CREATED);
    let payload: Value = serde_json::from_str(payload).unwrap();
    assert_eq!(payload["party"]["id"], id);
    assert_eq!(payload["party"]["status"], "recruiting");
    assert_eq!(payload["user_id"], leader.id);

    // Cancelling writes its own event, naming the members.
    app.post(
        &leader,
        &format!("/api/v1/parties/{id}/cancel"),
        &json!({"reason": "취소"}),
    )
    .await;
    let (kind, payload): (String, String) =
        sqlx::query_as("SELECT kind, payload FROM outbox ORDER BY id DESC LIMIT 1")
            .fetch_one(app.db().pool())
            .await
            .unwrap();
    assert_eq!(kind, party_kind::CANCELLED);
    let payload: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload["member_ids"], json!([leader.id]));
}

async fn the_relay_publishes_party_created_on_the_bus(app: TestApp) {
    let mut sub = app.state.live.bus.subscribe(PARTIES_TOPIC).await.unwrap();
    let leader = app.user("leader").await;
    let id = id_of(&app.party(&leader, 4).await);
    let envelope = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match sub.recv().await.expect("bus open") {
                BusMessage::Payload(bytes) => {
                    let env: Envelope = serde_json::from_slice(&bytes).expect("an envelope");
                    if env.kind == party_kind::CREATED && env.data["party"]["id"] == id {
                        return env;
                    }
                }
                BusMessage::Gap => {}
            }
        }
    })
    .await
    .expect("party.created published within 3 s");
    assert!(envelope.id > 0);
    assert_eq!(envelope.data["user_id"], leader.id);
    // The relay stamps what it published.
    let sent = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            let (sent_at,): (Option<i64>,) =
                sqlx::query_as("SELECT sent_at FROM outbox WHERE id = $1")
                    .bind(envelope.id)
                    .fetch_one(app.db().pool())
                    .await
                    .unwrap();
            if let Some(at) = sent_at {
                return at;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("sent_at set");
    assert!(sent > 0);
}

async fn a_change_and_its_outbox_event_commit_or_roll_back_together(app: TestApp) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, 4).await;
    let id = id_of(&party);
    let events_before = count(&app, "outbox").await;

    let mut tx = app.db().begin().await.unwrap();
    store::outbox::insert(
        tx.conn(),
        "test",
        "test.rolled_back",
        &json!({"party_id": id}),
        app.state.now(),
    )
    .await
    .unwrap();
    sqlx::query("UPDATE parties SET title = 'x' WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await
        .unwrap();
    drop(tx);
    assert_eq!(
        get_party(&app, id).await["title"],
        party["title"],
        "the change rolled back"
    );
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE kind = 'test.rolled_back'")
            .fetch_one(app.db().pool())
            .await
            .unwrap();
    assert_eq!(n, 0, "its event rolled back too");
    assert_eq!(count(&app, "outbox").await, events_before);

    // The control: the same two statements committed are both there.
    let mut tx = app.db().begin().await.unwrap();
    store::outbox::insert(
        tx.conn(),
        "test",
        "test.committed",
        &json!({"party_id": id}),
        app.state.now(),
    )
    .await
    .unwrap();
    sqlx::query("UPDATE parties SET title = 'x' WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(get_party(&app, id).await["title"], "x");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE kind = 'test.committed'")
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
}
