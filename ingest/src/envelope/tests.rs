use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../fixtures/public-api/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn rows(reply: Result<Reply, ParseError>) -> Rows {
    match reply {
        Ok(Reply::Rows(rows)) => rows,
        other => panic!("expected rows, got {other:?}"),
    }
}

fn fault(reply: Result<Reply, ParseError>) -> ApiFault {
    match reply {
        Ok(Reply::Fault(fault)) => fault,
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn a_json_page_with_mixed_numbers_and_strings_parses() {
    let page = rows(parse_paged(&fixture("paged-items-ok.json")));
    assert_eq!(
        (page.total_count, page.page_no, page.num_of_rows),
        (Some(7), Some(1), Some(3))
    );
    assert_eq!(page.rows.len(), 3);
    assert_eq!(page.rows[1].get("goodId"), Some("232"));
    assert_eq!(page.rows[1].get("goodTotalCnt"), Some("2520"));
    assert_eq!(page.rows[2].get("detailMean"), Some(""));
}

#[test]
fn a_single_row_sent_as_an_object_is_one_row() {
    let page = rows(parse_paged(&fixture("paged-items-single-row.json")));
    assert_eq!(page.rows.len(), 1);
    assert_eq!(page.total_count, Some(7));
    assert_eq!(page.rows[0].get("goodId"), Some("3021"));
    let page = rows(parse_paged(&fixture("paged-items-single-row.xml")));
    assert_eq!((page.rows.len(), page.page_no), (1, Some(3)));
}

#[test]
fn every_way_of_saying_no_rows_gives_zero_rows() {
    for name in [
        "paged-items-empty-string.json",
        "paged-items-empty-object.json",
        "paged-items-missing.json",
        "paged-items-nodata-03.json",
        "paged-items-empty.xml",
    ] {
        let page = rows(parse_paged(&fixture(name)));
        assert!(page.rows.is_empty(), "{name}");
        assert_eq!(page.total_count, Some(0), "{name}");
    }
}

#[test]
fn a_bare_array_in_items_and_a_four_digit_success_code_parse() {
    let page = rows(parse_paged(&fixture("paged-items-bare-array.json")));
    assert_eq!(page.rows.len(), 2);
    assert_eq!(page.rows[1].get("goodName"), Some("CJ 햇반(210g*12입)"));
}

#[test]
fn an_xml_page_parses_like_the_json_one() {
    let page = rows(parse_paged(&fixture("paged-items-ok.xml")));
    assert_eq!((page.total_count, page.rows.len()), (Some(2), 2));
    assert_eq!(
        page.rows[1].get("goodName"),
        Some("CJ 햇반(210g*12입) & 김")
    );
    assert_eq!(page.rows[1].get("detailMean"), Some(""));
}

#[test]
fn gateway_errors_are_faults_with_their_reason_code() {
    let key = fault(parse_paged(&fixture(
        "gateway-error-key-not-registered.xml",
    )));
    assert_eq!((key.code.as_str(), key.gateway), ("30", true));
    assert_eq!(key.message, "SERVICE_KEY_IS_NOT_REGISTERED_ERROR");
    assert!(!key.is_transient());
    let quota = fault(parse_paged(&fixture("gateway-error-quota.xml")));
    assert_eq!(quota.code, "22");
    assert!(quota.is_transient());
    let service = fault(parse_price(&fixture("gateway-error-no-service.xml")));
    assert_eq!(service.code, "12");
    assert!(!service.is_transient());
}

#[test]
fn a_non_success_result_code_at_http_200_is_a_fault() {
    let quota = fault(parse_paged(&fixture("quota-error.json")));
    assert_eq!((quota.code.as_str(), quota.gateway), ("22", false));
    assert!(quota.is_transient());
    let bad = fault(parse_paged(&fixture("bad-parameter-error.json")));
    assert_eq!(bad.code, "10");
    assert!(!bad.is_transient());
    let xml = fault(parse_paged(b"<response><header><resultCode>11</resultCode><resultMsg>NO_MANDATORY</resultMsg></header></response>"));
    assert_eq!(xml.code, "11");
}

#[test]
fn success_codes_of_any_width_and_numeric_codes_are_understood() {
    for code in ["0", "00", "000", "0000"] {
        assert_eq!(classify_code(code), CodeClass::Success, "{code}");
    }
    assert_eq!(classify_code("03"), CodeClass::NoData);
    assert_eq!(classify_code("22"), CodeClass::Transient);
    assert_eq!(classify_code("INFO-200"), CodeClass::Permanent);
    let page = rows(parse_paged(
        br#"{"response":{"header":{"resultCode":0},"body":{"items":"","totalCount":"0"}}}"#,
    ));
    assert_eq!(page.total_count, Some(0));
}

#[test]
fn a_gateway_error_in_json_form_is_understood() {
    let body = br#"{"OpenAPI_ServiceResponse":{"cmmMsgHeader":{"errMsg":"SERVICE ERROR","returnAuthMsg":"UNREGISTERED_IP_ERROR","returnReasonCode":"32"}}}"#;
    assert_eq!(fault(parse_paged(body)).code, "32");
}

#[test]
fn malformed_bodies_are_errors_not_empty_pages() {
    assert!(matches!(parse_paged(b""), Err(ParseError::Empty)));
    assert!(matches!(
        parse_paged(b"Service Unavailable"),
        Err(ParseError::NotJsonOrXml(_))
    ));
    assert!(matches!(
        parse_paged(br#"{"response":{"header":{"resultCode":"00"},"body":{"items":{"item":["#),
        Err(ParseError::Json(_))
    ));
    assert!(matches!(
        parse_paged(b"<response><header><resultCode>00</resultCode></header><body><items><item>"),
        Err(ParseError::Xml(_))
    ));
    assert!(matches!(
        parse_paged(br#"{"response":{"body":{"totalCount":"many"}}}"#),
        Err(ParseError::BadNumber {
            field: "totalCount",
            ..
        })
    ));
    assert!(matches!(
        parse_paged(b"<html><body>oops</body></html>"),
        Err(ParseError::Shape(_))
    ));
    assert!(matches!(
        parse_paged(br#"{"something":"else"}"#),
        Err(ParseError::Shape(_))
    ));
}

#[test]
fn price_goods_rows_are_any_children_of_result() {
    let list = rows(parse_price(&fixture("price-goods.xml")));
    assert_eq!(list.total_count, None);
    let ids: Vec<_> = list.rows.iter().filter_map(|r| r.get("goodId")).collect();
    assert_eq!(ids, ["151", "1048", "5003"]);
}

#[test]
fn price_store_rows_parse_with_every_field_as_text() {
    let list = rows(parse_price(&fixture("price-stores.xml")));
    assert_eq!(list.rows.len(), 5);
    assert_eq!(list.rows[1].get("xMapCoord"), Some("126.9046"));
    assert_eq!(list.rows[2].get("xMapCoord"), Some("1"));
}

#[test]
fn a_price_reply_with_a_failing_header_is_a_fault() {
    let body = "<response><header><resultCode>30</resultCode><resultMsg>SERVICE KEY IS NOT REGISTERED ERROR.</resultMsg></header></response>";
    assert_eq!(fault(parse_price(body.as_bytes())).code, "30");
}
