//! Stream tickets: browsers cannot set `Authorization` on an `EventSource` or a WebSocket, so a
//! signed-in client trades its bearer token for a ticket and opens the stream with `?ticket=`.
//!
//! A ticket is 32 random bytes, kept (as its SHA-256) in live state for 60 seconds, bound to the
//! user, and taken in one step when used (`Cache::take`): it works once, on any instance. The
//! query string never reaches a log line (the request span records the path only).

use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::{random_token, sha256_hex, AuthUser};
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

/// How long a ticket may wait to be used.
pub const TICKET_TTL: Duration = Duration::from_secs(60);

fn key(ticket: &str) -> String {
    format!("stream-ticket:{}", sha256_hex(ticket))
}

/// A single-use ticket for opening one event stream or WebSocket.
#[derive(Serialize, ToSchema)]
pub struct StreamTicket {
    /// Pass as `?ticket=` to an SSE or WebSocket endpoint, within `expires_in` seconds, once.
    pub ticket: String,
    pub expires_in: u64,
}

/// Get a short-lived, single-use ticket for opening a stream without an `Authorization` header.
#[utoipa::path(post, path = "/auth/stream-ticket", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 201, description = "A ticket, valid for 60 seconds and one use", body = StreamTicket),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_stream_ticket(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<impl IntoResponse> {
    let ticket = random_token();
    state
        .live
        .cache
        .set(&key(&ticket), user.id.to_string().as_bytes(), TICKET_TTL)
        .await?;
    Ok((
        StatusCode::CREATED,
        crate::limits::no_store(),
        axum::Json(StreamTicket {
            ticket,
            expires_in: TICKET_TTL.as_secs(),
        }),
    ))
}

/// The caller of a stream endpoint: from `?ticket=` (used up here) or from the bearer token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamUser {
    pub id: i64,
}

fn ticket_of(parts: &Parts) -> Option<String> {
    let query = parts.uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.into_owned())
}

impl FromRequestParts<AppState> for StreamUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(ticket) = ticket_of(parts) else {
            return AuthUser::from_headers(&parts.headers, state).map(|u| StreamUser { id: u.id });
        };
        let refused = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_ticket",
                "the stream ticket is unknown, expired or already used; get a new one",
            )
            .with_field("ticket")
        };
        let taken = state.live.cache.take(&key(&ticket)).await?;
        let id = taken
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<i64>().ok())
            .ok_or_else(refused)?;
        Ok(StreamUser { id })
    }
}
