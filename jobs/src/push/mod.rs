//! Web Push: each notification, encrypted for the browser ([`ece`]), sent to its subscription's
//! push service with a VAPID token ([`vapid`]), by a `push` job per notification and
//! subscription (retried with backoff by the worker).

pub mod ece;
pub mod vapid;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use store::notifications::Notification;
use store::push::Subscription;

pub use vapid::VapidKey;

/// How long a push service keeps a push for an offline browser (RFC 8030 `TTL`): a day, after
/// which a reminder or a new party is stale (the inbox still has it).
const TTL_SECS: u64 = 24 * 3600;
/// A push service that does not answer in this long is tried again later.
const TIMEOUT: Duration = Duration::from_secs(15);
/// The body is cut to fit one encrypted record with room to spare.
const MAX_BODY_CHARS: usize = 500;

/// How a push went.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// The push service took it.
    Accepted,
    /// 404 or 410: the subscription expired or the user revoked it; remove it.
    Gone,
    /// A 4xx that another try would get too (bad token, payload refused): given up, logged.
    Refused(u16),
}

/// Why a push should be tried again.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("push service unreachable: {0}")]
    Http(#[from] reqwest::Error),
    #[error("push service answered {0}")]
    Status(u16),
    #[error("the subscription's endpoint is not a URL")]
    BadEndpoint,
    #[error("the subscription's keys are not base64url")]
    BadKeys,
    #[error(transparent)]
    Encrypt(#[from] ece::EceError),
    #[error(transparent)]
    Vapid(#[from] vapid::VapidError),
}

/// What a browser's service worker receives (JSON, encrypted).
#[derive(Serialize)]
struct Payload<'a> {
    seq: i64,
    kind: &'a str,
    party_id: Option<i64>,
    title: &'a str,
    body: String,
    /// RFC 3339 in Korean time, as the API writes times.
    created_at: String,
}

/// Sends pushes: the HTTP client, the VAPID key and the contact the tokens name.
pub struct Pusher {
    client: reqwest::Client,
    key: std::sync::Arc<VapidKey>,
    subject: Option<String>,
}

impl Pusher {
    pub fn new(key: std::sync::Arc<VapidKey>, subject: Option<String>) -> Result<Self, PushError> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            // A push service answers; it never redirects a push elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            key,
            subject,
        })
    }

    /// The VAPID public key, base64url (browsers subscribe with it).
    pub fn public_key(&self) -> String {
        self.key.public_key()
    }

    /// Pushes `n` to `sub`.
    pub async fn send(&self, sub: &Subscription, n: &Notification) -> Result<Sent, PushError> {
        let url = reqwest::Url::parse(&sub.endpoint).map_err(|_| PushError::BadEndpoint)?;
        let ua_public = URL_SAFE_NO_PAD
            .decode(sub.p256dh.trim_end_matches('='))
            .map_err(|_| PushError::BadKeys)?;
        let auth = URL_SAFE_NO_PAD
            .decode(sub.auth.trim_end_matches('='))
            .map_err(|_| PushError::BadKeys)?;
        let body = ece::encrypt(&ua_public, &auth, &payload(n))?;
        // The token's expiry is judged by the push service's clock: the real one.
        let now_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let authorization = self
            .key
            .authorization(&url, self.subject.as_deref(), now_secs)?;
        let res = self
            .client
            .post(url)
            .header("TTL", TTL_SECS.to_string())
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("Authorization", authorization)
            .body(body)
            .send()
            .await?;
        let status = res.status().as_u16();
        match status {
            200..=299 => Ok(Sent::Accepted),
            404 | 410 => Ok(Sent::Gone),
            // Too many requests, or the service failing: later.
            408 | 425 | 429 | 500..=599 => Err(PushError::Status(status)),
            _ => Ok(Sent::Refused(status)),
        }
    }
}

/// The JSON pushed for `n`, its body cut to fit one record.
fn payload(n: &Notification) -> Vec<u8> {
    let body: String = n.body.chars().take(MAX_BODY_CHARS).collect();
    let created_at = chrono::DateTime::from_timestamp_millis(n.created_at)
        .and_then(|t| {
            chrono::FixedOffset::east_opt(9 * 3600).map(|kst| {
                t.with_timezone(&kst)
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
            })
        })
        .unwrap_or_else(|| n.created_at.to_string());
    serde_json::to_vec(&Payload {
        seq: n.seq,
        kind: &n.kind,
        party_id: n.party_id,
        title: &n.title,
        body,
        created_at,
    })
    .unwrap_or_default()
}
