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

use crate::row::Row;
use crate::xml::{self, Element, XmlError};

mod json;

use json::Scalar;

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
        row.push(crate::row::intern(&field.name), field.text.clone());
    }
    row
}

fn parse_paged_json(body: &[u8]) -> Result<Reply, ParseError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let root: json::Root = serde_json::from_slice(body)?;
    if let Some(gateway) = root.gateway {
        let header = gateway.cmm_msg_header.unwrap_or(gateway.direct);
        let message = Scalar::text(&header.return_auth_msg).or(Scalar::text(&header.err_msg));
        return Ok(Reply::Fault(ApiFault {
            code: Scalar::text(&header.return_reason_code)
                .unwrap_or("99")
                .to_owned(),
            message: message.unwrap_or("gateway error").to_owned(),
            gateway: true,
        }));
    }
    let (header, body) = match root.response {
        Some(envelope) => (envelope.header, envelope.body),
        None => (root.header, root.body),
    };
    if let Some(code) = header.as_ref().and_then(|h| Scalar::text(&h.result_code)) {
        match classify_code(code) {
            CodeClass::Success => {}
            CodeClass::NoData => {
                return Ok(Reply::Rows(Rows {
                    total_count: Some(0),
                    ..Rows::default()
                }));
            }
            CodeClass::Transient | CodeClass::Permanent => {
                let message = header.as_ref().and_then(|h| Scalar::text(&h.result_msg));
                return Ok(Reply::Fault(ApiFault {
                    code: code.to_owned(),
                    message: message.unwrap_or_default().to_owned(),
                    gateway: false,
                }));
            }
        }
    }
    let Some(body) = body else {
        return match header {
            Some(_) => Ok(Reply::Rows(Rows::default())),
            None => Err(ParseError::Shape(
                "no response.header or response.body".into(),
            )),
        };
    };
    Ok(Reply::Rows(Rows {
        total_count: number_field("totalCount", Scalar::text(&body.total_count))?,
        page_no: number_field("pageNo", Scalar::text(&body.page_no))?,
        num_of_rows: number_field("numOfRows", Scalar::text(&body.num_of_rows))?,
        rows: body.items.map(|items| items.0).unwrap_or_default(),
    }))
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
