//! Validated records and the pure functions that turn raw rows into them.
//!
//! Each source's field names are mapped here, once: the goods and store fields of the public APIs
//! (`goodId`, `entpId`, …), gonggu's plain CSV columns and the portal's traditional-market CSV.
//! A row that breaks a rule becomes a [`Rejection`] naming the field and the reason; a market whose
//! coordinates are unusable is kept with `lat`/`lng` set to `None` (it stays out of nearby search).

use std::fmt;

use crate::row::Row;

/// Latitudes that can be in Korea (degrees).
pub const KOREA_LAT: std::ops::RangeInclusive<f64> = 33.0..=39.0;
/// Longitudes that can be in Korea (degrees).
pub const KOREA_LNG: std::ops::RangeInclusive<f64> = 124.0..=132.0;

/// The market kinds gonggu knows.
pub const MARKET_KINDS: [&str; 7] = [
    "hypermarket",
    "supermarket",
    "traditional_market",
    "department_store",
    "convenience_store",
    "warehouse_club",
    "other",
];

const MAX_ID_CHARS: usize = 100;
const MAX_NAME_CHARS: usize = 300;
const MAX_TEXT_CHARS: usize = 500;
const MAX_COUNT: f64 = 1_000_000_000.0;

/// The records are the catalog's rows: what a source yields is what `store::catalog` writes.
pub use store::catalog::{ItemRow, MarketRow};

/// Why a row was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The row's public id when it had one.
    pub source_id: Option<String>,
    /// The record field at fault (`source_id`, `name`, `base_count`, …).
    pub field: &'static str,
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source_id {
            Some(id) => write!(f, "row {id}: {}: {}", self.field, self.reason),
            None => write!(f, "row without id: {}: {}", self.field, self.reason),
        }
    }
}

impl std::error::Error for Rejection {}

/// Decides which of two coordinates is the latitude, by range.
///
/// The consumer-price API usually sends x = latitude and y = longitude, but swapped in many records,
/// and blank or `"1"` in others. Latitude and longitude ranges in Korea do not overlap, so the order
/// is decided by value; anything else (blank, unparsable, out of range) means "no coordinates".
/// Returns `(lat, lng)`.
pub fn resolve_coordinates(a: Option<&str>, b: Option<&str>) -> Option<(f64, f64)> {
    let a = parse_number(a?).ok()?;
    let b = parse_number(b?).ok()?;
    if KOREA_LAT.contains(&a) && KOREA_LNG.contains(&b) {
        Some((a, b))
    } else if KOREA_LAT.contains(&b) && KOREA_LNG.contains(&a) {
        Some((b, a))
    } else {
        None
    }
}

/// Maps a consumer-price store type code to a gonggu market kind.
pub fn market_kind_from_entp_type(code: Option<&str>) -> &'static str {
    match code.map(|c| c.trim().to_ascii_uppercase()).as_deref() {
        Some("LM") => "hypermarket",
        Some("SM") => "supermarket",
        Some("DP") => "department_store",
        Some("CS") => "convenience_store",
        _ => "other",
    }
}

/// Other names of the market kinds, as people and the public portal write them, each written as
/// its [`kind_key`] (lower case, no blanks, `_` or `-`). The portal's lists label kinds in Korean
/// (전통시장, 대형마트, …), and a plain CSV written by hand says `traditional` as often as
/// `traditional_market`.
const MARKET_KIND_ALIASES: &[(&str, &str)] = &[
    ("traditional", "traditional_market"),
    ("전통시장", "traditional_market"),
    ("재래시장", "traditional_market"),
    ("전통재래시장", "traditional_market"),
    ("대형마트", "hypermarket"),
    ("대형할인점", "hypermarket"),
    ("대형할인마트", "hypermarket"),
    ("슈퍼마켓", "supermarket"),
    ("수퍼마켓", "supermarket"),
    ("슈퍼", "supermarket"),
    ("기업형슈퍼마켓", "supermarket"),
    ("기업형수퍼마켓", "supermarket"),
    ("기업형슈퍼", "supermarket"),
    ("ssm", "supermarket"),
    ("백화점", "department_store"),
    ("편의점", "convenience_store"),
    ("창고형할인점", "warehouse_club"),
    ("창고형할인매장", "warehouse_club"),
    ("창고형매장", "warehouse_club"),
    ("창고형마트", "warehouse_club"),
    ("기타", "other"),
];

/// A kind label reduced to what tells kinds apart: `Department Store`, `department-store` and
/// `department_store` are one key, and so are `창고형 할인점` and `창고형할인점`.
fn kind_key(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Parses a market kind: gonggu's own names ([`MARKET_KINDS`]), the consumer-price codes (`LM`,
/// `SM`, `DP`, `CS`), and the Korean and short labels in [`MARKET_KIND_ALIASES`].
pub fn parse_market_kind(text: &str) -> Option<&'static str> {
    let key = kind_key(text);
    if let Some(kind) = MARKET_KINDS.iter().find(|k| kind_key(k) == key) {
        return Some(kind);
    }
    if let Some((_, kind)) = MARKET_KIND_ALIASES.iter().find(|(a, _)| *a == key) {
        return Some(kind);
    }
    match key.as_str() {
        "lm" | "sm" | "dp" | "cs" => Some(market_kind_from_entp_type(Some(&key))),
        _ => None,
    }
}

/// An item from a row with the goods fields (paged API, `getProductInfoSvc.do`, goods CSV).
pub fn item_from_goods(row: &Row) -> Result<ItemRow, Rejection> {
    ItemFields {
        source_id: row.text("goodId"),
        name: row.text("goodName"),
        category_code: row.text("goodSmlclsCode"),
        unit: row.text("goodUnitDivCode"),
        base_count: row.text("goodBaseCnt"),
        total_count: row.text("goodTotalCnt"),
        total_unit: row.text("goodTotalDivCode"),
        maker: row.text("productEntpCode"),
    }
    .validate()
}

/// An item from gonggu's plain CSV (`source_id,name,category_code,unit,base_count,total_count,total_unit`).
pub fn item_from_plain(row: &Row) -> Result<ItemRow, Rejection> {
    ItemFields {
        source_id: row.text("source_id"),
        name: row.text("name"),
        category_code: row.text("category_code"),
        unit: row.text("unit"),
        base_count: row.text("base_count"),
        total_count: row.text("total_count"),
        total_unit: row.text("total_unit"),
        maker: row.text("maker"),
    }
    .validate()
}

/// A market from a row with the store fields (`getStoreInfoSvc.do`, paged store lists).
///
/// The road address is `roadAddrBasic` plus `roadAddrDetail`, or the lot address when there is no
/// road address.
pub fn market_from_store(row: &Row) -> Result<MarketRow, Rejection> {
    let road_address = match (row.text("roadAddrBasic"), row.text("roadAddrDetail")) {
        (Some(basic), Some(detail)) => Some(format!("{basic} {detail}")),
        (Some(basic), None) => Some(basic.to_owned()),
        (None, _) => row.text("plmkAddrBasic").map(str::to_owned),
    };
    MarketFields {
        source_id: row.text("entpId").map(str::to_owned),
        name: row.text("entpName"),
        kind: market_kind_from_entp_type(row.text("entpTypeCode")),
        road_address,
        coordinates: resolve_coordinates(row.text("xMapCoord"), row.text("yMapCoord")),
        area_code: row.text("entpAreaCode"),
    }
    .validate()
}

/// A market from gonggu's plain CSV (`source_id,name,kind,road_address,lat,lng`).
pub fn market_from_plain(row: &Row) -> Result<MarketRow, Rejection> {
    let source_id = row.text("source_id");
    let kind = match row.text("kind") {
        None => "other",
        Some(text) => parse_market_kind(text).ok_or_else(|| Rejection {
            source_id: source_id.map(str::to_owned),
            field: "kind",
            reason: format!(
                "unknown market kind {text:?}; expected one of {} (or 전통시장, 대형마트, …)",
                MARKET_KINDS.join(", ")
            ),
        })?,
    };
    MarketFields {
        source_id: source_id.map(str::to_owned),
        name: row.text("name"),
        kind,
        road_address: row.text("road_address").map(str::to_owned),
        coordinates: resolve_coordinates(row.text("lat"), row.text("lng")),
        area_code: row.text("area_code"),
    }
    .validate()
}

/// A market from the portal's national traditional-market standard data (Korean header).
///
/// The file has no id column, so the id is built from the providing agency's code and the market
/// name (`3180000:망원시장`), or from the address and name when the code is blank: stable across
/// nightly downloads, unique in practice.
pub fn market_from_traditional(row: &Row) -> Result<MarketRow, Rejection> {
    let name = row.text("시장명");
    let address = row
        .text("소재지도로명주소")
        .or_else(|| row.text("소재지지번주소"));
    let source_id = match (name, row.text("제공기관코드").or(address)) {
        (Some(name), Some(scope)) => Some(format!("{scope}:{name}")),
        (Some(name), None) => Some(name.to_owned()),
        (None, _) => None,
    };
    MarketFields {
        source_id,
        name,
        kind: "traditional_market",
        road_address: address.map(str::to_owned),
        coordinates: resolve_coordinates(row.text("위도"), row.text("경도")),
        area_code: None,
    }
    .validate()
}

struct ItemFields<'a> {
    source_id: Option<&'a str>,
    name: Option<&'a str>,
    category_code: Option<&'a str>,
    unit: Option<&'a str>,
    base_count: Option<&'a str>,
    total_count: Option<&'a str>,
    total_unit: Option<&'a str>,
    maker: Option<&'a str>,
}

impl ItemFields<'_> {
    fn validate(self) -> Result<ItemRow, Rejection> {
        let v = Validator::new(self.source_id.map(str::to_owned));
        let source_id = v.id()?;
        Ok(ItemRow {
            name: v.required("name", self.name, MAX_NAME_CHARS)?,
            category_code: v.optional("category_code", self.category_code, MAX_ID_CHARS)?,
            unit: v.optional("unit", self.unit, MAX_ID_CHARS)?,
            base_count: v.count("base_count", self.base_count)?,
            total_count: v.count("total_count", self.total_count)?,
            total_unit: v.optional("total_unit", self.total_unit, MAX_ID_CHARS)?,
            maker: v.optional("maker", self.maker, MAX_ID_CHARS)?,
            source_id,
        })
    }
}

struct MarketFields<'a> {
    source_id: Option<String>,
    name: Option<&'a str>,
    kind: &'static str,
    road_address: Option<String>,
    coordinates: Option<(f64, f64)>,
    area_code: Option<&'a str>,
}

impl MarketFields<'_> {
    fn validate(self) -> Result<MarketRow, Rejection> {
        let v = Validator::new(self.source_id);
        let source_id = v.id()?;
        Ok(MarketRow {
            name: v.required("name", self.name, MAX_NAME_CHARS)?,
            kind: self.kind.to_owned(),
            road_address: v.optional(
                "road_address",
                self.road_address.as_deref(),
                MAX_TEXT_CHARS,
            )?,
            lat: self.coordinates.map(|(lat, _)| lat),
            lng: self.coordinates.map(|(_, lng)| lng),
            area_code: v.optional("area_code", self.area_code, MAX_ID_CHARS)?,
            source_id,
        })
    }
}

/// Field checks that name the row in every rejection.
struct Validator {
    source_id: Option<String>,
}

impl Validator {
    fn new(source_id: Option<String>) -> Self {
        Self { source_id }
    }

    fn reject(&self, field: &'static str, reason: impl Into<String>) -> Rejection {
        Rejection {
            source_id: self.source_id.clone(),
            field,
            reason: reason.into(),
        }
    }

    fn id(&self) -> Result<String, Rejection> {
        match self.source_id.as_deref().map(str::trim) {
            None | Some("") => Err(self.reject("source_id", "missing")),
            Some(id) => self.checked_text("source_id", id, MAX_ID_CHARS),
        }
    }

    fn required(
        &self,
        field: &'static str,
        value: Option<&str>,
        max: usize,
    ) -> Result<String, Rejection> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Err(self.reject(field, "missing")),
            Some(text) => self.checked_text(field, text, max),
        }
    }

    fn optional(
        &self,
        field: &'static str,
        value: Option<&str>,
        max: usize,
    ) -> Result<Option<String>, Rejection> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(text) => self.checked_text(field, text, max).map(Some),
        }
    }

    fn checked_text(
        &self,
        field: &'static str,
        text: &str,
        max: usize,
    ) -> Result<String, Rejection> {
        if text.chars().count() > max {
            return Err(self.reject(field, format!("longer than {max} characters")));
        }
        if text.chars().any(char::is_control) {
            return Err(self.reject(field, "contains control characters"));
        }
        Ok(text.to_owned())
    }

    fn count(&self, field: &'static str, value: Option<&str>) -> Result<Option<f64>, Rejection> {
        let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let n = parse_number(text)
            .map_err(|_| self.reject(field, format!("not a number: {text:?}")))?;
        if !(0.0..=MAX_COUNT).contains(&n) {
            return Err(self.reject(field, format!("{n} is outside 0..={MAX_COUNT}")));
        }
        Ok(Some(n))
    }
}

/// Parses a number as the public data writes it: surrounding blanks and thousands separators allowed.
fn parse_number(text: &str) -> Result<f64, std::num::ParseFloatError> {
    let t = text.trim();
    let n: f64 = if t.contains(',') {
        t.replace(',', "").parse()?
    } else {
        t.parse()?
    };
    if n.is_finite() {
        Ok(n)
    } else {
        "not finite".parse()
    }
}

#[cfg(test)]
mod tests;
