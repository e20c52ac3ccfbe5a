//! Parsers for the reply envelopes of the public APIs, with every quirk seen in the wild.
//!
//! * data.go.kr paged replies, JSON or XML: `response.header.{resultCode,resultMsg}` and
//!   `response.body.{items.item, numOfRows, pageNo, totalCount}`. One row may come as an object, no
//!   rows as `"items": ""`, a missing `items` or `{}`, some APIs put a bare array in `items`, numbers
//!   may be strings; success is `00`, `000` or `0000`; "no data" is `03`.
//! * The gateway's own error, `<OpenAPI_ServiceResponse><cmmMsgHeader>…`, which is XML even when JSON
//!   was asked for.
//! * The consumer-price (참가격) replies: XML, rows are any children of `<response><result>`.
//!
//! The format is sniffed from the body, never trusted from the request or the `Content-Type`.

use serde_json::Value;

use crate::row::Row;
use crate::xml::{self, Element, XmlError};

/// What a reply said.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Rows (possibly none).
    Rows(Rows),
    /// The API or its gateway refused the call.
    Fault(ApiFault),
}

/// The rows of one reply and the paging numbers that came with them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub total_count: Option<u64>,
    pub page_no: Option<u32>,
    pub num_of_rows: Option<u32>,
    pub rows: Vec<Row>,
}

/// A refusal: the code and message as the API sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFault {
    /// `resultCode` or the gateway's `returnReasonCode`, as sent (`"30"`, `"22"`, …).
    pub code: String,
    /// `resultMsg`, or the gateway's `returnAuthMsg` / `errMsg`.
    pub message: String,
    /// True for the gateway's `<OpenAPI_ServiceResponse>` form.
    pub gateway: bool,
}

/// What a result code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeClass {
    Success,
    NoData,
    /// Worth retrying later: application, database, HTTP or timeout errors on their side, quota (22).
    Transient,
    /// Retrying cannot help: bad parameters (10, 11), no such service (12), key problems (20, 21, 30–33).
    Permanent,
}

/// Classifies a data.go.kr result code; codes arrive zero-padded to any width (`0`, `00`, `0000`).
pub fn classify_code(code: &str) -> CodeClass {
    match code.trim().parse::<u32>() {
        Ok(0) => CodeClass::Success,
        Ok(3) => CodeClass::NoData,
        Ok(1 | 2 | 4 | 5 | 22 | 99) => CodeClass::Transient,
        _ => CodeClass::Permanent,
    }
}

impl ApiFault {
    /// True when retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        classify_code(&self.code) == CodeClass::Transient
    }
}

/// Why a body could not be read as a reply.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("empty body")]
    Empty,
    #[error("body is neither JSON nor XML (starts with {0:?})")]
    NotJsonOrXml(String),
    #[error("invalid JSON")]
    Json(#[from] serde_json::Error),
    #[error("invalid XML")]
    Xml(#[from] XmlError),
    #[error("unexpected reply shape: {0}")]
    Shape(String),
    #[error("{field} is not a number: {value:?}")]
    BadNumber { field: &'static str, value: String },
}

enum Format {
    Json,
    Xml,
}

fn sniff(body: &[u8]) -> Result<Format, ParseError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(ParseError::Empty),
        Some(b'<') => Ok(Format::Xml),
        Some(b'{' | b'[') => Ok(Format::Json),
        Some(_) => {
            let start = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
            Err(ParseError::NotJsonOrXml(start))
        }
    }
}

/// Parses a paged data.go.kr reply (JSON or XML, or a gateway error).
pub fn parse_paged(body: &[u8]) -> Result<Reply, ParseError> {
    match sniff(body)? {
        Format::Json => parse_paged_json(body),
        Format::Xml => {
            let root = xml::parse(&xml::decode(body))?;
            match root.name.as_str() {
                "OpenAPI_ServiceResponse" => Ok(Reply::Fault(gateway_fault(&root))),
                "response" => paged_xml(&root),
                other => Err(ParseError::Shape(format!(
                    "unexpected root element <{other}>"
                ))),
            }
        }
    }
}

/// Parses a consumer-price (참가격) reply: rows are the children of `<response><result>`, whatever
/// their element name. A paged-shaped or gateway reply is understood too.
pub fn parse_price(body: &[u8]) -> Result<Reply, ParseError> {
    let Format::Xml = sniff(body)? else {
        return parse_paged(body);
    };
    let root = xml::parse(&xml::decode(body))?;
    match root.name.as_str() {
        "OpenAPI_ServiceResponse" => Ok(Reply::Fault(gateway_fault(&root))),
        "response" => {
            if let Some(reply) = xml_header_fault(&root) {
                return Ok(reply);
            }
            match root.child("result") {
                Some(result) => Ok(Reply::Rows(Rows {
                    rows: result.children.iter().map(xml_row).collect(),
                    ..Rows::default()
                })),
                None if root.child("body").is_some() => paged_xml(&root),
                None => Ok(Reply::Rows(Rows::default())),
            }
        }
        other => Err(ParseError::Shape(format!(
            "unexpected root element <{other}>"
        ))),
    }
}

fn gateway_fault(root: &Element) -> ApiFault {
    let header = root.child("cmmMsgHeader").unwrap_or(root);
    let message = header
        .child_text("returnAuthMsg")
        .or_else(|| header.child_text("errMsg"))
        .unwrap_or("gateway error");
    ApiFault {
        code: header
            .child_text("returnReasonCode")
            .unwrap_or("99")
            .to_owned(),
        message: message.to_owned(),
        gateway: true,
    }
}

/// `Some` when the `<header>` reports a failure or "no data".
fn xml_header_fault(root: &Element) -> Option<Reply> {
    let header = root.child("header")?;
    let code = header.child_text("resultCode")?;
    match classify_code(code) {
        CodeClass::Success => None,
        CodeClass::NoData => Some(Reply::Rows(Rows {
            total_count: Some(0),
            ..Rows::default()
        })),
        CodeClass::Transient | CodeClass::Permanent => Some(Reply::Fault(ApiFault {
            code: code.to_owned(),
            message: header.child_text("resultMsg").unwrap_or("").to_owned(),
            gateway: false,
        })),
    }
}

fn paged_xml(root: &Element) -> Result<Reply, ParseError> {
    if let Some(reply) = xml_header_fault(root) {
        return Ok(reply);
    }
    let Some(body) = root.child("body") else {
        return match root.child("header") {
            Some(_) => Ok(Reply::Rows(Rows::default())),
            None => Err(ParseError::Shape(
                "<response> has neither <header> nor <body>".into(),
            )),
        };
    };
    let rows = match body.child("items") {
        Some(items) => items.children.iter().map(xml_row).collect(),
        None => Vec::new(),
    };
    Ok(Reply::Rows(Rows {
        total_count: number_field("totalCount", body.child_text("totalCount"))?,
        page_no: number_field("pageNo", body.child_text("pageNo"))?,
        num_of_rows: number_field("numOfRows", body.child_text("numOfRows"))?,
        rows,
    }))
}

fn xml_row(element: &Element) -> Row {
    let mut row = Row::new();
    for field in &element.children {
        row.push(field.name.clone(), field.text.clone());
    }
    row
}

fn parse_paged_json(body: &[u8]) -> Result<Reply, ParseError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let root: Value = serde_json::from_slice(body)?;
    if let Some(gateway) = root.get("OpenAPI_ServiceResponse") {
        return Ok(Reply::Fault(json_gateway_fault(gateway)));
    }
    let response = root.get("response").unwrap_or(&root);
    let header = response.get("header");
    if let Some(code) = header
        .and_then(|h| h.get("resultCode"))
        .and_then(scalar_text)
    {
        match classify_code(&code) {
            CodeClass::Success => {}
            CodeClass::NoData => {
                return Ok(Reply::Rows(Rows {
                    total_count: Some(0),
                    ..Rows::default()
                }))
            }
            CodeClass::Transient | CodeClass::Permanent => {
                let message = header
                    .and_then(|h| h.get("resultMsg"))
                    .and_then(scalar_text)
                    .unwrap_or_default();
                return Ok(Reply::Fault(ApiFault {
                    code,
                    message,
                    gateway: false,
                }));
            }
        }
    }
    let Some(body) = response.get("body") else {
        return match header {
            Some(_) => Ok(Reply::Rows(Rows::default())),
            None => Err(ParseError::Shape(
                "no response.header or response.body".into(),
            )),
        };
    };
    Ok(Reply::Rows(Rows {
        total_count: number_field(
            "totalCount",
            body.get("totalCount").and_then(scalar_text).as_deref(),
        )?,
        page_no: number_field(
            "pageNo",
            body.get("pageNo").and_then(scalar_text).as_deref(),
        )?,
        num_of_rows: number_field(
            "numOfRows",
            body.get("numOfRows").and_then(scalar_text).as_deref(),
        )?,
        rows: json_items(body.get("items"))?,
    }))
}

fn json_gateway_fault(value: &Value) -> ApiFault {
    let header = value.get("cmmMsgHeader").unwrap_or(value);
    let text = |name: &str| {
        header
            .get(name)
            .and_then(scalar_text)
            .filter(|t| !t.is_empty())
    };
    ApiFault {
        code: text("returnReasonCode").unwrap_or_else(|| "99".into()),
        message: text("returnAuthMsg")
            .or_else(|| text("errMsg"))
            .unwrap_or_else(|| "gateway error".into()),
        gateway: true,
    }
}

/// `items` in all its shapes: `""`, missing, `null`, `{}`, `{"item": {…}}`, `{"item": […]}`, `[…]`.
fn json_items(items: Option<&Value>) -> Result<Vec<Row>, ParseError> {
    match items {
        None | Some(Value::Null | Value::String(_)) => Ok(Vec::new()),
        Some(Value::Array(list)) => json_rows(list),
        Some(Value::Object(map)) => match map.get("item") {
            None if map.is_empty() => Ok(Vec::new()),
            None => Err(ParseError::Shape("items has no item".into())),
            Some(Value::Array(list)) => json_rows(list),
            Some(Value::Object(_)) => json_rows(std::slice::from_ref(&map["item"])),
            Some(Value::Null | Value::String(_)) => Ok(Vec::new()),
            Some(other) => Err(ParseError::Shape(format!(
                "items.item is {}",
                kind_of(other)
            ))),
        },
        Some(other) => Err(ParseError::Shape(format!("items is {}", kind_of(other)))),
    }
}

fn json_rows(list: &[Value]) -> Result<Vec<Row>, ParseError> {
    list.iter()
        .map(|value| match value {
            Value::Object(map) => {
                let mut row = Row::new();
                for (name, value) in map {
                    if let Some(text) =
                        scalar_text(value).or_else(|| (!value.is_null()).then(|| value.to_string()))
                    {
                        row.push(name.clone(), text);
                    }
                }
                Ok(row)
            }
            other => Err(ParseError::Shape(format!("a row is {}", kind_of(other)))),
        })
        .collect()
}

/// Strings as they are, numbers and booleans as text; `None` for null, arrays and objects.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn number_field<N: std::str::FromStr>(
    field: &'static str,
    text: Option<&str>,
) -> Result<Option<N>, ParseError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t.parse().map(Some).map_err(|_| ParseError::BadNumber {
            field,
            value: t.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests;
