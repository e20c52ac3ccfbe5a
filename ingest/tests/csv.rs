//! CSV imports from the sample files.

use std::path::PathBuf;

use ingest::csv::{read_items, read_markets, CsvEncoding, CsvLayout};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/public-api")
        .join(name)
}

#[test]
fn cp949_and_utf8_with_bom_files_give_identical_records() {
    let cp949 = read_markets(
        &fixture("traditional-markets-cp949.csv"),
        CsvEncoding::Cp949,
    )
    .expect("cp949");
    let auto =
        read_markets(&fixture("traditional-markets-cp949.csv"), CsvEncoding::Auto).expect("auto");
    let bom = read_markets(
        &fixture("traditional-markets-utf8-bom.csv"),
        CsvEncoding::Auto,
    )
    .expect("bom");
    let bom_forced = read_markets(
        &fixture("traditional-markets-utf8-bom.csv"),
        CsvEncoding::Cp949,
    )
    .expect("bom wins");
    assert_eq!(cp949, bom);
    assert_eq!(auto, bom);
    assert_eq!(bom_forced, bom);
    assert_eq!(cp949.layout, CsvLayout::TraditionalMarkets);
}

#[test]
fn the_older_header_spelling_is_accepted() {
    let old = read_markets(
        &fixture("traditional-markets-old-header.csv"),
        CsvEncoding::Auto,
    )
    .expect("old header");
    let new = read_markets(&fixture("traditional-markets-cp949.csv"), CsvEncoding::Auto)
        .expect("new header");
    assert_eq!(old, new);
}

#[test]
fn traditional_markets_keep_swapped_and_missing_coordinates_as_described() {
    let batch = read_markets(
        &fixture("traditional-markets-utf8-bom.csv"),
        CsvEncoding::Auto,
    )
    .expect("reads");
    assert_eq!(batch.records.len(), 4);
    let mangwon = &batch.records[0];
    assert_eq!(mangwon.source_id, "3130000:망원시장");
    assert_eq!((mangwon.lat, mangwon.lng), (Some(37.5561), Some(126.9058)));
    assert_eq!(mangwon.kind, "traditional_market");
    let bujeon = batch
        .records
        .iter()
        .find(|m| m.name == "부전마켓타운")
        .expect("부전");
    assert_eq!((bujeon.lat, bujeon.lng), (Some(35.16), Some(129.059)));
    let moran = batch
        .records
        .iter()
        .find(|m| m.name == "모란민속5일장")
        .expect("모란");
    assert_eq!((moran.lat, moran.lng), (None, None));
    assert_eq!(batch.rejected.len(), 1);
    assert_eq!(batch.rejected[0].field, "source_id");
}

#[test]
fn plain_files_are_detected_by_their_header() {
    let dir = std::env::temp_dir().join(format!("gonggu-ingest-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let markets = dir.join("markets.csv");
    std::fs::write(&markets, "source_id,name,kind,road_address,lat,lng\nm1,이마트 성수점,hypermarket,서울 성동구 뚝섬로 379,127.0533,37.5398\n")
        .expect("write");
    let items = dir.join("items.csv");
    std::fs::write(&items, "\u{feff}source_id,name,category_code,unit,base_count,total_count,total_unit\ni1,신라면,030201001,G,100,600,G\n")
        .expect("write");
    let markets = read_markets(&markets, CsvEncoding::Utf8).expect("markets");
    assert_eq!(markets.layout, CsvLayout::PlainMarkets);
    assert_eq!(
        (markets.records[0].lat, markets.records[0].lng),
        (Some(37.5398), Some(127.0533))
    );
    let items = read_items(&items, CsvEncoding::Auto).expect("items");
    assert_eq!(items.layout, CsvLayout::PlainItems);
    assert_eq!(items.records[0].category_code.as_deref(), Some("030201001"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_missing_file_names_its_path() {
    let error = read_items(&fixture("nope.csv"), CsvEncoding::Auto).expect_err("missing");
    assert!(error.to_string().contains("nope.csv"), "{error}");
}

#[test]
fn the_project_fixture_files_load_without_rejections() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let markets = read_markets(&dir.join("markets.csv"), CsvEncoding::Auto).expect("markets.csv");
    assert_eq!(markets.layout, CsvLayout::PlainMarkets);
    assert!(
        markets.rejected.is_empty(),
        "{:?}",
        markets.rejected.first()
    );
    assert!(markets.records.iter().all(|m| m.has_coordinates()));
    let items = read_items(&dir.join("items.csv"), CsvEncoding::Auto).expect("items.csv");
    assert_eq!(items.layout, CsvLayout::PlainItems);
    assert!(items.rejected.is_empty(), "{:?}", items.rejected.first());
    let mock = ingest::mock::MockData::load_dir(&dir).expect("mock data");
    assert_eq!(
        (mock.goods.len(), mock.stores.len()),
        (items.records.len(), markets.records.len())
    );
}
