//! A small XML tree, enough for the public APIs' replies: element names, text and children.
//!
//! Replies are at most a few megabytes (1,000 rows a page), so a tree is simpler than a streaming
//! state machine and costs little. Attributes are not used by these APIs and are ignored.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::Reader;

/// One XML element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (namespace prefix removed).
    pub name: String,
    /// The element's own text, unescaped (CDATA included).
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child with this name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The trimmed text of the first child with this name, if it is not blank.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }
}

/// Why a body is not well-formed XML.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error(transparent)]
    Syntax(#[from] quick_xml::Error),
    #[error("the document ends inside <{0}> (truncated?)")]
    Unclosed(String),
    #[error("the document has no root element")]
    NoRoot,
    #[error("element name is not UTF-8")]
    Name,
}

/// Decodes a reply body to text: UTF-8 (a BOM is dropped), or EUC-KR/CP949 when the XML
/// declaration says so or the bytes are not UTF-8.
pub fn decode(body: &[u8]) -> Cow<'_, str> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let head = &body[..body.len().min(200)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let declared_korean = head.starts_with("<?xml")
        && ["euc-kr", "cp949", "ks_c_5601", "x-windows-949"]
            .iter()
            .any(|e| head.contains(e));
    match std::str::from_utf8(body) {
        Ok(text) if !declared_korean => Cow::Borrowed(text),
        _ => encoding_rs::EUC_KR.decode_without_bom_handling(body).0,
    }
}

/// Parses a whole document and returns its root element.
pub fn parse(text: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        match reader.read_event()? {
            Event::Start(start) => stack.push(Element {
                name: local_name(start.local_name().as_ref())?,
                ..Element::default()
            }),
            Event::Empty(start) => {
                let element = Element {
                    name: local_name(start.local_name().as_ref())?,
                    ..Element::default()
                };
                attach(&mut stack, &mut root, element);
            }
            Event::Text(text) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text.unescape()?);
                }
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::End(_) => {
                if let Some(element) = stack.pop() {
                    attach(&mut stack, &mut root, element);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.pop() {
        return Err(XmlError::Unclosed(open.name));
    }
    root.ok_or(XmlError::NoRoot)
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => {
            if root.is_none() {
                *root = Some(element);
            }
        }
    }
}

fn local_name(bytes: &[u8]) -> Result<String, XmlError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| XmlError::Name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_entities_and_cdata_are_unescaped() {
        let root =
            parse("<?xml version=\"1.0\"?><a><b>x &amp; y</b><c><![CDATA[<raw>]]></c><d/></a>")
                .expect("parses");
        assert_eq!(root.name, "a");
        assert_eq!(root.child_text("b"), Some("x & y"));
        assert_eq!(root.child_text("c"), Some("<raw>"));
        assert_eq!(root.child("d").map(|d| d.text.as_str()), Some(""));
    }

    #[test]
    fn a_truncated_document_is_an_error() {
        assert!(matches!(
            parse("<a><b>1</b><c>"),
            Err(XmlError::Unclosed(_))
        ));
        assert!(parse("<a><b>1</c></a>").is_err());
        assert!(matches!(parse("   "), Err(XmlError::NoRoot)));
    }

    #[test]
    fn a_euc_kr_document_is_decoded() {
        let (bytes, _, _) =
            encoding_rs::EUC_KR.encode("<?xml version=\"1.0\" encoding=\"EUC-KR\"?><a>라면</a>");
        let text = decode(&bytes);
        assert_eq!(parse(&text).expect("parses").text, "라면");
    }
}
