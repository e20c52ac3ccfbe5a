//! The consumer-price (참가격) client against the mock.

mod common;

use common::*;
use ingest::envelope::{parse_price, Reply};
use ingest::mock::{MockConfig, MockData, MockServer};
use ingest::price::{fetch_goods, fetch_stores, PriceClient, PriceConfig};
use ingest::Row;

fn fixture_rows(name: &str) -> Vec<Row> {
    let path = format!(
        "{}/../fixtures/public-api/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).expect("fixture");
    match parse_price(&bytes).expect("parses") {
        Reply::Rows(rows) => rows.rows,
        Reply::Fault(fault) => panic!("{fault:?}"),
    }
}

fn price_config(server: &MockServer) -> PriceConfig {
    let mut cfg = PriceConfig::new(server.price_url(), KEY_DECODED);
    cfg.http = quick_http();
    cfg
}

async fn fixture_mock(faults: &[&str]) -> MockServer {
    mock(
        MockData::new(
            fixture_rows("price-goods.xml"),
            fixture_rows("price-stores.xml"),
        ),
        faults,
    )
    .await
}

#[tokio::test]
async fn goods_arrive_as_items_from_the_service_root() {
    let server = fixture_mock(&[]).await;
    let list = fetch_goods(&price_config(&server)).await.expect("goods");
    let ids: Vec<_> = list.records.iter().map(|i| i.source_id.as_str()).collect();
    assert_eq!(ids, ["151", "1048", "5003"]);
    assert_eq!(list.records[1].unit.as_deref(), Some("ML"));
    assert_eq!(list.records[2].total_count, Some(1800.0));
}

#[tokio::test]
async fn swapped_and_placeholder_store_coordinates_are_handled() {
    let server = fixture_mock(&[]).await;
    let list = fetch_stores(&price_config(&server)).await.expect("stores");
    let by_id = |id: &str| list.records.iter().find(|m| m.source_id == id).expect(id);
    let usual = by_id("100");
    assert_eq!(
        (usual.lat, usual.lng, usual.kind.as_str()),
        (Some(37.5398), Some(127.0533), "hypermarket")
    );
    assert_eq!(
        usual.road_address.as_deref(),
        Some("서울특별시 성동구 뚝섬로 379 (성수동2가)")
    );
    let swapped = by_id("215");
    assert_eq!(
        (swapped.lat, swapped.lng, swapped.kind.as_str()),
        (Some(37.5557), Some(126.9046), "supermarket")
    );
    let placeholder = by_id("377");
    assert_eq!(
        (placeholder.lat, placeholder.lng, placeholder.kind.as_str()),
        (None, None, "department_store")
    );
    assert_eq!(
        placeholder.road_address.as_deref(),
        Some("경기도 성남시 분당구 백현동 541")
    );
    let blank = by_id("1021");
    assert_eq!(
        (blank.lat, blank.lng, blank.kind.as_str()),
        (None, None, "convenience_store")
    );
    assert_eq!(list.records.len(), 4);
    assert_eq!(list.rejected.len(), 1);
    assert_eq!(
        (
            list.rejected[0].source_id.as_deref(),
            list.rejected[0].field
        ),
        (Some("1107"), "name")
    );
}

#[tokio::test]
async fn a_price_call_is_retried_on_transient_faults_and_counted() {
    let server = fixture_mock(&["503x1", "quota@1x2"]).await;
    let client = PriceClient::new(&price_config(&server)).expect("client");
    let goods = client.goods().await.expect("goods");
    assert_eq!(goods.records.len(), 3);
    // Attempt 1 gets the 503, attempt 2 the quota code (the first rule that fires wins), attempt 3 succeeds.
    let stats = client.stats().snapshot();
    assert_eq!((stats.calls, stats.retries), (3, 2));
}

#[tokio::test]
async fn the_key_parameter_spelling_is_configurable() {
    let server = fixture_mock(&[]).await;
    let mut cfg = price_config(&server);
    cfg.key_param = "ServiceKey".into();
    assert_eq!(fetch_stores(&cfg).await.expect("stores").records.len(), 4);
}

#[tokio::test]
async fn a_wrong_key_stops_with_the_gateway_code() {
    let server = fixture_mock(&[]).await;
    let mut cfg = price_config(&server);
    cfg.service_key = "someone-else".into();
    let error = fetch_goods(&cfg).await.expect_err("refused");
    assert_eq!(
        (
            error.operation.as_str(),
            error.page,
            error.code().as_deref()
        ),
        ("getProductInfoSvc.do", None, Some("30"))
    );
    assert_eq!(error.attempts, 1);
}

#[tokio::test]
async fn an_empty_list_is_an_empty_result() {
    let server = MockServer::start(MockData::new(Vec::new(), Vec::new()), MockConfig::default())
        .await
        .expect("mock");
    let mut cfg = price_config(&server);
    cfg.service_key = String::new();
    let list = fetch_stores(&cfg).await.expect("stores");
    assert!(list.records.is_empty() && list.rejected.is_empty());
}

#[tokio::test]
async fn the_mock_serves_the_published_do_paths_and_404s_the_old_ones() {
    let server = fixture_mock(&[]).await;
    let http = reqwest::Client::new();
    let get = |operation: &str| {
        let url = format!(
            "{}/{operation}?serviceKey={KEY_ENCODED}",
            server.price_url()
        );
        let http = http.clone();
        async move { http.get(url).send().await.expect("mock answers") }
    };
    for (operation, row) in [
        ("getProductInfoSvc.do", "<goodId>151</goodId>"),
        ("getStoreInfoSvc.do", "<entpId>100</entpId>"),
    ] {
        let reply = get(operation).await;
        assert_eq!(reply.status(), 200, "{operation}");
        let body = reply.text().await.expect("body");
        assert!(body.contains(row), "{operation}: {body}");
    }
    for operation in ["getProductInfoSvc", "getStoreInfoSvc", "getNoSuchSvc.do"] {
        assert_eq!(get(operation).await.status(), 404, "{operation}");
    }
}
