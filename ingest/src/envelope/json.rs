//! Typed, streaming deserialisation of the JSON envelope: rows are built while the body is read,
//! without an intermediate `serde_json::Value` tree (which cost a map and many allocations per row).

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::row::Row;

/// The document: `{"response": {...}}`, a bare `{"header", "body"}`, or the gateway's error.
#[derive(Deserialize)]
pub(super) struct Root {
    pub response: Option<Envelope>,
    pub header: Option<Header>,
    pub body: Option<Body>,
    #[serde(rename = "OpenAPI_ServiceResponse")]
    pub gateway: Option<Gateway>,
}

#[derive(Deserialize)]
pub(super) struct Envelope {
    pub header: Option<Header>,
    pub body: Option<Body>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Header {
    pub result_code: Option<Scalar>,
    pub result_msg: Option<Scalar>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Body {
    pub items: Option<Items>,
    pub num_of_rows: Option<Scalar>,
    pub page_no: Option<Scalar>,
    pub total_count: Option<Scalar>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Gateway {
    pub cmm_msg_header: Option<GatewayHeader>,
    #[serde(flatten)]
    pub direct: GatewayHeader,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct GatewayHeader {
    pub err_msg: Option<Scalar>,
    pub return_auth_msg: Option<Scalar>,
    pub return_reason_code: Option<Scalar>,
}

/// A string, number or boolean as text; `None` for null. Arrays and objects are skipped (`None`).
#[derive(Default)]
pub(super) struct Scalar(pub Option<String>);

impl Scalar {
    pub fn text(field: &Option<Scalar>) -> Option<&str> {
        field
            .as_ref()
            .and_then(|s| s.0.as_deref())
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar(Some(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar(Some(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar(Some(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar(Some(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar(Some(v.to_string())))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar(Some(v.to_string())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar(None))
    }
}

/// `items` in all its shapes: `""`, `null`, `{}`, `{"item": {…}}`, `{"item": […]}`, `{"item": ""}`, `[…]`.
pub(super) struct Items(pub Vec<Row>);

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ItemsVisitor { inside_item: false })
    }
}

struct ItemsVisitor {
    /// True for the value of `items.item`, where an object is one row.
    inside_item: bool,
}

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = Items;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rows: an array, an object with `item`, or an empty string")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Items, E> {
        Ok(Items(Vec::new()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Items, E> {
        Ok(Items(Vec::new()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
        let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(JsonRow(row)) = seq.next_element()? {
            rows.push(row);
        }
        Ok(Items(rows))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Items, A::Error> {
        if self.inside_item {
            return RowVisitor.visit_map(map).map(|row| Items(vec![row]));
        }
        let mut map = map;
        let mut rows = Vec::new();
        let mut other_keys = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "item" {
                rows = map.next_value_seed(ItemSeed)?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
                other_keys = true;
            }
        }
        if other_keys && rows.is_empty() {
            return Err(de::Error::custom("items has no item"));
        }
        Ok(Items(rows))
    }
}

struct ItemSeed;

impl<'de> de::DeserializeSeed<'de> for ItemSeed {
    type Value = Items;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Items, D::Error> {
        deserializer.deserialize_any(ItemsVisitor { inside_item: true })
    }
}

/// One row: an object whose scalar values become text.
struct JsonRow(Row);

impl<'de> Deserialize<'de> for JsonRow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RowVisitor).map(JsonRow)
    }
}

struct RowVisitor;

impl<'de> Visitor<'de> for RowVisitor {
    type Value = Row;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
        let mut row = Row::new();
        while let Some(FieldName(name)) = map.next_key()? {
            if let Scalar(Some(value)) = map.next_value()? {
                row.push(name, value);
            }
        }
        Ok(row)
    }
}

/// A row's field name, interned without an intermediate `String`.
struct FieldName(std::borrow::Cow<'static, str>);

impl<'de> Deserialize<'de> for FieldName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = FieldName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldName, E> {
                Ok(FieldName(crate::row::intern(v)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}
