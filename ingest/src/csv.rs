//! CSV file imports: the portal's downloads (usually CP949; re-saved copies are UTF-8 with a BOM)
//! and gonggu's own plain files. The layout is detected from the header.
//!
//! | layout | header |
//! | --- | --- |
//! | traditional markets | `시장명,시장유형,소재지도로명주소,…,위도,경도,…,개설연도(개설년도),…,제공기관코드,제공기관명` |
//! | plain markets | `source_id,name,kind,road_address,lat,lng` (`area_code` optional) |
//! | store fields | `entpId,entpName,entpTypeCode,…,xMapCoord,yMapCoord` |
//! | plain items | `source_id,name,category_code,unit,base_count,total_count,total_unit` (`maker` optional) |
//! | goods fields | `goodId,goodName,…` |
//!
//! Files are read whole (the portal's files are megabytes); call these from `spawn_blocking`.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::record::{
    item_from_goods, item_from_plain, market_from_plain, market_from_store,
    market_from_traditional, ItemRow, MarketRow, Rejection,
};
use crate::row::Row;

/// How a CSV file's bytes are decoded. A UTF-8 BOM always means UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvEncoding {
    /// UTF-8 when the bytes are valid UTF-8, CP949 otherwise.
    #[default]
    Auto,
    Utf8,
    /// CP949 (Windows Korean, a superset of EUC-KR).
    Cp949,
}

impl FromStr for CsvEncoding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "utf-8" | "utf8" => Ok(Self::Utf8),
            "cp949" | "euc-kr" | "euckr" | "ms949" | "windows-949" => Ok(Self::Cp949),
            other => Err(format!(
                "unknown encoding {other:?} (expected auto, utf-8 or cp949)"
            )),
        }
    }
}

/// Which header a file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvLayout {
    TraditionalMarkets,
    PlainMarkets,
    StoreFields,
    PlainItems,
    GoodsFields,
}

/// The records of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvBatch<T> {
    pub layout: CsvLayout,
    pub records: Vec<T>,
    pub rejected: Vec<Rejection>,
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("reading {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the file is not valid UTF-8 (try --encoding cp949)")]
    NotUtf8,
    #[error("the file is empty")]
    Empty,
    #[error("unrecognised {kind} header {columns:?}; expected {expected}")]
    UnknownHeader {
        kind: &'static str,
        columns: Vec<String>,
        expected: &'static str,
    },
    #[error("malformed CSV")]
    Csv(#[from] ::csv::Error),
}

/// Reads a market file (traditional-market, plain or store-field header).
pub fn read_markets(path: &Path, encoding: CsvEncoding) -> Result<CsvBatch<MarketRow>, CsvError> {
    parse_markets(&read(path)?, encoding)
}

/// Reads an item file (plain or goods-field header).
pub fn read_items(path: &Path, encoding: CsvEncoding) -> Result<CsvBatch<ItemRow>, CsvError> {
    parse_items(&read(path)?, encoding)
}

/// Parses market CSV bytes.
pub fn parse_markets(bytes: &[u8], encoding: CsvEncoding) -> Result<CsvBatch<MarketRow>, CsvError> {
    parse(bytes, encoding, "market", |header| {
        if has(header, "시장명") {
            Some((
                CsvLayout::TraditionalMarkets,
                market_from_traditional as fn(&Row) -> _,
            ))
        } else if has(header, "source_id") && has(header, "name") {
            Some((CsvLayout::PlainMarkets, market_from_plain))
        } else if has(header, "entpId") {
            Some((CsvLayout::StoreFields, market_from_store))
        } else {
            None
        }
    })
}

/// Parses item CSV bytes.
pub fn parse_items(bytes: &[u8], encoding: CsvEncoding) -> Result<CsvBatch<ItemRow>, CsvError> {
    parse(bytes, encoding, "item", |header| {
        if has(header, "source_id") && has(header, "name") {
            Some((CsvLayout::PlainItems, item_from_plain as fn(&Row) -> _))
        } else if has(header, "goodId") {
            Some((CsvLayout::GoodsFields, item_from_goods))
        } else {
            None
        }
    })
}

/// Decodes a file's bytes to text, dropping a BOM.
pub fn decode(bytes: &[u8], encoding: CsvEncoding) -> Result<Cow<'_, str>, CsvError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return std::str::from_utf8(rest)
            .map(Cow::Borrowed)
            .map_err(|_| CsvError::NotUtf8);
    }
    match encoding {
        CsvEncoding::Utf8 => std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|_| CsvError::NotUtf8),
        CsvEncoding::Auto if std::str::from_utf8(bytes).is_ok() => {
            Ok(String::from_utf8_lossy(bytes))
        }
        CsvEncoding::Auto | CsvEncoding::Cp949 => {
            Ok(encoding_rs::EUC_KR.decode_without_bom_handling(bytes).0)
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CsvError> {
    std::fs::read(path).map_err(|source| CsvError::Io {
        path: path.to_owned(),
        source,
    })
}

fn has(header: &[String], name: &str) -> bool {
    header.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Header names as written, trimmed, with the older `개설년도` spelling normalised.
fn normalise_header(name: &str) -> String {
    let name = name.trim().trim_start_matches('\u{feff}').trim();
    match name {
        "개설년도" => "개설연도".to_owned(),
        other => other.to_owned(),
    }
}

type Detect<T> = fn(&[String]) -> Option<(CsvLayout, fn(&Row) -> Result<T, Rejection>)>;

fn parse<T>(
    bytes: &[u8],
    encoding: CsvEncoding,
    kind: &'static str,
    detect: Detect<T>,
) -> Result<CsvBatch<T>, CsvError> {
    let text = decode(bytes, encoding)?;
    let mut reader = ::csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers()?.iter().map(normalise_header).collect();
    if header.iter().all(|h| h.is_empty()) {
        return Err(CsvError::Empty);
    }
    let (layout, map) = detect(&header).ok_or_else(|| CsvError::UnknownHeader {
        kind,
        columns: header.clone(),
        expected: EXPECTED,
    })?;
    let mut batch = CsvBatch {
        layout,
        records: Vec::new(),
        rejected: Vec::new(),
    };
    let mut record = ::csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let row = Row::from_pairs(header.iter().cloned().zip(record.iter().map(str::to_owned)));
        match map(&row) {
            Ok(r) => batch.records.push(r),
            Err(rejection) => batch.rejected.push(rejection),
        }
    }
    Ok(batch)
}

const EXPECTED: &str = "the portal's Korean columns (시장명, …), gonggu's plain columns (source_id,name,…) or the API field names";

impl fmt::Display for CsvLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TraditionalMarkets => "traditional-market standard data",
            Self::PlainMarkets => "plain markets",
            Self::StoreFields => "store fields",
            Self::PlainItems => "plain items",
            Self::GoodsFields => "goods fields",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_item_files_are_detected_and_parsed() {
        let csv = "source_id,name,category_code,unit,base_count,total_count,total_unit\n7,두부,030404001,G,100,300,G\n,이름만,,,,,\n\n";
        let batch = parse_items(csv.as_bytes(), CsvEncoding::Auto).expect("parses");
        assert_eq!(batch.layout, CsvLayout::PlainItems);
        assert_eq!(batch.records.len(), 1);
        assert_eq!(batch.records[0].total_count, Some(300.0));
        assert_eq!(batch.rejected.len(), 1);
    }

    #[test]
    fn an_unknown_header_is_refused_with_its_columns() {
        let err = parse_markets(b"foo,bar\n1,2\n", CsvEncoding::Auto).unwrap_err();
        assert!(
            matches!(err, CsvError::UnknownHeader { ref columns, .. } if columns == &["foo", "bar"]),
            "{err:?}"
        );
    }

    #[test]
    fn forcing_utf8_on_cp949_bytes_is_an_error() {
        let (bytes, _, _) = encoding_rs::EUC_KR.encode("source_id,name\n1,시장\n");
        assert!(matches!(
            parse_markets(&bytes, CsvEncoding::Utf8),
            Err(CsvError::NotUtf8)
        ));
        assert_eq!(
            parse_markets(&bytes, CsvEncoding::Auto)
                .expect("auto")
                .records[0]
                .name,
            "시장"
        );
    }

    #[test]
    fn encodings_parse_from_their_usual_names() {
        assert_eq!("CP949".parse(), Ok(CsvEncoding::Cp949));
        assert_eq!("euc-kr".parse(), Ok(CsvEncoding::Cp949));
        assert_eq!("UTF-8".parse(), Ok(CsvEncoding::Utf8));
        assert!("latin1".parse::<CsvEncoding>().is_err());
    }
}
