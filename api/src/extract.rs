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
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim();
                mime == "application/json" || mime.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::malformed(None, e.body_text()))?;
        parse_json(&bytes).map(Json)
    }
}

/// Deserialises JSON, reporting the path of the first bad field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => Ok(value),
        Err(err) => {
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
            Err(error)
        }
    }
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
}
