//! Reply bodies in the shapes the real APIs send.

use quick_xml::escape::escape;
use serde_json::json;

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

/// A paged JSON reply, written directly (no value tree: the mock must outrun the client in benchmarks).
pub fn paged_json(page: &PageView<'_>, style: &Style) -> String {
    let mut out = String::with_capacity(256 + page.rows.len() * 300);
    out.push_str("{\"response\":{\"header\":{\"resultCode\":");
    push_json_str(&mut out, &style.success_code);
    out.push_str(",\"resultMsg\":\"NORMAL SERVICE.\"},\"body\":{");
    match (page.rows, style.bare_array) {
        ([], _) => match style.empty_items {
            EmptyItems::EmptyString => out.push_str("\"items\":\"\","),
            EmptyItems::Missing => {}
            EmptyItems::EmptyObject => out.push_str("\"items\":{},"),
        },
        (rows, true) => {
            out.push_str("\"items\":");
            push_json_rows(&mut out, rows, style.numbers_as_strings);
            out.push(',');
        }
        ([row], false) => {
            out.push_str("\"items\":{\"item\":");
            push_json_row(&mut out, row, style.numbers_as_strings);
            out.push_str("},");
        }
        (rows, false) => {
            out.push_str("\"items\":{\"item\":");
            push_json_rows(&mut out, rows, style.numbers_as_strings);
            out.push_str("},");
        }
    }
    let numbers = [
        ("numOfRows", u64::from(page.num_of_rows)),
        ("pageNo", u64::from(page.page_no)),
        ("totalCount", page.total_count),
    ];
    for (i, (name, value)) in numbers.iter().enumerate() {
        let quote = if style.numbers_as_strings { "\"" } else { "" };
        let comma = if i + 1 < numbers.len() { "," } else { "" };
        out.push_str(&format!("\"{name}\":{quote}{value}{quote}{comma}"));
    }
    out.push_str("}}}");
    out
}

fn push_json_rows(out: &mut String, rows: &[Row], numbers_as_strings: bool) {
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_row(out, row, numbers_as_strings);
    }
    out.push(']');
}

/// Strings that look like plain integers become JSON numbers, unless numbers are sent as strings.
fn push_json_row(out: &mut String, row: &Row, numbers_as_strings: bool) {
    out.push('{');
    for (i, (name, value)) in row.fields().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, name);
        out.push(':');
        if !numbers_as_strings && is_plain_integer(value) {
            out.push_str(value);
        } else {
            push_json_str(out, value);
        }
    }
    out.push('}');
}

fn is_plain_integer(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    !digits.is_empty()
        && digits.len() < 16
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (value == "0" || !digits.starts_with('0'))
}

fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    // The bytes escaped are ASCII, so slicing at them never splits a UTF-8 sequence.
    let mut start = 0;
    for (i, byte) in value.bytes().enumerate() {
        let escaped = match byte {
            b'"' => "\\\"".to_owned(),
            b'\\' => "\\\\".to_owned(),
            0..=0x1f => format!("\\u{byte:04x}"),
            _ => continue,
        };
        out.push_str(&value[start..i]);
        out.push_str(&escaped);
        start = i + 1;
    }
    out.push_str(&value[start..]);
    out.push('"');
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_json_is_valid_and_keeps_leading_zeros_as_strings() {
        let rows = [Row::from_pairs([
            ("goodId", "151"),
            ("code", "030201001"),
            ("name", "a \"b\" \\ \u{1}"),
            ("neg", "-5"),
            ("zero", "0"),
        ])];
        let page = PageView {
            rows: &rows,
            page_no: 1,
            num_of_rows: 10,
            total_count: 1,
        };
        let value: serde_json::Value =
            serde_json::from_str(&paged_json(&page, &Style::default())).expect("valid JSON");
        let item = &value["response"]["body"]["items"]["item"];
        assert_eq!(item["goodId"], json!(151));
        assert_eq!(item["code"], json!("030201001"));
        assert_eq!(item["name"], json!("a \"b\" \\ \u{1}"));
        assert_eq!(
            (item["neg"].clone(), item["zero"].clone()),
            (json!(-5), json!(0))
        );
        assert_eq!(value["response"]["body"]["totalCount"], json!(1));
        let two = [rows[0].clone(), rows[0].clone()];
        let style = Style {
            numbers_as_strings: true,
            bare_array: true,
            ..Style::default()
        };
        let page = PageView {
            rows: &two,
            page_no: 2,
            num_of_rows: 2,
            total_count: 4,
        };
        let value: serde_json::Value =
            serde_json::from_str(&paged_json(&page, &style)).expect("valid JSON");
        assert_eq!(
            value["response"]["body"]["items"][1]["goodId"],
            json!("151")
        );
        assert_eq!(value["response"]["body"]["pageNo"], json!("2"));
    }
}
