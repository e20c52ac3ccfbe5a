//! The paged client against the mock.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use ingest::mock::{EmptyItems, MockConfig, MockData, MockServer, Style};
use ingest::FetchErrorKind;

const ROWS: usize = 2_350;

async fn every_row_arrives_exactly_once_with(concurrency: usize) {
    let server = mock(MockData::synthetic_items(ROWS), &[]).await;
    let cfg = paged_config(server.items_url(), 100, concurrency);
    let (pages, stats) = collect(&cfg).await;
    let mut ids = HashSet::new();
    let mut page_numbers = HashSet::new();
    for page in pages {
        let page = page.expect("page");
        assert!(
            page_numbers.insert(page.page_no),
            "page {} twice",
            page.page_no
        );
        assert_eq!(page.total_pages, 24);
        for record in page.records {
            assert!(
                ids.insert(record.source_id.clone()),
                "{} twice",
                record.source_id
            );
        }
    }
    assert_eq!(ids.len(), ROWS);
    assert_eq!(page_numbers.len(), 24);
    assert_eq!(stats.calls, 24);
    assert_eq!(server.requests(), 24);
}

#[tokio::test]
async fn every_row_arrives_exactly_once_with_concurrency_1() {
    every_row_arrives_exactly_once_with(1).await;
}

#[tokio::test]
async fn every_row_arrives_exactly_once_with_concurrency_16() {
    every_row_arrives_exactly_once_with(16).await;
}

#[tokio::test]
async fn pages_are_fetched_concurrently_within_the_bound() {
    // Each page takes 50 ms at the mock, so pages requested together overlap there.
    let cfg = MockConfig {
        latency: Duration::from_millis(50),
        ..MockConfig::default()
    };
    let server = MockServer::start(MockData::synthetic_items(1_600), cfg)
        .await
        .expect("mock");
    let (records, _) = records(&paged_config(server.items_url(), 100, 4)).await;
    assert_eq!(records.len(), 1_600);
    let peak = server.peak_in_flight();
    assert!(
        (2..=4).contains(&peak),
        "{peak} pages at once with concurrency 4"
    );
}

#[tokio::test]
async fn injected_transient_failures_are_retried_and_the_result_equals_a_clean_run() {
    let clean = mock(MockData::synthetic_items(ROWS), &[]).await;
    let (expected, _) = records(&paged_config(clean.items_url(), 100, 8)).await;

    let faults = [
        "500@1x1",
        "503@2x2",
        "429@3x1",
        "quota@4x2",
        "gateway:22:429@5x1",
        "gateway:22@6x1",
        "truncated@7x2",
        "empty@8x1",
        "code:01@9x1",
        "502@24x3",
    ];
    let injected: u64 = 1 + 2 + 1 + 2 + 1 + 1 + 2 + 1 + 1 + 3;
    for concurrency in [1, 16] {
        let faulty = mock(MockData::synthetic_items(ROWS), &faults).await;
        let (got, stats) = records(&paged_config(faulty.items_url(), 100, concurrency)).await;
        assert_eq!(got, expected, "concurrency {concurrency}");
        assert_eq!(
            (stats.retries, stats.calls),
            (injected, 24 + injected),
            "concurrency {concurrency}"
        );
    }
}

#[tokio::test]
async fn a_timed_out_page_is_retried() {
    let server = mock(MockData::synthetic_items(300), &["delay:2000@2x1"]).await;
    let mut cfg = paged_config(server.items_url(), 100, 4);
    cfg.http.timeout = Duration::from_millis(300);
    let (got, stats) = records(&cfg).await;
    assert_eq!(got.len(), 300);
    assert_eq!(stats.retries, 1);
}

#[tokio::test]
async fn a_permanent_failure_stops_the_run_naming_page_and_code() {
    let server = mock(MockData::synthetic_items(1_000), &["gateway:30@3"]).await;
    let (pages, stats) = collect(&paged_config(server.items_url(), 100, 1)).await;
    assert_eq!(
        pages.len(),
        3,
        "pages 1 and 2, then the error, then nothing"
    );
    assert!(pages[0].is_ok() && pages[1].is_ok());
    let error = pages[2].as_ref().expect_err("page 3 fails");
    assert_eq!(
        (error.page, error.code().as_deref(), error.attempts),
        (Some(3), Some("30"), 1)
    );
    assert!(error.is_permanent());
    let message = error.to_string();
    assert!(
        message.contains("page 3")
            && message.contains("30")
            && message.contains("SERVICE_KEY_IS_NOT_REGISTERED_ERROR"),
        "{message}"
    );
    assert_eq!(stats.retries, 0, "a bad key is not retried");
}

#[tokio::test]
async fn bad_parameters_unknown_services_and_malformed_pages_are_permanent() {
    for (fault, code) in [
        ("code:10@2", Some("10")),
        ("gateway:31:403@2", Some("31")),
        ("404@2", Some("404")),
        ("malformed@2", None),
    ] {
        let server = mock(MockData::synthetic_items(500), &[fault]).await;
        let (pages, stats) = collect(&paged_config(server.items_url(), 100, 1)).await;
        let error = pages.last().expect("pages").as_ref().expect_err(fault);
        assert_eq!(
            (error.page, error.code().as_deref()),
            (Some(2), code),
            "{fault}"
        );
        assert!(error.is_permanent(), "{fault}");
        assert_eq!(stats.retries, 0, "{fault}");
    }
    let server = mock(MockData::synthetic_items(10), &[]).await;
    let (pages, _) = collect(&paged_config(server.url("/NoSuchOperation"), 100, 1)).await;
    let error = pages[0].as_ref().expect_err("unknown service");
    assert_eq!((error.page, error.code().as_deref()), (Some(1), Some("12")));
    assert_eq!(error.operation, "NoSuchOperation");
}

#[tokio::test]
async fn a_page_failing_past_its_retries_is_reported_and_the_other_pages_arrive() {
    let server = mock(MockData::synthetic_items(500), &["500@3"]).await;
    let mut cfg = paged_config(server.items_url(), 100, 2);
    cfg.http.retry.max_retries = 2;
    let (pages, _) = collect(&cfg).await;
    let (ok, failed): (Vec<_>, Vec<_>) = pages.into_iter().partition(Result::is_ok);
    assert_eq!(ok.len(), 4);
    let error = failed[0].as_ref().expect_err("page 3");
    assert_eq!(
        (error.page, error.attempts, error.is_transient()),
        (Some(3), 3, true)
    );
    assert!(matches!(error.kind, FetchErrorKind::Status { status: 500 }));
}

#[tokio::test]
async fn the_service_key_is_encoded_exactly_once_whichever_form_is_configured() {
    let server = mock(MockData::synthetic_items(30), &[]).await;
    for key in [KEY_ENCODED, KEY_DECODED] {
        let mut cfg = paged_config(server.items_url(), 10, 2);
        cfg.service_key = key.into();
        assert_eq!(records(&cfg).await.0.len(), 30, "{key}");
    }
    // A key encoded twice by hand reaches the gateway as such and is refused, without the key in the message.
    let mut cfg = paged_config(server.items_url(), 10, 2);
    cfg.service_key = "a1B2%252Bc3%252Fd4%253D%253D".into();
    let (pages, _) = collect(&cfg).await;
    let error = pages[0].as_ref().expect_err("refused");
    assert_eq!(error.code().as_deref(), Some("30"));
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("a1B2"), "{shown}");
}

#[tokio::test]
async fn the_mock_refuses_a_key_sent_raw_or_encoded_twice() {
    let server = mock(MockData::synthetic_items(1), &[]).await;
    let client = reqwest::Client::new();
    for (key, accepted) in [
        (KEY_ENCODED, true),
        (KEY_DECODED, false),
        ("a1B2%252Bc3%252Fd4%253D%253D", false),
    ] {
        let body = client
            .get(format!("{}?serviceKey={key}&type=json", server.items_url()))
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("body");
        assert_eq!(
            !body.contains("<returnReasonCode>30"),
            accepted,
            "{key}: {body}"
        );
    }
}

#[tokio::test]
async fn every_format_switch_name_and_xml_replies_work() {
    let server = mock(MockData::synthetic_items(250), &[]).await;
    for (name, value) in [
        ("type", "json"),
        ("_type", "json"),
        ("returnType", "json"),
        ("dataType", "JSON"),
        ("type", "xml"),
        ("", ""),
    ] {
        let mut cfg = paged_config(server.items_url(), 100, 3);
        cfg.format_param = name.into();
        cfg.format_value = value.into();
        let (got, _) = records(&cfg).await;
        assert_eq!(got.len(), 250, "{name}={value}");
    }
}

#[tokio::test]
async fn every_reply_quirk_of_the_mock_parses() {
    let styles = [
        Style {
            numbers_as_strings: true,
            ..Style::default()
        },
        Style {
            bare_array: true,
            success_code: "0000".into(),
            ..Style::default()
        },
        Style {
            empty_items: EmptyItems::Missing,
            success_code: "000".into(),
            ..Style::default()
        },
        Style {
            empty_items: EmptyItems::EmptyObject,
            ..Style::default()
        },
    ];
    for style in styles {
        // 201 rows at 100 a page: the last page has one row, sent as an object (or a one-element array).
        let cfg = MockConfig {
            style: style.clone(),
            ..MockConfig::default()
        };
        let server = MockServer::start(MockData::synthetic_items(201), cfg)
            .await
            .expect("mock");
        let (got, _) = records(&paged_config(server.items_url(), 100, 2)).await;
        assert_eq!(got.len(), 201, "{style:?}");

        let cfg = MockConfig {
            style: style.clone(),
            ..MockConfig::default()
        };
        let empty = MockServer::start(MockData::synthetic_items(0), cfg)
            .await
            .expect("mock");
        let (pages, stats) = collect(&paged_config(empty.items_url(), 100, 2)).await;
        assert_eq!(pages.len(), 1, "{style:?}");
        let page = pages
            .into_iter()
            .next()
            .and_then(Result::ok)
            .expect("empty page");
        assert_eq!(
            (page.total_count, page.records.len(), stats.calls),
            (0, 0, 1)
        );
    }
}

#[tokio::test]
async fn a_server_that_caps_page_size_is_paged_at_its_size() {
    let cfg = MockConfig {
        max_rows_per_page: 50,
        ..MockConfig::default()
    };
    let server = MockServer::start(MockData::synthetic_items(420), cfg)
        .await
        .expect("mock");
    let (got, stats) = records(&paged_config(server.items_url(), 1000, 4)).await;
    assert_eq!(got.len(), 420);
    assert_eq!(stats.calls, 9);
}

#[tokio::test]
async fn invalid_rows_are_rejected_per_row_not_per_page() {
    let mut rows: Vec<ingest::Row> = (0..5).map(ingest::mock::synthetic_item).collect();
    rows[2] = ingest::Row::from_pairs([("goodId", "x"), ("goodName", ""), ("goodBaseCnt", "1")]);
    let server = mock(MockData::new(rows, Vec::new()), &[]).await;
    let (pages, _) = collect(&paged_config(server.items_url(), 100, 1)).await;
    let page = pages.into_iter().next().and_then(Result::ok).expect("page");
    assert_eq!(page.records.len(), 4);
    assert_eq!(page.rejected.len(), 1);
    assert_eq!(
        (
            page.rejected[0].source_id.as_deref(),
            page.rejected[0].field
        ),
        (Some("x"), "name")
    );
}

#[tokio::test]
async fn a_truncated_body_is_a_transient_body_error() {
    let server = mock(MockData::synthetic_items(300), &["truncated@2"]).await;
    let mut cfg = paged_config(server.items_url(), 100, 1);
    cfg.http.retry.max_retries = 1;
    let (pages, _) = collect(&cfg).await;
    let error = pages
        .iter()
        .find_map(|p| p.as_ref().err())
        .expect("page 2 fails");
    assert_eq!((error.page, error.attempts), (Some(2), 2));
    assert!(
        matches!(error.kind, FetchErrorKind::Body(_)),
        "{:?}",
        error.kind
    );
    assert!(error.is_transient());
    assert_eq!(
        pages.iter().filter(|p| p.is_ok()).count(),
        2,
        "pages 1 and 3 arrive"
    );
}
