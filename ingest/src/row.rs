//! A raw row as the public APIs and CSV files deliver it: field names to text values.
//!
//! Every source ends up here first, so the mapping to records (`record`) is written once
//! for the paged API, the consumer-price API and CSV files alike.

use std::borrow::Cow;

/// One raw row: field names and their text values, in the order they arrived.
///
/// Rows have ten to twenty fields, so a vector searched linearly is faster and smaller than a map.
/// The field names the APIs use are interned ([`intern`]): a page of 1,000 rows would otherwise
/// allocate 10,000 copies of the same few names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    fields: Vec<(Cow<'static, str>, String)>,
}

/// Field names of the goods and store rows, shared instead of copied.
const KNOWN_NAMES: [&str; 23] = [
    "goodId",
    "goodName",
    "productEntpCode",
    "goodUnitDivCode",
    "goodBaseCnt",
    "goodSmlclsCode",
    "detailMean",
    "goodTotalCnt",
    "goodTotalDivCode",
    "entpId",
    "entpName",
    "entpTypeCode",
    "entpAreaCode",
    "areaDetailCode",
    "entpTelno",
    "postNo",
    "plmkAddrBasic",
    "plmkAddrDetail",
    "roadAddrPostNo",
    "roadAddrBasic",
    "roadAddrDetail",
    "xMapCoord",
    "yMapCoord",
];

/// A field name: borrowed from the known names when it is one, copied otherwise.
pub fn intern(name: &str) -> Cow<'static, str> {
    match KNOWN_NAMES.iter().find(|known| **known == name) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_owned()),
    }
}

impl Row {
    /// An empty row.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a field (a later field with the same name does not replace an earlier one).
    pub fn push(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        self.fields.push((name.into(), value.into()));
    }

    /// Builds a row from name/value pairs (handy in tests and the mock).
    pub fn from_pairs<N: Into<Cow<'static, str>>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut row = Self::new();
        for (name, value) in pairs {
            row.push(name, value);
        }
        row
    }

    /// The raw value of a field, matched exactly first, then ignoring ASCII case (some operations
    /// spell the same field differently, as they do `serviceKey`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .or_else(|| {
                self.fields
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed value of a field, or `None` when it is missing or blank.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// The fields in arrival order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_ref(), v.as_str()))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when the row has no field.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_value_reads_as_missing() {
        let row = Row::from_pairs([("goodName", "  "), ("goodId", " 7 ")]);
        assert_eq!(row.text("goodName"), None);
        assert_eq!(row.text("goodId"), Some("7"));
        assert_eq!(row.text("absent"), None);
    }

    #[test]
    fn a_field_is_found_whatever_its_ascii_case() {
        let row = Row::from_pairs([("ServiceKey", "k"), ("serviceKey", "exact")]);
        assert_eq!(row.get("serviceKey"), Some("exact"));
        assert_eq!(row.get("SERVICEKEY"), Some("k"));
    }
}
