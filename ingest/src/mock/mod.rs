//! A mock of the public APIs for tests and benchmarks: paged operations (`/items` with goods rows,
//! `/markets` with store rows, JSON or XML by the format switch) and the consumer-price service
//! (`/ProductPriceInfoService/getProductInfoSvc.do` and `/getStoreInfoSvc.do`, the published paths;
//! any other operation there is a 404), with configurable latency, injected faults ([`FaultRule`])
//! and a check that the service key arrived encoded exactly once.
//!
//! Synthetic item rows are generated on demand from their index, so 300,000 rows cost no memory.

mod fault;
mod render;
mod server;

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

pub use fault::{Fault, FaultRule};
pub use render::{EmptyItems, Style};
pub use server::MockServer;

use crate::record::{ItemRow, MarketRow};
use crate::row::Row;

/// Rows the mock serves.
#[derive(Debug, Clone)]
pub enum Dataset {
    Rows(Vec<Row>),
    /// `n` deterministic goods rows, made from their index when served.
    SyntheticItems(usize),
}

impl Dataset {
    pub fn len(&self) -> usize {
        match self {
            Self::Rows(rows) => rows.len(),
            Self::SyntheticItems(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows `start..end` (clamped).
    pub fn slice(&self, start: usize, end: usize) -> Cow<'_, [Row]> {
        let end = end.min(self.len());
        let start = start.min(end);
        match self {
            Self::Rows(rows) => Cow::Borrowed(&rows[start..end]),
            Self::SyntheticItems(_) => Cow::Owned((start..end).map(synthetic_item).collect()),
        }
    }
}

/// What the mock serves: goods rows (items) and store rows (markets).
#[derive(Debug, Clone)]
pub struct MockData {
    pub goods: Dataset,
    pub stores: Dataset,
}

impl MockData {
    pub fn new(goods: Vec<Row>, stores: Vec<Row>) -> Self {
        Self {
            goods: Dataset::Rows(goods),
            stores: Dataset::Rows(stores),
        }
    }

    /// `n` synthetic items (ids `1000000..`), no stores.
    pub fn synthetic_items(n: usize) -> Self {
        Self {
            goods: Dataset::SyntheticItems(n),
            stores: Dataset::Rows(Vec::new()),
        }
    }

    /// Serves records as the APIs would send them.
    pub fn from_records(items: &[ItemRow], markets: &[MarketRow]) -> Self {
        Self::new(
            items.iter().map(goods_row).collect(),
            markets.iter().map(store_row).collect(),
        )
    }

    /// Loads `items.csv` and `markets.csv` from a directory (each optional; any supported header).
    pub fn load_dir(dir: &Path) -> Result<Self, crate::csv::CsvError> {
        let enc = crate::csv::CsvEncoding::Auto;
        let items_path = dir.join("items.csv");
        let markets_path = dir.join("markets.csv");
        let items = if items_path.exists() {
            crate::csv::read_items(&items_path, enc)?.records
        } else {
            Vec::new()
        };
        let markets = if markets_path.exists() {
            crate::csv::read_markets(&markets_path, enc)?.records
        } else {
            Vec::new()
        };
        Ok(Self::from_records(&items, &markets))
    }
}

/// How the mock behaves.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Added to every reply.
    pub latency: Duration,
    /// The decoded key the mock accepts; `None` accepts any or none. A key sent raw (with `+`) or
    /// encoded twice gets the gateway's error 30, as the real gateway does.
    pub service_key: Option<String>,
    pub faults: Vec<FaultRule>,
    pub style: Style,
    /// `numOfRows` above this is served at this size (the real APIs cap at 1,000).
    pub max_rows_per_page: u32,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            service_key: None,
            faults: Vec::new(),
            style: Style::default(),
            max_rows_per_page: 1000,
        }
    }
}

/// The synthetic goods row number `i`.
pub fn synthetic_item(i: usize) -> Row {
    let units = ["G", "ML", "EA"];
    let unit = units[i % 3];
    Row::from_pairs([
        ("goodId", (1_000_000 + i).to_string()),
        ("goodName", format!("합성 상품 {i:06}")),
        ("productEntpCode", (i % 500).to_string()),
        ("goodUnitDivCode", unit.to_owned()),
        (
            "goodBaseCnt",
            if unit == "EA" { "1" } else { "100" }.to_owned(),
        ),
        (
            "goodSmlclsCode",
            format!("03{:02}{:02}{:03}", i % 9 + 1, i % 20 + 1, i % 999 + 1),
        ),
        ("detailMean", String::new()),
        ("goodTotalCnt", ((i % 50 + 1) * 100).to_string()),
        ("goodTotalDivCode", unit.to_owned()),
    ])
}

fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

fn num(value: Option<f64>) -> String {
    value.map(|n| n.to_string()).unwrap_or_default()
}

/// An item as a goods row.
pub fn goods_row(item: &ItemRow) -> Row {
    Row::from_pairs([
        ("goodId", item.source_id.clone()),
        ("goodName", item.name.clone()),
        ("productEntpCode", opt(&item.maker)),
        ("goodUnitDivCode", opt(&item.unit)),
        ("goodBaseCnt", num(item.base_count)),
        ("goodSmlclsCode", opt(&item.category_code)),
        ("detailMean", String::new()),
        ("goodTotalCnt", num(item.total_count)),
        ("goodTotalDivCode", opt(&item.total_unit)),
    ])
}

/// A market as a store row (x = latitude, y = longitude, the usual order). Traditional markets and
/// `other` have no store type code in the consumer-price API and come back as `other`.
pub fn store_row(market: &MarketRow) -> Row {
    let code = match market.kind.as_str() {
        "hypermarket" => "LM",
        "supermarket" => "SM",
        "department_store" => "DP",
        "convenience_store" => "CS",
        _ => "",
    };
    Row::from_pairs([
        ("entpId", market.source_id.clone()),
        ("entpName", market.name.clone()),
        ("entpTypeCode", code.to_owned()),
        ("entpAreaCode", opt(&market.area_code)),
        ("roadAddrBasic", opt(&market.road_address)),
        ("xMapCoord", num(market.lat)),
        ("yMapCoord", num(market.lng)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::item_from_goods;

    #[test]
    fn synthetic_items_are_deterministic_and_valid() {
        assert_eq!(synthetic_item(42), synthetic_item(42));
        let item = item_from_goods(&synthetic_item(299_999)).expect("valid");
        assert_eq!(item.source_id, "1299999");
        assert_eq!(item.category_code.as_deref().map(str::len), Some(9));
        assert_eq!(Dataset::SyntheticItems(10).slice(8, 20).len(), 2);
    }

    #[test]
    fn records_survive_the_trip_through_goods_rows() {
        let item = item_from_goods(&synthetic_item(7)).expect("valid");
        assert_eq!(item_from_goods(&goods_row(&item)).expect("valid"), item);
    }
}
