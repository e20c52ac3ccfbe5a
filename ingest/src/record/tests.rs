use super::*;

fn goods(pairs: &[(&'static str, &str)]) -> Row {
    Row::from_pairs(pairs.iter().copied())
}

fn store(x: &str, y: &str) -> Row {
    goods(&[
        ("entpId", "100"),
        ("entpName", "이마트 성수점"),
        ("entpTypeCode", "LM"),
        ("xMapCoord", x),
        ("yMapCoord", y),
    ])
}

#[test]
fn a_complete_goods_row_becomes_an_item() {
    let row = goods(&[
        ("goodId", "151"),
        ("goodName", " 농심 신라면(120g*5입) "),
        ("productEntpCode", "62"),
        ("goodUnitDivCode", "G"),
        ("goodBaseCnt", "100"),
        ("goodSmlclsCode", "030201001"),
        ("goodTotalCnt", "600"),
        ("goodTotalDivCode", "G"),
    ]);
    let item = item_from_goods(&row).expect("valid");
    assert_eq!(item.source_id, "151");
    assert_eq!(item.name, "농심 신라면(120g*5입)");
    assert_eq!(item.category_code.as_deref(), Some("030201001"));
    assert_eq!(item.base_count, Some(100.0));
    assert_eq!(item.total_count, Some(600.0));
    assert_eq!(item.maker.as_deref(), Some("62"));
}

#[test]
fn an_item_without_an_id_or_name_is_rejected_naming_the_field() {
    let no_id = item_from_goods(&goods(&[("goodName", "라면")])).unwrap_err();
    assert_eq!(no_id.field, "source_id");
    assert_eq!(no_id.source_id, None);
    let no_name = item_from_goods(&goods(&[("goodId", "7"), ("goodName", " ")])).unwrap_err();
    assert_eq!(no_name.field, "name");
    assert_eq!(no_name.source_id.as_deref(), Some("7"));
}

#[test]
fn counts_must_be_numbers_within_range() {
    let bad = item_from_goods(&goods(&[
        ("goodId", "1"),
        ("goodName", "a"),
        ("goodBaseCnt", "abc"),
    ]));
    assert_eq!(bad.unwrap_err().field, "base_count");
    let negative = item_from_goods(&goods(&[
        ("goodId", "1"),
        ("goodName", "a"),
        ("goodTotalCnt", "-3"),
    ]));
    assert_eq!(negative.unwrap_err().field, "total_count");
    let huge = item_from_goods(&goods(&[
        ("goodId", "1"),
        ("goodName", "a"),
        ("goodTotalCnt", "1e12"),
    ]));
    assert_eq!(huge.unwrap_err().field, "total_count");
    let nan = item_from_goods(&goods(&[
        ("goodId", "1"),
        ("goodName", "a"),
        ("goodTotalCnt", "NaN"),
    ]));
    assert_eq!(nan.unwrap_err().field, "total_count");
    let grouped = item_from_goods(&goods(&[
        ("goodId", "1"),
        ("goodName", "a"),
        ("goodTotalCnt", "1,500"),
    ]));
    assert_eq!(grouped.expect("valid").total_count, Some(1500.0));
}

#[test]
fn blank_counts_are_missing_not_zero() {
    let item = item_from_goods(&goods(&[
        ("goodId", "1"),
        ("goodName", "a"),
        ("goodBaseCnt", ""),
    ]))
    .expect("valid");
    assert_eq!(item.base_count, None);
}

#[test]
fn an_overlong_name_or_a_control_character_is_rejected() {
    let long = "가".repeat(301);
    let err = item_from_goods(&goods(&[("goodId", "1"), ("goodName", &long)])).unwrap_err();
    assert_eq!(err.field, "name");
    let err = item_from_goods(&goods(&[("goodId", "1\u{0}"), ("goodName", "a")])).unwrap_err();
    assert_eq!(err.field, "source_id");
}

#[test]
fn coordinates_in_the_usual_order_are_kept() {
    let market = market_from_store(&store("37.5446", "127.0557")).expect("valid");
    assert_eq!((market.lat, market.lng), (Some(37.5446), Some(127.0557)));
    assert_eq!(market.kind, "hypermarket");
}

#[test]
fn swapped_coordinates_are_put_back_in_order() {
    let market = market_from_store(&store("127.0557", "37.5446")).expect("valid");
    assert_eq!((market.lat, market.lng), (Some(37.5446), Some(127.0557)));
}

#[test]
fn placeholder_blank_or_out_of_range_coordinates_leave_the_market_without_a_position() {
    for (x, y) in [
        ("1", "1"),
        ("", ""),
        ("1", "127.0"),
        ("0", "0"),
        ("37.5", "37.5"),
        ("abc", "127.0"),
        ("40.1", "127.0"),
    ] {
        let market = market_from_store(&store(x, y)).expect("kept");
        assert_eq!((market.lat, market.lng), (None, None), "x={x:?} y={y:?}");
        assert!(!market.has_coordinates());
    }
}

#[test]
fn store_type_codes_map_to_market_kinds() {
    assert_eq!(market_kind_from_entp_type(Some("LM")), "hypermarket");
    assert_eq!(market_kind_from_entp_type(Some("sm")), "supermarket");
    assert_eq!(market_kind_from_entp_type(Some("DP")), "department_store");
    assert_eq!(market_kind_from_entp_type(Some("CS")), "convenience_store");
    assert_eq!(market_kind_from_entp_type(Some("ZZ")), "other");
    assert_eq!(market_kind_from_entp_type(None), "other");
}

#[test]
fn the_road_address_joins_basic_and_detail_and_falls_back_to_the_lot_address() {
    let mut row = store("37.5", "127.0");
    row.push("roadAddrBasic", "서울특별시 성동구 뚝섬로 379");
    row.push("roadAddrDetail", "(성수동2가)");
    let market = market_from_store(&row).expect("valid");
    assert_eq!(
        market.road_address.as_deref(),
        Some("서울특별시 성동구 뚝섬로 379 (성수동2가)")
    );

    let mut row = store("37.5", "127.0");
    row.push("plmkAddrBasic", "서울특별시 성동구 성수동2가 333-16");
    let market = market_from_store(&row).expect("valid");
    assert_eq!(
        market.road_address.as_deref(),
        Some("서울특별시 성동구 성수동2가 333-16")
    );
}

#[test]
fn plain_market_rows_accept_known_kinds_and_reject_unknown_ones() {
    let row = goods(&[
        ("source_id", "m1"),
        ("name", "망원시장"),
        ("kind", "traditional_market"),
        ("lat", "37.556"),
        ("lng", "126.906"),
    ]);
    let market = market_from_plain(&row).expect("valid");
    assert_eq!(market.kind, "traditional_market");
    assert_eq!(market.lat, Some(37.556));
    let row = goods(&[("source_id", "m2"), ("name", "x"), ("kind", "LM")]);
    assert_eq!(market_from_plain(&row).expect("valid").kind, "hypermarket");
    let row = goods(&[("source_id", "m3"), ("name", "x"), ("kind", "bazaar")]);
    let err = market_from_plain(&row).unwrap_err();
    assert_eq!((err.field, err.source_id.as_deref()), ("kind", Some("m3")));
}

#[test]
fn the_portals_korean_kind_labels_and_short_names_parse() {
    for (label, kind) in [
        ("전통시장", "traditional_market"),
        (" 재래시장 ", "traditional_market"),
        ("traditional", "traditional_market"),
        ("Traditional", "traditional_market"),
        ("대형마트", "hypermarket"),
        ("슈퍼마켓", "supermarket"),
        ("기업형슈퍼마켓", "supermarket"),
        ("기업형 슈퍼마켓", "supermarket"),
        ("SSM", "supermarket"),
        ("백화점", "department_store"),
        ("편의점", "convenience_store"),
        ("창고형 할인점", "warehouse_club"),
        ("창고형매장", "warehouse_club"),
        ("Department Store", "department_store"),
        ("warehouse-club", "warehouse_club"),
        ("cs", "convenience_store"),
        ("기타", "other"),
    ] {
        assert_eq!(parse_market_kind(label), Some(kind), "{label:?}");
    }
    for unknown in ["노점", "시장", "bazaar", "trad", ""] {
        assert_eq!(parse_market_kind(unknown), None, "{unknown:?}");
    }
}

#[test]
fn every_kind_alias_is_written_as_its_key_and_names_a_known_kind() {
    // An alias written with a blank or in capitals would never match.
    for (alias, kind) in MARKET_KIND_ALIASES {
        assert_eq!(kind_key(alias), *alias);
        assert!(MARKET_KINDS.contains(kind), "{alias} -> {kind}");
    }
}

#[test]
fn a_plain_market_row_with_a_korean_kind_is_kept_and_an_unknown_one_names_kind() {
    let row = goods(&[
        ("source_id", "m4"),
        ("name", "망원시장"),
        ("kind", "전통시장"),
    ]);
    assert_eq!(
        market_from_plain(&row).expect("valid").kind,
        "traditional_market"
    );
    let row = goods(&[("source_id", "m5"), ("name", "x"), ("kind", "노점")]);
    let err = market_from_plain(&row).unwrap_err();
    assert_eq!((err.field, err.source_id.as_deref()), ("kind", Some("m5")));
    assert!(err.reason.contains("traditional_market"), "{}", err.reason);
}

#[test]
fn a_traditional_market_row_gets_a_stable_id_from_agency_and_name() {
    let row = goods(&[
        ("시장명", "망원시장"),
        ("소재지도로명주소", "서울특별시 마포구 포은로8길 14"),
        ("위도", "37.5561"),
        ("경도", "126.9058"),
        ("제공기관코드", "3130000"),
    ]);
    let market = market_from_traditional(&row).expect("valid");
    assert_eq!(market.source_id, "3130000:망원시장");
    assert_eq!(market.kind, "traditional_market");
    assert_eq!(
        market.road_address.as_deref(),
        Some("서울특별시 마포구 포은로8길 14")
    );
    assert_eq!((market.lat, market.lng), (Some(37.5561), Some(126.9058)));
}

#[test]
fn a_traditional_market_row_without_a_name_is_rejected() {
    let err = market_from_traditional(&goods(&[("제공기관코드", "1")])).unwrap_err();
    assert_eq!(err.field, "source_id");
}

#[test]
fn rejections_read_as_sentences() {
    let r = Rejection {
        source_id: Some("9".into()),
        field: "name",
        reason: "missing".into(),
    };
    assert_eq!(r.to_string(), "row 9: name: missing");
}
