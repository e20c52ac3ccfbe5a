//! Layers that every request passes through before routing: a safe request id, the body read
//! whole within a size and a time limit, security headers on every response, and a problem+json
//! 500 instead of a dropped connection if a handler ever panics.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::ApiError;
use crate::state::AppState;

/// The largest request body any route takes (every body is a small JSON document).
pub const MAX_BODY_BYTES: usize = 1 << 20;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-sent request id kept.
const MAX_REQUEST_ID: usize = 64;

/// Whether a client-sent `x-request-id` may go into logs as it is: short, and only characters
/// that cannot forge a log field or line (no spaces, quotes, braces, `=`).
pub fn is_safe_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The request's id: the client's own when it is safe to log, else a new UUID; set on the request
/// (for the trace span and handlers) and echoed on the response.
fn request_id(req: &mut Request) -> HeaderValue {
    let headers = req.headers_mut();
    let mut given = headers.get_all(&REQUEST_ID).iter();
    let keep = match (given.next(), given.next()) {
        (Some(id), None) if is_safe_request_id(id.as_bytes()) => Some(id.clone()),
        _ => None,
    };
    let id = keep.unwrap_or_else(|| {
        let mut buf = uuid::Uuid::encode_buffer();
        let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
        HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
    });
    headers.insert(REQUEST_ID, id.clone());
    id
}

/// The outermost layer: the request id (see [`request_id`]) and the security headers of every
/// response. One middleware instead of four layers: each costs a boxed future per request.
pub async fn edge(mut req: Request, next: Next) -> Response {
    let id = request_id(&mut req);
    let docs = req.uri().path().starts_with("/docs");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID, id);
    security_headers(headers, docs);
    response
}

/// Reads the whole body within [`MAX_BODY_BYTES`] and the configured body timeout, so a handler
/// never waits on a slow client and every refusal is problem+json: 413 for too large (checked
/// against `Content-Length` before reading), 408 for too slow.
pub async fn read_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Most requests (GETs) have no body at all: nothing to read or wait for.
    if axum::body::HttpBody::is_end_stream(req.body()) {
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let (parts, body) = req.into_parts();
    let read = Limited::new(body, MAX_BODY_BYTES).collect();
    let bytes: Bytes = match tokio::time::timeout(state.settings.http.body_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Ok(Err(err)) => {
            return ApiError::malformed(None, format!("could not read the request body: {err}"))
                .into_response()
        }
        Err(_) => return too_slow(state.settings.http.body_timeout),
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn too_large() -> Response {
    let mut response = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body must be at most {MAX_BODY_BYTES} bytes"),
    )
    .into_response();
    // The rest of the body is not read: the connection cannot carry another request.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn too_slow(limit: Duration) -> Response {
    tracing::warn!(
        limit_secs = limit.as_secs(),
        "request body not received in time"
    );
    let mut response = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "the request body did not arrive within {} s",
            limit.as_secs()
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The API's content security policy: JSON is never a document, so nothing may load or frame it.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
/// The API docs page (Swagger UI, served from this binary) loads its own scripts and styles and
/// fetches `/openapi.json`; nothing else.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                        img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/// Security headers on every response. Handlers that return credentials set
/// `Cache-Control: no-store` themselves (see [`no_store`]).
fn security_headers(headers: &mut axum::http::HeaderMap, docs: bool) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(if docs {
            DOCS_CSP
        } else {
            API_CSP
        }));
}

/// Security headers alone, for the metrics listener.
pub async fn security_headers_only(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    security_headers(response.headers_mut(), false);
    response
}

/// `Cache-Control: no-store`: for responses that carry tokens or passes. The idempotency layer
/// never stores such a response either.
pub fn no_store() -> [(HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// Whether a response must not be kept anywhere (it carries credentials).
pub fn is_no_store(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-store"))
}

/// A handler that panicked answers an opaque problem+json 500 (the panic is logged) instead of
/// dropping the connection.
#[derive(Clone, Copy)]
pub struct PanicToProblem;

impl tower_http::catch_panic::ResponseForPanic for PanicToProblem {
    type ResponseBody = Body;

    fn response_for_panic(
        &mut self,
        err: Box<dyn std::any::Any + Send + 'static>,
    ) -> axum::http::Response<Body> {
        let message = err
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| err.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned());
        ApiError::internal(std::io::Error::other(format!(
            "request handler panicked: {message}"
        )))
        .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        assert!(is_safe_request_id(b"0b5f1e6e-2c1d-4d43-9b7e-3a4c2f5d6e7f"));
        assert!(is_safe_request_id(b"req_42.a:b"));
        assert!(!is_safe_request_id(b""));
        assert!(!is_safe_request_id(b"x user.id=1 logged in"));
        assert!(!is_safe_request_id(b"{\"a\":1}"));
        assert!(!is_safe_request_id("가".as_bytes()));
        assert!(!is_safe_request_id(&[b'a'; 65]));
    }

    #[test]
    fn no_store_is_found_among_other_directives() {
        let mut headers = axum::http::HeaderMap::new();
        assert!(!is_no_store(&headers));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, No-Store"),
        );
        assert!(is_no_store(&headers));
    }
}
