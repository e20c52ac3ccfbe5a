//! `Idempotency-Key` for state-changing POSTs, after Stripe: the key is scoped to the caller; the
//! first response (errors included) is stored and replayed for retries with the same key and
//! body; the same key with a different body is refused; keys live 24 hours. A response that is our
//! own failure (5xx) is not stored, so the retry runs again; nor is one that carries credentials
//! (`Cache-Control: no-store`: login, refresh, admission passes), so the retry runs again too.

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use store::idempotency::{self, Claim, StoredResponse};

use crate::auth::bearer;
use crate::error::ApiError;
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 255;
const MAX_BODY: usize = crate::limits::MAX_BODY_BYTES;
/// Headers that make a request a different one, besides method, path and body.
const FINGERPRINT_HEADERS: &[&str] = &[crate::queue::PASS_HEADER];
/// An unfinished claim older than this belonged to a request that died; a retry takes it over.
const STALE_MS: i64 = 60_000;
/// How long a retry waits for a concurrent request with the same key to finish.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);

/// Middleware: applies to POSTs that carry the header and a valid access token.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw_key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match raw_key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= MAX_KEY_LEN => k.to_owned(),
        _ => {
            return ApiError::invalid(
                "Idempotency-Key",
                format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
            )
            .into_response()
        }
    };
    // Keys are scoped to the user; an unauthenticated request is left for the handler to refuse.
    let Some(user_id) = bearer(req.headers()).and_then(|t| state.keys.verify(t)) else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body too large",
            )
            .into_response()
        }
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update([0]);
    hasher.update(parts.uri.path());
    hasher.update([0]);
    hasher.update(&bytes);
    // A booking retried with an admission pass is not the request that lacked one.
    for name in FINGERPRINT_HEADERS {
        hasher.update([0]);
        if let Some(value) = parts.headers.get(*name) {
            hasher.update(value.as_bytes());
        }
    }
    let request_hash = hex::encode(hasher.finalize());

    let started = tokio::time::Instant::now();
    loop {
        let claim = idempotency::claim(
            &state.db,
            user_id,
            &key,
            &request_hash,
            state.now(),
            STALE_MS,
        )
        .await;
        match claim {
            Err(err) => return ApiError::from(err).into_response(),
            Ok(Claim::Proceed) => break,
            Ok(Claim::Replay(stored)) => return replay(stored),
            Ok(Claim::Mismatch) => {
                return ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request",
                )
                .with_field("Idempotency-Key")
                .into_response()
            }
            Ok(Claim::InProgress) if started.elapsed() < WAIT_FOR_FIRST => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(Claim::InProgress) => {
                return ApiError::conflict(
                    "idempotency_in_progress",
                    "a request with this Idempotency-Key is still running; retry later",
                )
                .into_response()
            }
        }
    }

    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (res_parts, res_body) = response.into_parts();
    let res_bytes = match to_bytes(res_body, usize::MAX).await {
        Ok(b) => b,
        Err(err) => {
            let _ = idempotency::release(&state.db, user_id, &key).await;
            return ApiError::internal(std::io::Error::other(err.to_string())).into_response();
        }
    };
    // A response with credentials (tokens, passes) is never kept: a replay would hand the same
    // live tokens out again, and they would sit in the table in clear for a day.
    let outcome =
        if res_parts.status.is_server_error() || crate::limits::is_no_store(&res_parts.headers) {
            idempotency::release(&state.db, user_id, &key).await
        } else {
            let stored = StoredResponse {
                status_code: i64::from(res_parts.status.as_u16()),
                content_type: res_parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                response_body: Some(String::from_utf8_lossy(&res_bytes).into_owned()),
            };
            idempotency::complete(&state.db, user_id, &key, &stored).await
        };
    if let Err(err) = outcome {
        tracing::error!(error = %err, "could not record the idempotent response");
    }
    Response::from_parts(res_parts, Body::from(res_bytes))
}

fn replay(stored: StoredResponse) -> Response {
    let status = u16::try_from(stored.status_code)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, stored.response_body.unwrap_or_default()).into_response();
    if let Some(ct) = stored
        .content_type
        .and_then(|ct| HeaderValue::from_str(&ct).ok())
    {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
