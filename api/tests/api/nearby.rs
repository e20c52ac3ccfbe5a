//! Nearby search through HTTP, and the index staying equal to SQL as parties change.

use crate::common;

use std::time::Duration;

use common::{assert_problem, ids, TestApp, TestUser};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

on_both_backends!(
    nearby_parties_come_nearest_first_within_the_radius,
    nearby_pages_never_repeat_or_skip,
    nearby_filters_by_item_category_and_fullness,
    nearby_markets_are_found_with_their_distance,
    bad_nearby_parameters_are_named,
    the_index_equals_a_rebuild_from_sql_after_random_changes,
);

/// Seoul City Hall.
const CENTER: (f64, f64) = (37.5665, 126.9780);

/// Metres north of the centre → latitude (1° of latitude is about 111.2 km).
fn north(m: f64) -> (f64, f64) {
    (CENTER.0 + m / 111_195.0, CENTER.1)
}

async fn create_at(
    app: &TestApp,
    leader: &TestUser,
    at: (f64, f64),
    item: i64,
    capacity: i64,
) -> i64 {
    let market = app.market_at(at.0, at.1).await;
    let res = app
        .post(
            leader,
            "/api/v1/parties",
            &app.party_body(market, item, capacity),
        )
        .await;
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// Polls `path` until `check` holds (events reach the index asynchronously).
async fn eventually(app: &TestApp, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let body: Value = app.get(None, path).await.json().await.unwrap();
        if check(&body) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "never held: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn nearby(radius: f64, extra: &str) -> String {
    format!(
        "/api/v1/parties/nearby?lat={}&lng={}&radius_m={radius}{extra}",
        CENTER.0, CENTER.1
    )
}

async fn nearby_parties_come_nearest_first_within_the_radius(app: TestApp) {
    let leader = app.user("leader").await;
    let item = app.item_in("030102001").await;
    let far = create_at(&app, &leader, north(9_000.0), item, 4).await;
    let near = create_at(&app, &leader, north(500.0), item, 4).await;
    let outside = create_at(&app, &leader, north(12_000.0), item, 4).await;
    let mid = create_at(&app, &leader, north(3_000.0), item, 4).await;
    let page = eventually(&app, &nearby(10_000.0, ""), |p| ids(p).len() == 3).await;
    assert_eq!(ids(&page), vec![near, mid, far], "{outside} is outside");
    let d: Vec<f64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["distance_m"].as_f64().unwrap())
        .collect();
    assert!(
        (d[0] - 500.0).abs() < 5.0 && (d[1] - 3_000.0).abs() < 20.0,
        "{d:?}"
    );
    assert!(page["items"][0]["lat"].is_number() && page["items"][0]["title"].is_string());
    // A cancelled party leaves the index.
    let res = app
        .post(
            &leader,
            &format!("/api/v1/parties/{near}/cancel"),
            &json!({"reason": "rain"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    eventually(&app, &nearby(10_000.0, ""), |p| ids(p) == vec![mid, far]).await;
}

async fn nearby_pages_never_repeat_or_skip(app: TestApp) {
    let leader = app.user("leader").await;
    let item = app.item_in("030102001").await;
    let mut expected = Vec::new();
    for i in 0..7 {
        // Two parties share each spot, so ties on distance are broken by id.
        let spot = north(400.0 * (i / 2) as f64 + 100.0);
        expected.push(create_at(&app, &leader, spot, item, 4).await);
    }
    eventually(&app, &nearby(10_000.0, ""), |p| ids(p).len() == 7).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let extra = match &cursor {
            Some(c) => format!("&limit=2&cursor={c}"),
            None => "&limit=2".into(),
        };
        let page: Value = app
            .get(None, &nearby(10_000.0, &extra))
            .await
            .json()
            .await
            .unwrap();
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected);
}

async fn nearby_filters_by_item_category_and_fullness(app: TestApp) {
    let leader = app.user("leader").await;
    let ramen = app.item_in("030102001").await;
    let soap = app.item_in("070501001").await;
    let a = create_at(&app, &leader, north(100.0), ramen, 2).await;
    let b = create_at(&app, &leader, north(200.0), soap, 4).await;
    eventually(&app, &nearby(1_000.0, ""), |p| ids(p).len() == 2).await;
    assert_eq!(
        ids(&app
            .get(None, &nearby(1_000.0, &format!("&item_id={soap}")))
            .await
            .json()
            .await
            .unwrap()),
        vec![b]
    );
    assert_eq!(
        ids(&app
            .get(None, &nearby(1_000.0, "&category=0301"))
            .await
            .json()
            .await
            .unwrap()),
        vec![a]
    );
    let member = app.user("member").await;
    assert_eq!(
        app.post(
            &member,
            &format!("/api/v1/parties/{a}/bookings"),
            &json!(null)
        )
        .await
        .status(),
        201
    );
    eventually(&app, &nearby(1_000.0, ""), |p| ids(p) == vec![b]).await;
    let with_full: Value = app
        .get(None, &nearby(1_000.0, "&include_full=true"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&with_full), vec![a, b]);
    assert_eq!(with_full["items"][0]["status"], "full");
}

async fn nearby_markets_are_found_with_their_distance(app: TestApp) {
    let near = app.market_at(north(300.0).0, CENTER.1).await;
    let _far = app.market_at(north(30_000.0).0, CENTER.1).await;
    // Markets written straight to SQL reach the index on the next reload (ingest announces them).
    app.state.nearby.reload(app.db()).await.unwrap();
    let path = format!(
        "/api/v1/markets/nearby?lat={}&lng={}&radius_m=5000",
        CENTER.0, CENTER.1
    );
    let page: Value = app.get(None, &path).await.json().await.unwrap();
    assert_eq!(ids(&page), vec![near]);
    assert!((page["items"][0]["distance_m"].as_f64().unwrap() - 300.0).abs() < 5.0);
    let none: Value = app
        .get(None, &format!("{path}&kind=hypermarket"))
        .await
        .json()
        .await
        .unwrap();
    assert!(ids(&none).is_empty());
}

async fn bad_nearby_parameters_are_named(app: TestApp) {
    let cases = [
        ("/api/v1/parties/nearby?lng=127", 422, "lat"),
        ("/api/v1/parties/nearby?lat=37", 422, "lng"),
        ("/api/v1/parties/nearby?lat=91&lng=127", 422, "lat"),
        ("/api/v1/parties/nearby?lat=37&lng=181", 422, "lng"),
        ("/api/v1/parties/nearby?lat=NaN&lng=127", 422, "lat"),
        ("/api/v1/parties/nearby?lat=abc&lng=127", 400, "lat"),
        (
            "/api/v1/parties/nearby?lat=37&lng=127&radius_m=50001",
            422,
            "radius_m",
        ),
        (
            "/api/v1/parties/nearby?lat=37&lng=127&radius_m=-1",
            422,
            "radius_m",
        ),
        (
            "/api/v1/parties/nearby?lat=37&lng=127&limit=101",
            422,
            "limit",
        ),
        (
            "/api/v1/parties/nearby?lat=37&lng=127&cursor=c12",
            400,
            "cursor",
        ),
        (
            "/api/v1/parties/nearby?lat=37&lng=127&category=rice",
            422,
            "category",
        ),
        (
            "/api/v1/parties/nearby?lat=37&lng=127&include_full=maybe",
            400,
            "include_full",
        ),
        (
            "/api/v1/markets/nearby?lat=37&lng=127&radius_m=1e9",
            422,
            "radius_m",
        ),
    ];
    for (path, status, field) in cases {
        let code = if status == 400 {
            "malformed_request"
        } else {
            "validation_failed"
        };
        let body = assert_problem(app.get(None, path).await, status, code).await;
        assert_eq!(body["field"], field, "{path}: {body}");
    }
}

async fn the_index_equals_a_rebuild_from_sql_after_random_changes(app: TestApp) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(app.user(&format!("u{i}")).await);
    }
    let items = [
        app.item_in("030102001").await,
        app.item_in("070501001").await,
    ];
    let mut parties: Vec<(i64, usize)> = Vec::new();
    for _ in 0..300 {
        let op = rng.random_range(0..10);
        if parties.is_empty() || op < 3 {
            let leader = rng.random_range(0..users.len());
            let at = (
                37.4 + rng.random::<f64>() * 0.3,
                126.8 + rng.random::<f64>() * 0.4,
            );
            let item = *items.choose(&mut rng).unwrap();
            let id = create_at(&app, &users[leader], at, item, rng.random_range(2..5)).await;
            parties.push((id, leader));
            continue;
        }
        let (id, leader) = *parties.choose(&mut rng).unwrap();
        let user = &users[rng.random_range(0..users.len())];
        let _ = match op {
            3..=5 => {
                app.post(
                    user,
                    &format!("/api/v1/parties/{id}/bookings"),
                    &json!(null),
                )
                .await
            }
            6..=7 => {
                app.delete(user, &format!("/api/v1/parties/{id}/bookings/me"))
                    .await
            }
            8 => {
                app.patch(
                    &users[leader],
                    &format!("/api/v1/parties/{id}"),
                    &json!({"title": format!("t{}", rng.random::<u16>())}),
                )
                .await
            }
            _ => {
                app.post(
                    &users[leader],
                    &format!("/api/v1/parties/{id}/cancel"),
                    &json!({"reason": "x"}),
                )
                .await
            }
        };
    }
    let fresh = api::nearby::NearbyIndex::default();
    fresh.reload(app.db()).await.unwrap();
    let expected = fresh.party_snapshot();
    assert!(expected.len() > 10, "the scenario leaves open parties");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.state.nearby.party_snapshot() != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the index never caught up with SQL"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_created_through_one_instance_is_found_near_its_market_through_another() {
    let Some(a) = TestApp::spawn(common::Backend::Scaled).await else {
        return;
    };
    let b = a.spawn_sibling().await;
    let leader = a.user("leader").await;
    let item = a.item_in("030102001").await;
    let id = create_at(&a, &leader, north(250.0), item, 4).await;
    let page = eventually(&b, &nearby(1_000.0, ""), |p| !ids(p).is_empty()).await;
    assert_eq!(ids(&page), vec![id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_bus_connection_resyncs_the_index_from_sql() {
    let Some(app) = TestApp::spawn(common::Backend::Scaled).await else {
        return;
    };
    let leader = app.user("leader").await;
    let (market, item) = (
        app.market_at(north(100.0).0, CENTER.1).await,
        app.item_in("030102001").await,
    );
    // A party that reaches SQL without its event (as if the event was lost while disconnected):
    // written straight into the table, so the relay has nothing to publish.
    let now = app.state.now();
    let mut tx = app.db().begin().await.unwrap();
    let (party_id,): (i64,) = sqlx::query_as(
        "INSERT INTO parties (leader_id, market_id, item_id, title, description, capacity, joined, \
         meet_at, deadline_at, status, lat, lng, version, created_at, updated_at) \
         VALUES ($1, $2, $3, 'silent', '', 3, 1, $4, $5, 'recruiting', $6, $7, 1, $8, $8) RETURNING id",
    )
    .bind(leader.id)
    .bind(market)
    .bind(item)
    .bind(now + 86_400_000)
    .bind(now + 3_600_000)
    .bind(north(100.0).0)
    .bind(CENTER.1)
    .bind(now)
    .fetch_one(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(
        app.state.nearby.party_snapshot().is_empty(),
        "no event, no entry yet"
    );
    let bus = app.state.live.redis_bus.clone().expect("redis bus");
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
    let page = eventually(&app, &nearby(1_000.0, ""), |p| !ids(p).is_empty()).await;
    assert_eq!(ids(&page), vec![party_id]);
}
