//! `AuthUser`: the caller, from a `Bearer` access token. Handlers that take it are authenticated.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthUser {
    pub id: i64,
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &axum::http::HeaderMap) -> Option<&str> {
    let value = parts.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl AuthUser {
    /// The caller named by the request's bearer token, or a 401 saying what is wrong with it.
    pub fn from_headers(
        headers: &axum::http::HeaderMap,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let token = bearer(headers).ok_or_else(|| {
            ApiError::unauthorized("missing bearer token in the Authorization header")
        })?;
        let id = state
            .keys
            .verify(token)
            .ok_or_else(|| ApiError::unauthorized("invalid or expired access token"))?;
        Ok(AuthUser { id })
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        AuthUser::from_headers(&parts.headers, state)
    }
}
