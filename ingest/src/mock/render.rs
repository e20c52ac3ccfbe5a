//! Reply bodies in the shapes the real APIs send.

use quick_xml::escape::escape;
use serde_json::{json, Map, Value};

use crate::row::Row;

/// How the mock shapes its paged replies (each variant is a quirk seen in the wild).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Style {
    /// Numbers (`totalCount`, counts) as JSON strings.
    pub numbers_as_strings: bool,
    /// Rows as a bare array in `items` instead of `items.item`.
    pub bare_array: bool,
    /// How a page without rows is written in JSON.
    pub empty_items: EmptyItems,
    /// The success code (`00`, `000`, `0000`).
    pub success_code: String,
}

impl Default for Style {
    fn default() -> Self {
        Self {
            numbers_as_strings: false,
            bare_array: false,
            empty_items: EmptyItems::EmptyString,
            success_code: "00".into(),
        }
    }
}

/// The ways "no rows" is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyItems {
    /// `"items": ""`
    EmptyString,
    /// no `items` at all
    Missing,
    /// `"items": {}`
    EmptyObject,
}

/// The page being rendered.
pub struct PageView<'a> {
    pub rows: &'a [Row],
    pub page_no: u32,
    pub num_of_rows: u32,
    pub total_count: u64,
}

pub fn paged_json(page: &PageView<'_>, style: &Style) -> String {
    let number = |n: u64| {
        if style.numbers_as_strings {
            json!(n.to_string())
        } else {
            json!(n)
        }
    };
    let rows: Vec<Value> = page
        .rows
        .iter()
        .map(|r| json_row(r, style.numbers_as_strings))
        .collect();
    let mut body = Map::new();
    match (rows.len(), style.bare_array) {
        (0, _) => match style.empty_items {
            EmptyItems::EmptyString => {
                body.insert("items".into(), json!(""));
            }
            EmptyItems::Missing => {}
            EmptyItems::EmptyObject => {
                body.insert("items".into(), json!({}));
            }
        },
        (_, true) => {
            body.insert("items".into(), Value::Array(rows));
        }
        (1, false) => {
            let single = rows.into_iter().next().unwrap_or(Value::Null);
            body.insert("items".into(), json!({ "item": single }));
        }
        (_, false) => {
            body.insert("items".into(), json!({ "item": rows }));
        }
    }
    body.insert("numOfRows".into(), number(u64::from(page.num_of_rows)));
    body.insert("pageNo".into(), number(u64::from(page.page_no)));
    body.insert("totalCount".into(), number(page.total_count));
    json!({ "response": { "header": { "resultCode": style.success_code, "resultMsg": "NORMAL SERVICE." }, "body": body } })
        .to_string()
}

/// Strings that look like plain integers become JSON numbers, unless numbers are sent as strings.
fn json_row(row: &Row, numbers_as_strings: bool) -> Value {
    let mut map = Map::new();
    for (name, value) in row.fields() {
        let as_number = (!numbers_as_strings)
            .then(|| value.parse::<i64>().ok().filter(|n| n.to_string() == value))
            .flatten();
        map.insert(
            name.to_owned(),
            as_number.map_or_else(|| json!(value), |n| json!(n)),
        );
    }
    Value::Object(map)
}

pub fn paged_xml(page: &PageView<'_>, style: &Style) -> String {
    let mut out = String::with_capacity(256 + page.rows.len() * 400);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><response>");
    header_xml(&mut out, &style.success_code, "NORMAL SERVICE.");
    out.push_str("<body><items>");
    for row in page.rows {
        row_xml(&mut out, "item", row);
    }
    out.push_str(&format!(
        "</items><numOfRows>{}</numOfRows><pageNo>{}</pageNo><totalCount>{}</totalCount></body></response>",
        page.num_of_rows, page.page_no, page.total_count
    ));
    out
}

/// A consumer-price list: rows under `<result>`, named like the real service's value objects.
pub fn price_xml(rows: &[Row], row_element: &str) -> String {
    let mut out = String::with_capacity(256 + rows.len() * 400);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><response>");
    header_xml(&mut out, "00", "NORMAL SERVICE.");
    out.push_str("<result>");
    for row in rows {
        row_xml(&mut out, row_element, row);
    }
    out.push_str("</result></response>");
    out
}

/// An envelope carrying only a result code, in JSON or XML.
pub fn result_code(code: &str, message: &str, json: bool) -> String {
    if json {
        json!({ "response": { "header": { "resultCode": code, "resultMsg": message } } })
            .to_string()
    } else {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><response>");
        header_xml(&mut out, code, message);
        out.push_str("</response>");
        out
    }
}

/// The gateway's own error document (always XML).
pub fn gateway_error(code: &str) -> String {
    let message = match code {
        "12" => "NO_OPENAPI_SERVICE_ERROR",
        "20" => "SERVICE_ACCESS_DENIED_ERROR",
        "22" => "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR",
        "30" => "SERVICE_KEY_IS_NOT_REGISTERED_ERROR",
        "31" => "DEADLINE_HAS_EXPIRED_ERROR",
        "32" => "UNREGISTERED_IP_ERROR",
        _ => "UNKNOWN_ERROR",
    };
    format!(
        "<OpenAPI_ServiceResponse>\n\t<cmmMsgHeader>\n\t\t<errMsg>SERVICE ERROR</errMsg>\n\t\t<returnAuthMsg>{message}</returnAuthMsg>\n\t\t<returnReasonCode>{code}</returnReasonCode>\n\t</cmmMsgHeader>\n</OpenAPI_ServiceResponse>"
    )
}

pub fn result_message(code: &str) -> &'static str {
    match code {
        "01" => "APPLICATION_ERROR",
        "10" => "INVALID_REQUEST_PARAMETER_ERROR",
        "11" => "NO_MANDATORY_REQUEST_PARAMETERS_ERROR",
        "22" => "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR",
        _ => "ERROR",
    }
}

fn header_xml(out: &mut String, code: &str, message: &str) {
    out.push_str(&format!(
        "<header><resultCode>{}</resultCode><resultMsg>{}</resultMsg></header>",
        escape(code),
        escape(message)
    ));
}

fn row_xml(out: &mut String, element: &str, row: &Row) {
    out.push('<');
    out.push_str(element);
    out.push('>');
    for (name, value) in row.fields() {
        out.push_str(&format!("<{name}>{}</{name}>", escape(value)));
    }
    out.push_str("</");
    out.push_str(element);
    out.push('>');
}
