//! The read side of markets and items over the bundled fixtures: paging, filters, keyword search
//! and its cache.

use crate::common;

use std::collections::HashSet;

use common::{assert_problem, TestApp};
use serde_json::Value;

on_both_backends!(
    markets_are_paged_by_id_without_repeats_or_gaps,
    markets_filter_by_kind_name_and_region,
    bad_market_list_parameters_are_refused_naming_the_parameter,
    a_market_can_be_read_by_id,
    items_are_searched_by_keyword_and_category_prefix,
    bad_item_list_parameters_are_refused_naming_the_parameter,
    keyword_searches_are_cached_until_the_cache_is_invalidated,
    an_item_can_be_read_by_id,
);

const MARKETS_CSV: &str = include_str!("../../../fixtures/markets.csv");
const ITEMS_CSV: &str = include_str!("../../../fixtures/items.csv");

/// One row of a fixture CSV, as a map from header to value.
fn fixture(csv_text: &str) -> Vec<std::collections::HashMap<String, String>> {
    csv::Reader::from_reader(csv_text.as_bytes())
        .deserialize()
        .map(|r| r.expect("fixture row"))
        .collect()
}

async fn seed(app: &TestApp) {
    let summary = api::seed::run(app.db(), &app.state.live, &app.state.clock, false)
        .await
        .expect("seed");
    assert_eq!(summary, "327 markets and 615 items loaded");
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let res = app.get(None, path).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

/// Every item of a listing, following cursors at 100 a page. `path` already has a `?`.
async fn all_pages(app: &TestApp, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let url = match &cursor {
            Some(c) => format!("{path}&limit=100&cursor={c}"),
            None => format!("{path}&limit=100"),
        };
        let page = get_json(app, &url).await;
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("pagination of {path} does not end");
}

/// A query-string-encoded value.
fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn source_ids(rows: &[Value]) -> HashSet<String> {
    rows.iter()
        .map(|r| r["source_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn markets_are_paged_by_id_without_repeats_or_gaps(app: TestApp) {
    seed(&app).await;
    let first = get_json(&app, "/api/v1/markets").await;
    assert_eq!(
        first["items"].as_array().unwrap().len(),
        20,
        "20 by default"
    );
    assert!(first["next_cursor"].is_string());

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut path = "/api/v1/markets?limit=100".to_owned();
    loop {
        let page = get_json(&app, &path).await;
        let items = page["items"].as_array().unwrap();
        sizes.push(items.len());
        seen.extend(items.iter().map(|m| m["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/markets?limit=100&cursor={c}"),
            None => {
                assert!(page["next_cursor"].is_null());
                break;
            }
        }
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, vec![100, 100, 100, 27]);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "ascending ids, so no repeats"
    );
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 327);
    let all = all_pages(&app, "/api/v1/markets?").await;
    let expected: HashSet<String> = fixture(MARKETS_CSV)
        .into_iter()
        .map(|r| r["source_id"].clone())
        .collect();
    assert_eq!(source_ids(&all), expected, "every fixture market, once");
    let first = &all[0];
    assert_eq!(first["source"], "fixtures");
    assert_eq!(first["active"], true);
    assert!(first["lat"].is_f64() && first["lng"].is_f64(), "{first}");
}

async fn markets_filter_by_kind_name_and_region(app: TestApp) {
    seed(&app).await;
    let rows = fixture(MARKETS_CSV);
    let expect =
        |pred: &dyn Fn(&std::collections::HashMap<String, String>) -> bool| -> HashSet<String> {
            rows.iter()
                .filter(|r| pred(r))
                .map(|r| r["source_id"].clone())
                .collect()
        };

    let clubs = all_pages(&app, "/api/v1/markets?kind=warehouse_club").await;
    assert_eq!(clubs.len(), 26);
    assert!(clubs.iter().all(|m| m["kind"] == "warehouse_club"));
    assert_eq!(
        source_ids(&clubs),
        expect(&|r| r["kind"] == "warehouse_club")
    );

    for q in ["시장", "중앙"] {
        let found = all_pages(&app, &format!("/api/v1/markets?q={}", enc(q))).await;
        assert!(!found.is_empty(), "{q}");
        assert!(
            found
                .iter()
                .all(|m| m["name"].as_str().unwrap().contains(q)),
            "{q}"
        );
        assert_eq!(
            source_ids(&found),
            expect(&|r| r["name"].contains(q)),
            "{q}"
        );
    }
    // Name search ignores ASCII case.
    let gs = all_pages(&app, &format!("/api/v1/markets?q={}", enc("gs더프레시"))).await;
    assert!(!gs.is_empty());
    assert_eq!(
        source_ids(&gs),
        expect(&|r| r["name"].contains("GS더프레시"))
    );

    let busan = all_pages(
        &app,
        &format!("/api/v1/markets?region={}", enc("부산광역시")),
    )
    .await;
    assert_eq!(busan.len(), 30);
    assert!(busan.iter().all(|m| m["road_address"]
        .as_str()
        .unwrap()
        .starts_with("부산광역시")));
    let district = all_pages(
        &app,
        &format!("/api/v1/markets?region={}", enc("서울특별시 마포구")),
    )
    .await;
    assert_eq!(
        source_ids(&district),
        expect(&|r| r["road_address"].starts_with("서울특별시 마포구"))
    );
    // The region is a prefix: a district name alone matches nothing.
    let middle = all_pages(&app, &format!("/api/v1/markets?region={}", enc("마포구"))).await;
    assert!(middle.is_empty());

    let both = all_pages(
        &app,
        &format!(
            "/api/v1/markets?kind=traditional_market&region={}",
            enc("부산광역시")
        ),
    )
    .await;
    assert_eq!(both.len(), 9);
    assert_eq!(
        source_ids(&both),
        expect(
            &|r| r["kind"] == "traditional_market" && r["road_address"].starts_with("부산광역시")
        )
    );
    assert!(all_pages(&app, "/api/v1/markets?kind=spaceport")
        .await
        .is_empty());
    // Wildcards in the keyword are literal.
    assert!(all_pages(&app, &format!("/api/v1/markets?q={}", enc("%")))
        .await
        .is_empty());
    assert!(all_pages(&app, &format!("/api/v1/markets?q={}", enc("_")))
        .await
        .is_empty());
    // An empty filter is no filter.
    assert_eq!(all_pages(&app, "/api/v1/markets?q=&kind=").await.len(), 327);
}

async fn bad_market_list_parameters_are_refused_naming_the_parameter(app: TestApp) {
    let long = "가".repeat(101);
    let cases = [
        ("limit=0".to_owned(), 422, "validation_failed", "limit"),
        ("limit=101".to_owned(), 422, "validation_failed", "limit"),
        ("limit=x".to_owned(), 400, "malformed_request", "limit"),
        ("cursor=nope".to_owned(), 400, "malformed_request", "cursor"),
        (format!("q={}", enc(&long)), 422, "validation_failed", "q"),
        (
            format!("region={}", enc(&long)),
            422,
            "validation_failed",
            "region",
        ),
        (
            format!("kind={}", "k".repeat(41)),
            422,
            "validation_failed",
            "kind",
        ),
    ];
    for (query, status, code, field) in cases {
        let res = app.get(None, &format!("/api/v1/markets?{query}")).await;
        let body = assert_problem(res, status, code).await;
        assert_eq!(body["field"], field, "{query}: {body}");
    }
}

async fn a_market_can_be_read_by_id(app: TestApp) {
    seed(&app).await;
    let page = get_json(
        &app,
        &format!("/api/v1/markets?region={}&limit=1", enc("부산광역시")),
    )
    .await;
    let listed = &page["items"][0];
    let id = listed["id"].as_i64().unwrap();
    let market = get_json(&app, &format!("/api/v1/markets/{id}")).await;
    assert_eq!(&market, listed, "the same market as listed");
    let row = fixture(MARKETS_CSV)
        .into_iter()
        .find(|r| r["source_id"] == market["source_id"].as_str().unwrap())
        .expect("a fixture market");
    assert_eq!(market["name"], row["name"].as_str());
    assert_eq!(market["kind"], row["kind"].as_str());
    assert_eq!(market["road_address"], row["road_address"].as_str());

    assert_problem(
        app.get(None, "/api/v1/markets/999999").await,
        404,
        "not_found",
    )
    .await;
    let body = assert_problem(
        app.get(None, "/api/v1/markets/abc").await,
        400,
        "malformed_request",
    )
    .await;
    assert_eq!(body["field"], "id");
}

async fn items_are_searched_by_keyword_and_category_prefix(app: TestApp) {
    seed(&app).await;
    let rows = fixture(ITEMS_CSV);
    let ramen = all_pages(&app, &format!("/api/v1/items?q={}", enc("신라면"))).await;
    assert_eq!(ramen.len(), 6);
    assert!(ramen
        .iter()
        .all(|i| i["name"].as_str().unwrap().contains("신라면")));
    let expected: HashSet<String> = rows
        .iter()
        .filter(|r| r["name"].contains("신라면"))
        .map(|r| r["source_id"].clone())
        .collect();
    assert_eq!(source_ids(&ramen), expected);

    let noodles = all_pages(&app, "/api/v1/items?category=030301").await;
    assert!(!noodles.is_empty());
    assert!(noodles
        .iter()
        .all(|i| i["category_code"].as_str().unwrap().starts_with("030301")));
    let expected: HashSet<String> = rows
        .iter()
        .filter(|r| r["category_code"].starts_with("030301"))
        .map(|r| r["source_id"].clone())
        .collect();
    assert_eq!(source_ids(&noodles), expected);

    let grains = all_pages(&app, "/api/v1/items?category=03").await;
    assert_eq!(
        grains.len(),
        rows.iter()
            .filter(|r| r["category_code"].starts_with("03"))
            .count()
    );
    let cups = all_pages(
        &app,
        &format!("/api/v1/items?category=030301002&q={}", enc("신라면")),
    )
    .await;
    assert_eq!(cups.len(), 2, "keyword and category combine");
    assert!(all_pages(&app, "/api/v1/items?category=99")
        .await
        .is_empty());

    let all = all_pages(&app, "/api/v1/items?").await;
    assert_eq!(all.len(), 615);
    assert!(all
        .windows(2)
        .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64()));
    // A keyword search pages too, with the same cursors.
    let first = get_json(&app, &format!("/api/v1/items?q={}&limit=4", enc("신라면"))).await;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = get_json(
        &app,
        &format!("/api/v1/items?q={}&limit=4&cursor={cursor}", enc("신라면")),
    )
    .await;
    let mut both: Vec<Value> = first["items"].as_array().unwrap().clone();
    both.extend(second["items"].as_array().unwrap().iter().cloned());
    assert_eq!(both, ramen);
    assert!(second["next_cursor"].is_null());
}

async fn bad_item_list_parameters_are_refused_naming_the_parameter(app: TestApp) {
    let cases = [
        ("category=03a", 422, "validation_failed", "category"),
        ("category=0301-", 422, "validation_failed", "category"),
        ("category=0303010011", 422, "validation_failed", "category"),
        ("limit=0", 422, "validation_failed", "limit"),
        ("limit=101", 422, "validation_failed", "limit"),
        ("limit=ten", 400, "malformed_request", "limit"),
        ("cursor=%20x", 400, "malformed_request", "cursor"),
    ];
    for (query, status, code, field) in cases {
        let res = app.get(None, &format!("/api/v1/items?{query}")).await;
        let body = assert_problem(res, status, code).await;
        assert_eq!(body["field"], field, "{query}: {body}");
    }
}

async fn keyword_searches_are_cached_until_the_cache_is_invalidated(app: TestApp) {
    seed(&app).await;
    let path = format!("/api/v1/items?q={}", enc("신라면"));
    let before = get_json(&app, &path).await;
    let items = before["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    let renamed = items[0]["id"].as_i64().unwrap();
    let old_name = items[0]["name"].as_str().unwrap().to_owned();

    let mut tx = app.db().begin().await.unwrap();
    sqlx::query("UPDATE items SET name = $1 WHERE id = $2")
        .bind("농심 안성탕면 125g×5입")
        .bind(renamed)
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The database changed, the cached search did not.
    let cached = get_json(&app, &path).await;
    assert_eq!(cached, before, "served from the cache");
    assert_eq!(cached["items"][0]["name"], old_name.as_str());
    // Reads that are not keyword searches are not cached.
    let item = get_json(&app, &format!("/api/v1/items/{renamed}")).await;
    assert_eq!(item["name"], "농심 안성탕면 125g×5입");
    let listed = all_pages(&app, "/api/v1/items?category=030301").await;
    assert!(listed
        .iter()
        .any(|i| i["id"] == renamed && i["name"] == "농심 안성탕면 125g×5입"));
    // Another keyword is a separate entry, computed fresh.
    let fresh = get_json(&app, &format!("/api/v1/items?q={}", enc("안성탕면"))).await;
    assert!(fresh["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == renamed));

    store::catalog::invalidate_item_search(app.state.live.cache.as_ref())
        .await
        .unwrap();
    let after = get_json(&app, &path).await;
    let after_ids: Vec<i64> = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(after_ids.len(), 5, "{after}");
    assert!(
        !after_ids.contains(&renamed),
        "the renamed item no longer matches"
    );
}

async fn an_item_can_be_read_by_id(app: TestApp) {
    seed(&app).await;
    let page = get_json(&app, &format!("/api/v1/items?q={}&limit=1", enc("신라면"))).await;
    let listed = &page["items"][0];
    let id = listed["id"].as_i64().unwrap();
    let item = get_json(&app, &format!("/api/v1/items/{id}")).await;
    assert_eq!(&item, listed);
    assert_eq!(item["name"], "농심 신라면 120g×5입");
    assert_eq!(item["category_code"], "030301001");
    assert_eq!(item["unit"], "g");
    assert_eq!(item["base_count"], 120.0);
    assert_eq!(item["total_count"], 600.0);
    assert_eq!(item["total_unit"], "g");
    assert_eq!(item["active"], true);
    assert_problem(
        app.get(None, "/api/v1/items/999999").await,
        404,
        "not_found",
    )
    .await;
    let body = assert_problem(
        app.get(None, "/api/v1/items/x1").await,
        400,
        "malformed_request",
    )
    .await;
    assert_eq!(body["field"], "id");
}
