//! Web Push subscriptions: `POST/GET/DELETE /me/push-subscriptions` take the browser's
//! `PushSubscription` JSON; `GET /push/vapid-public-key` gives the key browsers subscribe with.
//! Pushes themselves are sent by `push` jobs (`jobs::push`), one per notification and
//! subscription, scheduled in the transaction that writes the notification.

use axum::extract::State;
use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use store::push::{self, NewSubscription, Subscription};
use store::rules::Invalid;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Json;
use crate::state::AppState;
use crate::time::Timestamp;

/// The longest endpoint accepted (push services' URLs are a few hundred characters).
const ENDPOINT_MAX: usize = 2048;

/// The browser's keys (RFC 8291).
#[derive(Deserialize, Serialize, ToSchema)]
pub struct SubscriptionKeys {
    /// The browser's P-256 public key: 65 bytes (uncompressed point), base64url.
    #[schema(pattern = "^B[A-Za-z0-9_-]{86}=?$")]
    pub p256dh: String,
    /// The browser's authentication secret: 16 bytes, base64url.
    #[schema(pattern = "^[A-Za-z0-9_-]{22}(==)?$")]
    pub auth: String,
}

/// A browser's `PushSubscription` as `JSON.stringify(subscription)` gives it (`expirationTime`
/// and other fields are ignored).
#[derive(Deserialize, ToSchema)]
pub struct PushSubscriptionRequest {
    /// The push service's URL for this browser: https.
    #[schema(
        max_length = 2048,
        pattern = "^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[\\x21-\\x7E]*)?$"
    )]
    pub endpoint: String,
    pub keys: SubscriptionKeys,
}

/// Which subscription to remove.
#[derive(Deserialize, ToSchema)]
pub struct UnsubscribeRequest {
    #[schema(max_length = 2048)]
    pub endpoint: String,
}

/// A push subscription as stored.
#[derive(Serialize, ToSchema)]
pub struct PushSubscriptionView {
    pub id: i64,
    pub endpoint: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<Subscription> for PushSubscriptionView {
    fn from(s: Subscription) -> Self {
        Self {
            id: s.id,
            endpoint: s.endpoint,
            created_at: Timestamp(s.created_at),
            updated_at: Timestamp(s.updated_at),
        }
    }
}

/// My push subscriptions.
#[derive(Serialize, ToSchema)]
pub struct PushSubscriptionList {
    pub items: Vec<PushSubscriptionView>,
}

/// The key browsers pass as `applicationServerKey` to `pushManager.subscribe`.
#[derive(Serialize, ToSchema)]
pub struct VapidPublicKey {
    /// base64url, 65 bytes (uncompressed P-256 point).
    pub public_key: String,
}

impl PushSubscriptionRequest {
    fn parse(self, allow_http: bool) -> Result<NewSubscription, Invalid> {
        let endpoint = endpoint(&self.endpoint, allow_http)?;
        let p256dh = decoded(&self.keys.p256dh, "keys.p256dh")?;
        if p256dh.len() != 65 || p256dh[0] != 4 || !on_curve(&p256dh) {
            return Err(Invalid::new(
                "keys.p256dh",
                "an uncompressed P-256 public key (65 bytes), base64url",
            ));
        }
        if decoded(&self.keys.auth, "keys.auth")?.len() != 16 {
            return Err(Invalid::new("keys.auth", "16 bytes, base64url"));
        }
        Ok(NewSubscription {
            endpoint,
            p256dh: URL_SAFE_NO_PAD.encode(&p256dh),
            auth: self.keys.auth.trim_end_matches('=').to_owned(),
        })
    }
}

fn decoded(text: &str, field: &str) -> Result<Vec<u8>, Invalid> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| Invalid::new(field, "not base64url"))
}

/// Whether `point` is a P-256 public key a push can be encrypted for (an ECDH with it succeeds).
fn on_curve(point: &[u8]) -> bool {
    use ring::agreement::{agree_ephemeral, EphemeralPrivateKey, UnparsedPublicKey, ECDH_P256};
    let rng = ring::rand::SystemRandom::new();
    EphemeralPrivateKey::generate(&ECDH_P256, &rng).is_ok_and(|k| {
        agree_ephemeral(k, &UnparsedPublicKey::new(&ECDH_P256, point), |_| ()).is_ok()
    })
}

/// An https URL with a host name (or http, when allowed for local testing). IP literals and
/// `localhost` are refused unless http is allowed: push services have DNS names, and the server
/// should not be made to post to addresses of its own network.
fn endpoint(text: &str, allow_http: bool) -> Result<String, Invalid> {
    let bad = |why: &str| Invalid::new("endpoint", why);
    if text.chars().count() > ENDPOINT_MAX {
        return Err(bad("at most 2048 characters"));
    }
    let url = reqwest::Url::parse(text).map_err(|_| bad("not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Err(bad("a push service URL starts with https://")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("a push service URL carries no credentials"));
    }
    let named = url
        .domain()
        .is_some_and(|d| d != "localhost" && d.contains('.'));
    let allowed = named || (allow_http && url.host_str().is_some());
    if !allowed {
        return Err(bad("a push service URL names its host"));
    }
    Ok(url.to_string())
}

/// Subscribe this browser to my notifications. The same endpoint again updates it (a browser
/// that subscribes again is never pushed to twice).
#[utoipa::path(post, path = "/me/push-subscriptions", tag = "notifications", security(("bearer" = [])),
    request_body = PushSubscriptionRequest,
    responses(
        (status = 201, description = "Subscribed", body = PushSubscriptionView),
        (status = 200, description = "Already subscribed: keys updated", body = PushSubscriptionView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn create_push_subscription(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<PushSubscriptionRequest>,
) -> ApiResult<(StatusCode, axum::Json<PushSubscriptionView>)> {
    let sub = body.parse(state.settings.push.allow_http)?;
    let (row, created) = push::subscribe(&state.db, user.id, &sub, state.now()).await?;
    tracing::info!(
        user.id = user.id,
        subscription.id = row.id,
        created,
        "push subscription stored"
    );
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(row.into())))
}

/// My push subscriptions, oldest first.
#[utoipa::path(get, path = "/me/push-subscriptions", tag = "notifications", security(("bearer" = [])),
    responses(
        (status = 200, description = "My subscriptions", body = PushSubscriptionList),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list_my_push_subscriptions(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<axum::Json<PushSubscriptionList>> {
    let rows = push::list(&state.db, user.id).await?;
    Ok(axum::Json(PushSubscriptionList {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Unsubscribe a browser (by its endpoint).
#[utoipa::path(delete, path = "/me/push-subscriptions", tag = "notifications", security(("bearer" = [])),
    request_body = UnsubscribeRequest,
    responses(
        (status = 204, description = "Unsubscribed"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no subscription of mine has this endpoint", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn delete_push_subscription(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<UnsubscribeRequest>,
) -> ApiResult<StatusCode> {
    if body.endpoint.chars().count() > ENDPOINT_MAX {
        return Err(Invalid::new("endpoint", "at most 2048 characters").into());
    }
    // Stored endpoints are normalised by URL parsing; look for the same form.
    let endpoint = reqwest::Url::parse(&body.endpoint)
        .map(|u| u.to_string())
        .unwrap_or(body.endpoint);
    if push::unsubscribe(&state.db, user.id, &endpoint).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("push subscription"))
    }
}

/// The VAPID public key (RFC 8292) to subscribe with: `applicationServerKey`.
#[utoipa::path(get, path = "/push/vapid-public-key", tag = "notifications",
    responses(
        (status = 200, description = "The key", body = VapidPublicKey),
        (status = 503, description = "`push_unavailable`: this instance sends no pushes", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn get_vapid_public_key(
    State(state): State<AppState>,
) -> ApiResult<axum::Json<VapidPublicKey>> {
    let pusher = state.push.get().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "push_unavailable",
            "Web Push is not configured on this instance",
        )
    })?;
    Ok(axum::Json(VapidPublicKey {
        public_key: pusher.public_key(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_https_urls_with_a_host_name() {
        assert!(endpoint("https://fcm.googleapis.com/fcm/send/abc:def", false).is_ok());
        for bad in [
            "http://push.example.com/x",
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://user:pw@push.example.com/x",
            "ftp://push.example.com/x",
            "not a url",
        ] {
            assert_eq!(endpoint(bad, false).unwrap_err().field, "endpoint", "{bad}");
        }
        assert!(endpoint("http://127.0.0.1:9000/push/1", true).is_ok());
    }

    #[test]
    fn keys_must_be_a_point_and_a_secret() {
        let good = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        let req = |p256dh: &str, auth: &str| PushSubscriptionRequest {
            endpoint: "https://push.example.com/1".into(),
            keys: SubscriptionKeys {
                p256dh: p256dh.into(),
                auth: auth.into(),
            },
        };
        assert!(req(good, "BTBZMqHH6r4Tts7J_aSIgg").parse(false).is_ok());
        let mut off = good.to_owned();
        off.replace_range(80..81, "A");
        assert_eq!(
            req(&off, "BTBZMqHH6r4Tts7J_aSIgg")
                .parse(false)
                .unwrap_err()
                .field,
            "keys.p256dh"
        );
        assert_eq!(
            req(good, "BTBZMqHH6r4Tts7J")
                .parse(false)
                .unwrap_err()
                .field,
            "keys.auth"
        );
    }
}
