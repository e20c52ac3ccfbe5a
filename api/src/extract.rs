//! Request extractors whose rejections are problem+json naming the failing field, instead of
//! axum's plain-text defaults.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body. A malformed body or a wrong type is a 400 naming the field path.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(unsupported_media_type());
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "request body too large",
                ),
                _ => ApiError::malformed(None, e.body_text()),
            })?;
        parse_json(&bytes).map(Json)
    }
}

/// Refuses a body that is present but not declared as JSON (for routes whose body is optional).
pub fn require_json_if_present(
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) || is_json(headers) {
        return Ok(());
    }
    Err(unsupported_media_type())
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let mime = ct.split(';').next().unwrap_or("").trim();
            mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
        })
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "expected a JSON body with Content-Type: application/json",
    )
}

/// Whether `c` may appear in text a client sends: any character but the control characters,
/// except tab and line breaks. NUL in particular is refused by PostgreSQL, and other controls
/// forge log lines and confuse displays.
pub fn is_allowed_char(c: char) -> bool {
    !c.is_control() || matches!(c, '\t' | '\n' | '\r')
}

/// Refuses text with a character [`is_allowed_char`] refuses, naming `field`.
pub fn check_text(field: &str, text: &str) -> Result<(), ApiError> {
    if text.chars().all(is_allowed_char) {
        return Ok(());
    }
    Err(ApiError::invalid(
        field,
        format!("{field} must not contain control characters such as NUL"),
    ))
}

/// The path (as `a.b[0].c`) of the first string in `value` with a refused character.
fn first_bad_text(value: &serde_json::Value, path: &mut String) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => !s.chars().all(is_allowed_char),
        Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let bad = first_bad_text(item, path);
            if !bad {
                path.truncate(len);
            }
            bad
        }),
        Value::Object(map) => map.iter().any(|(key, item)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            let bad = !key.chars().all(is_allowed_char) || first_bad_text(item, path);
            if !bad {
                path.truncate(len);
            }
            bad
        }),
        _ => false,
    }
}

/// Whether raw JSON may hold a control character in a string: escaped as `\u00XX` (C0, DEL and
/// C1 are all below `\u00a0`), or written raw (DEL, or C1 as UTF-8 `C2 80`..`C2 9F`). Raw C0
/// bytes are not valid JSON in a string at all. A cheap scan, so only such bodies are parsed twice.
fn may_hold_control(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|w| w == b"\\u00")
        || bytes.contains(&0x7f)
        || bytes
            .windows(2)
            .any(|w| w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1]))
}

/// Deserialises one JSON document (nothing may follow it), refusing control characters in any
/// string and reporting the path of the first bad field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is one JSON object (or `null` where the body is optional): serde would also build
    // a struct from an array of its fields in order, which no client means and no schema allows.
    if matches!(bytes.iter().find(|b| !b.is_ascii_whitespace()), Some(b) if *b != b'{' && *b != b'n')
    {
        return Err(ApiError::malformed(
            Some("body".into()),
            "the body must be a JSON object",
        ));
    }
    if may_hold_control(bytes) {
        // Every string is checked, whatever type it would land in.
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
            let mut path = String::new();
            if first_bad_text(&value, &mut path) {
                let field = if path.is_empty() {
                    "body".to_owned()
                } else {
                    path
                };
                return Err(ApiError::invalid(
                    field.clone(),
                    format!("{field} must not contain control characters such as NUL"),
                ));
            }
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => value,
        Err(err) => {
            if err.inner().is_data() {
                if let Some(value) = integral_floats_help::<T>(bytes) {
                    return Ok(value);
                }
            }
            let path = err.path().to_string();
            let inner = err.into_inner();
            let field = if path == "." || path.is_empty() {
                missing_field(&inner.to_string())
            } else {
                Some(path)
            };
            let status = if inner.is_syntax() || inner.is_eof() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let mut error = ApiError::malformed(field, format!("invalid JSON body: {inner}"));
            if status == StatusCode::UNPROCESSABLE_ENTITY {
                error.status = status;
                error.code = "validation_failed";
            }
            return Err(error);
        }
    };
    // One document: `{...}xyz` is not a body we understood.
    de.end()
        .map_err(|e| ApiError::malformed(None, format!("invalid JSON body: {e}")))?;
    Ok(value)
}

/// JSON Schema counts `2.0` as an integer, and clients (and generated ones) may send it so; serde
/// does not. When a body failed on a type and holds integral floats, it is read again with those
/// written as integers. `None` when that changes nothing or still fails: the first error stands.
fn integral_floats_help<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    fn normalise(value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::Number(n) if n.is_f64() => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                    *value = serde_json::Value::from(f as i64);
                    true
                }
                _ => false,
            },
            // Every element is visited (no short-circuit): all of them are rewritten.
            serde_json::Value::Array(items) => {
                let mut changed = false;
                for v in items.iter_mut() {
                    changed |= normalise(v);
                }
                changed
            }
            serde_json::Value::Object(map) => {
                let mut changed = false;
                for v in map.values_mut() {
                    changed |= normalise(v);
                }
                changed
            }
            _ => false,
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if !normalise(&mut value) {
        return None;
    }
    serde_json::from_value(value).ok()
}

/// serde reports a missing or repeated field at the parent path; pull its name out of the message.
fn missing_field(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("duplicate field `"))?;
    Some(rest.split('`').next()?.to_owned())
}

/// Query parameters; a bad value is a 400 naming the parameter.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            check_text(&key, &key)?;
            check_text(&key, &value)?;
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) => Ok(Query(v)),
            Err(err) => {
                let path = err.path().to_string();
                let msg = err.into_inner().to_string();
                let field = if path == "." { None } else { Some(path) };
                Err(ApiError::malformed(
                    field.or_else(|| missing_field(&msg)),
                    format!("invalid query string: {msg}"),
                ))
            }
        }
    }
}

/// Path parameters; a bad value (e.g. a non-numeric id) is a 400 naming the parameter.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let kind = e.into_kind();
                let field = path_param_name(&kind);
                Err(ApiError::malformed(
                    field,
                    format!("invalid path parameter: {kind}"),
                ))
            }
            Err(other) => Err(ApiError::malformed(None, other.body_text())),
        }
    }
}

fn path_param_name(kind: &axum::extract::path::ErrorKind) -> Option<String> {
    use axum::extract::path::ErrorKind;
    match kind {
        ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::DeserializeError { key, .. } => {
            Some(key.clone())
        }
        _ => Some("id".to_owned()),
    }
}

/// For an optional body field where `null` is not a value: absent is `None` (with
/// `#[serde(default)]`), a value is `Some`, and `null` is refused naming the field, so the schema
/// can say "leave it out" instead of "string or null".
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        capacity: i64,
        title: String,
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        let err = parse_json::<Body>(br#"{"capacity": "ten", "title": "x"}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("capacity"));
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = parse_json::<Body>(br#"{"capacity": 3}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("title"));
    }

    #[test]
    fn broken_json_is_a_bad_request() {
        let err = parse_json::<Body>(br#"{"capacity": 3,"#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn bytes_after_the_document_are_refused() {
        let err = parse_json::<Body>(br#"{"capacity": 3, "title": "x"}xyz"#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(parse_json::<Body>(b"{\"capacity\": 3, \"title\": \"x\"} \n").is_ok());
    }

    #[test]
    fn integral_floats_are_integers_and_fractions_are_not() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Body {
            id: i64,
            items: Vec<i64>,
        }
        let body = parse_json::<Body>(br#"{"id": 7.0, "items": [1, 2.0, 3e2]}"#).unwrap();
        assert_eq!(
            body,
            Body {
                id: 7,
                items: vec![1, 2, 300]
            }
        );
        let err = parse_json::<Body>(br#"{"id": 7.5, "items": []}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.field.as_deref(), Some("id"));
    }

    #[test]
    fn a_body_is_an_object_not_an_array_of_its_fields() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)] // only deserialised
        struct Body {
            token: Option<String>,
        }
        for bad in ["[null]", "[\"x\"]", "\"x\"", "1"] {
            let err = parse_json::<Body>(bad.as_bytes()).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(err.field.as_deref(), Some("body"), "{bad}");
        }
        assert!(parse_json::<Body>(b" {\"token\": null}").is_ok());
        assert!(parse_json::<Option<Body>>(b"null").unwrap().is_none());
    }

    #[test]
    fn control_characters_are_refused_naming_the_field() {
        let err = parse_json::<Body>(br#"{"capacity": 3, "title": "a\u0000b"}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.field.as_deref(), Some("title"));
        let err =
            parse_json::<serde_json::Value>(br#"{"members": [{"x": 1}, {"note": "\u001b[31m"}]}"#)
                .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("members[1].note"));
        let err = parse_json::<Body>("{\"capacity\": 3, \"title\": \"a\u{85}b\"}".as_bytes())
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("title"));
        // Line breaks and tabs are text.
        assert!(parse_json::<Body>(br#"{"capacity": 3, "title": "a\n\tb"}"#).is_ok());
    }
}
