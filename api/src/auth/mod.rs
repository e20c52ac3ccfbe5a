//! Accounts and sessions: sign up, log in, refresh with rotation, log out, and who am I.

mod extractor;
pub mod jwt;
pub mod password;
pub mod tickets;
mod types;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::tokens::{self, Rotation};
use store::users::{self, SignupError, User};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use extractor::{bearer, AuthUser};
pub use tickets::StreamUser;
pub use types::{Email, Nickname, Password};

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Json;
use crate::limits;
use crate::state::AppState;
use crate::time::Timestamp;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(get_me))
        .routes(routes!(tickets::create_stream_ticket))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[schema(example = "shopper@example.com", max_length = 254)]
    email: String,
    /// 8 to 128 characters, not easy to guess (a common password, word or pattern, or the email
    /// or nickname, is refused as `weak_password`).
    #[schema(example = "correct horse battery", min_length = 8, max_length = 128)]
    password: String,
    /// 1 to 30 characters, none invisible.
    #[schema(example = "공구왕", min_length = 1, max_length = 30)]
    nickname: String,
}

/// A user account as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct UserView {
    id: i64,
    email: String,
    nickname: String,
    penalty_count: i64,
    /// Set while the user is banned (after repeated no-shows).
    banned_until: Option<Timestamp>,
    created_at: Timestamp,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            nickname: u.nickname,
            penalty_count: u.penalty_count,
            banned_until: u.banned_until.map(Timestamp),
            created_at: Timestamp(u.created_at),
        }
    }
}

/// Create an account.
#[utoipa::path(post, path = "/auth/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, description = "Account created", body = UserView),
        (status = 409, description = "`email_taken`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` naming `email`, `password` or `nickname`; `weak_password`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_signups` from one client address", body = Problem, content_type = "application/problem+json"),
    ))]
async fn signup(
    State(state): State<AppState>,
    peer: ClientPeer,
    headers: HeaderMap,
    Json(req): Json<SignupRequest>,
) -> ApiResult<impl IntoResponse> {
    let email = Email::parse(&req.email)?;
    let nickname = Nickname::parse(&req.nickname)?;
    let password = Password::parse_new(req.password, &email, &nickname)?;
    if let Some(addr) = client_addr(&state, &headers, peer.0) {
        let s = &state.settings;
        limit(
            &state,
            &format!("signup:addr:{addr}"),
            s.signup_limit_per_addr,
            s.signup_window,
            "too_many_signups",
            "too many sign-ups from this address; try again later",
        )
        .await?;
    }
    let hash = password::hash(password.into_inner()).await?;
    let user = users::insert_user(
        &state.db,
        email.as_str(),
        &hash,
        nickname.as_str(),
        state.now(),
    )
    .await
    .map_err(|e| match e {
        SignupError::EmailTaken => {
            ApiError::conflict("email_taken", "an account with this email already exists")
                .with_field("email")
        }
        SignupError::Store(e) => e.into(),
    })?;
    tracing::info!(user.id = user.id, "account created");
    Ok((StatusCode::CREATED, axum::Json(UserView::from(user))))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(max_length = 254)]
    email: String,
    #[schema(min_length = 8, max_length = 128)]
    password: String,
}

/// An access token and the refresh token that renews it.
#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    access_token: String,
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
    refresh_token: String,
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn issue_pair(
    state: &AppState,
    user_id: i64,
    family: Option<String>,
) -> ApiResult<(TokenPair, String)> {
    let now = state.now();
    let access_token = state.keys.issue(user_id, now).map_err(ApiError::internal)?;
    let refresh_token = random_token();
    let pair = TokenPair {
        access_token,
        token_type: "Bearer",
        expires_in: state.keys.access_ttl.as_secs(),
        refresh_token,
    };
    Ok((pair, family.unwrap_or_else(random_token)))
}

/// The socket peer of the request, when the server recorded it.
struct ClientPeer(Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientPeer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientPeer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// The client's address: the socket peer, or, behind trusted proxies, the X-Forwarded-For entry
/// the nearest of them appended (`trusted_proxy_hops` from the right). The entries to its left
/// are whatever the client wrote and are never used. With fewer entries than hops, the request did
/// not come through all the proxies, and the peer is used.
fn client_addr(state: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
    let peer = peer.map(|p| p.ip());
    if !state.settings.trust_forwarded_for {
        return peer;
    }
    forwarded_client(headers, state.settings.trusted_proxy_hops).or(peer)
}

/// The X-Forwarded-For entry `hops` places from the right (all the headers' lists in order).
fn forwarded_client(headers: &HeaderMap, hops: usize) -> Option<IpAddr> {
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let index = entries.len().checked_sub(hops.max(1))?;
    entries[index].parse().ok()
}

/// Counts one attempt against `key`; past `max` in `window`, a logged 429 with `code`.
async fn limit(
    state: &AppState,
    key: &str,
    max: u64,
    window: std::time::Duration,
    code: &'static str,
    detail: &str,
) -> ApiResult<()> {
    let decision = state.live.limiter.hit(key, max, window).await?;
    if decision.allowed {
        return Ok(());
    }
    // The key names the limit; emails in keys are already hashed.
    tracing::warn!(limit = %key, code, "rate limited");
    let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, detail);
    err.retry_after = Some(decision.retry_after.as_secs().max(1));
    Err(err)
}

/// Login limits: per email from this address (a stranger's failures lock out only the stranger),
/// per email from anywhere (a looser backstop against guessing spread over many addresses), and
/// per address (one client trying many accounts).
async fn check_login_rate(state: &AppState, email: &Email, addr: Option<IpAddr>) -> ApiResult<()> {
    let s = &state.settings;
    // Keys hold hashes, not emails: no personal data in Redis.
    let email_key = sha256_hex(email.as_str());
    let mut checks = vec![(
        format!("login:account:{email_key}"),
        s.login_limit_per_account,
    )];
    match addr {
        Some(addr) => {
            checks.push((
                format!("login:email:{email_key}:{addr}"),
                s.login_limit_per_email,
            ));
            checks.push((format!("login:addr:{addr}"), s.login_limit_per_addr));
        }
        None => checks.push((format!("login:email:{email_key}"), s.login_limit_per_email)),
    }
    for (key, max) in checks {
        limit(
            state,
            &key,
            max,
            s.login_window,
            "too_many_attempts",
            "too many login attempts; try again later",
        )
        .await?;
    }
    Ok(())
}

/// Log in with email and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 401, description = "`invalid_credentials`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_attempts` (per email from one address, per email, per client address)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn login(
    State(state): State<AppState>,
    peer: ClientPeer,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    let email = Email::parse(&req.email)?;
    let addr = client_addr(&state, &headers, peer.0);
    check_login_rate(&state, &email, addr).await?;
    let found = users::find_login(&state.db, email.as_str()).await?;
    let found_id = found.as_ref().map(|(u, _)| u.id);
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let ok = password::verify(req.password, hash).await?;
    let Some(user) = user.filter(|_| ok) else {
        // The password never; the account's id when it exists, else the email's hash.
        match found_id {
            Some(id) => tracing::warn!(user.id = id, client = ?addr, "login failed"),
            None => {
                tracing::warn!(email.sha256 = %sha256_hex(email.as_str()), client = ?addr, "login failed: no such account")
            }
        }
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong email or password",
        ));
    };
    let (pair, family) = issue_pair(&state, user.id, None).await?;
    let now = state.now();
    let expires = now + state.settings.refresh_ttl.as_millis() as i64;
    tokens::insert_refresh_token(
        &state.db,
        user.id,
        &family,
        &sha256_hex(&pair.refresh_token),
        now,
        expires,
    )
    .await?;
    tracing::info!(user.id = user.id, "logged in");
    Ok((limits::no_store(), axum::Json(pair)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Trade a refresh token for a new pair. Each refresh token works once; reusing one revokes its
/// whole family (every session descending from the same login).
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenPair),
        (status = 401, description = "`invalid_refresh_token` or `refresh_token_reused`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn refresh(
    State(state): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<impl IntoResponse> {
    let now = state.now();
    let expires = now + state.settings.refresh_ttl.as_millis() as i64;
    let next = random_token();
    let rotation = tokens::rotate_refresh_token(
        &state.db,
        &sha256_hex(&req.refresh_token),
        &sha256_hex(&next),
        now,
        expires,
    )
    .await?;
    match rotation {
        Rotation::Rotated { user_id } => {
            let access_token = state.keys.issue(user_id, now).map_err(ApiError::internal)?;
            let pair = TokenPair {
                access_token,
                token_type: "Bearer",
                expires_in: state.keys.access_ttl.as_secs(),
                refresh_token: next,
            };
            Ok((limits::no_store(), axum::Json(pair)))
        }
        Rotation::Invalid => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_refresh_token",
            "refresh token is unknown, expired or revoked",
        )),
        Rotation::Reused { user_id } => {
            tracing::warn!(
                user.id = user_id,
                "refresh token reused; its family is revoked"
            );
            crate::streams::end_streams(state.live.bus.as_ref(), user_id).await;
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "refresh_token_reused",
                "refresh token was already used; all sessions from that login are revoked",
            ))
        }
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// The session to end. Without it, every session of the user ends.
    refresh_token: Option<String>,
}

/// Log out one session (with its refresh token) or all of them.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body(content = Option<LogoutRequest>, description = "Optional: without it, every session of the user ends"),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such session of this user", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: a body that is not JSON", body = Problem, content_type = "application/problem+json"),
    ))]
async fn logout(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    crate::extract::require_json_if_present(&headers, &body)?;
    // No body, or `null`, ends every session.
    let req: LogoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutRequest::default()
    } else {
        crate::extract::parse_json::<Option<LogoutRequest>>(&body)?.unwrap_or_default()
    };
    let now = state.now();
    match req.refresh_token {
        Some(token) => {
            if !tokens::revoke_by_token(&state.db, user.id, &sha256_hex(&token), now).await? {
                return Err(ApiError::not_found("session").with_field("refresh_token"));
            }
        }
        None => tokens::revoke_all(&state.db, user.id, now).await?,
    }
    // The user's open event streams end with their session.
    crate::streams::end_streams(state.live.bus.as_ref(), user.id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The current user.
#[utoipa::path(get, path = "/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account", body = UserView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_me(State(state): State<AppState>, user: AuthUser) -> ApiResult<axum::Json<UserView>> {
    let found = users::get_user(&state.db, user.id).await?;
    let user = found
        .ok_or_else(|| ApiError::unauthorized("the account of this token no longer exists"))?;
    Ok(axum::Json(UserView::from(user)))
}

/// Whether `user_id` is an operator (`GONGGU_OPERATOR_EMAILS`).
pub async fn is_operator(state: &AppState, user_id: i64) -> ApiResult<bool> {
    let operators = &state.settings.operator_emails;
    if operators.is_empty() {
        return Ok(false);
    }
    Ok(users::get_user(&state.db, user_id)
        .await?
        .is_some_and(|u| operators.contains(&u.email)))
}

/// Lets only operators through: 403 `forbidden` for anybody else.
pub async fn require_operator(state: &AppState, user: &AuthUser) -> ApiResult<()> {
    if is_operator(state, user.id).await? {
        Ok(())
    } else {
        Err(ApiError::forbidden("forbidden", "operators only"))
    }
}

/// Lets a request through to an operational endpoint whose readers are configured.
pub async fn check_access(
    state: &AppState,
    headers: &HeaderMap,
    access: crate::config::Access,
) -> ApiResult<()> {
    use crate::config::Access;
    if access == Access::Public {
        return Ok(());
    }
    let user = AuthUser::from_headers(headers, state)?;
    if access == Access::Operators && !is_operator(state, user.id).await? {
        return Err(ApiError::forbidden(
            "operators_only",
            "only operators may read this",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_entry_the_trusted_proxy_appended_is_the_client() {
        let forged = headers(&["6.6.6.6, 203.0.113.7"]);
        assert_eq!(forwarded_client(&forged, 1), "203.0.113.7".parse().ok());
        // Two proxies: the outer one appended the client, the inner one the outer proxy.
        let two = headers(&["6.6.6.6, 203.0.113.7", "10.0.0.2"]);
        assert_eq!(forwarded_client(&two, 2), "203.0.113.7".parse().ok());
        // Fewer entries than proxies: not trusted at all.
        assert_eq!(forwarded_client(&headers(&["203.0.113.7"]), 2), None);
        assert_eq!(forwarded_client(&headers(&["not-an-ip"]), 1), None);
        assert_eq!(forwarded_client(&HeaderMap::new(), 1), None);
    }
}
