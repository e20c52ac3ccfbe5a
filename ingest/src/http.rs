//! The HTTP side shared by every source: one reqwest client, retries with backoff and jitter,
//! call counting for quota reports, and parsing off the async threads when replies are large.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::error::{FetchError, FetchErrorKind};
use crate::key::ServiceKey;

/// Replies up to this size are parsed on the async thread; larger ones on the blocking pool.
const BODY_PARSE_INLINE_MAX: usize = 64 * 1024;

/// How failed calls are retried: exponential backoff from `base_delay`, capped at `max_delay`,
/// with "equal jitter" (a random delay between half and all of the step) so parallel retries spread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts at most).
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The delay before retry number `retry` (1-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let step = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_delay);
        let half = step / 2;
        if half.is_zero() {
            return step;
        }
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

/// Counters for one run, shared by every call it makes. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CallStats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    retries: AtomicU64,
    bytes: AtomicU64,
}

/// A snapshot of [`CallStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// HTTP requests sent, retries included: what the quota counts.
    pub calls: u64,
    /// Of those, how many were retries.
    pub retries: u64,
    /// Reply bytes received.
    pub bytes: u64,
}

impl CallStats {
    pub fn snapshot(&self) -> CallCounts {
        CallCounts {
            calls: self.inner.calls.load(Ordering::Relaxed),
            retries: self.inner.retries.load(Ordering::Relaxed),
            bytes: self.inner.bytes.load(Ordering::Relaxed),
        }
    }
}

/// Settings shared by the paged and the consumer-price clients.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub retry: RetryPolicy,
    /// Whole-request timeout (connect, send, read the body).
    pub timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Sends GET requests with retries and counts them.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    client: reqwest::Client,
    retry: RetryPolicy,
    pub(crate) key: ServiceKey,
    pub(crate) stats: CallStats,
}

impl Caller {
    pub(crate) fn new(
        settings: &HttpSettings,
        key: ServiceKey,
        stats: CallStats,
    ) -> Result<Self, FetchErrorKind> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("gonggu-ingest/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchErrorKind::Config(e.without_url().to_string()))?;
        Ok(Self {
            client,
            retry: settings.retry.clone(),
            key,
            stats,
        })
    }

    /// GETs `url` until `interpret` accepts the reply, a permanent error occurs or retries run out.
    ///
    /// `interpret` gets the HTTP status and the body; it runs on the blocking pool for large bodies.
    pub(crate) async fn get<T, F>(
        &self,
        operation: &str,
        page: Option<u32>,
        url: &str,
        interpret: F,
    ) -> Result<T, FetchError>
    where
        T: Send + 'static,
        F: Fn(u16, Vec<u8>) -> Result<T, FetchErrorKind> + Clone + Send + 'static,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self.attempt(url, interpret.clone()).await;
            match result {
                Ok(value) => return Ok(value),
                Err(kind) if kind.is_transient() && attempts <= self.retry.max_retries => {
                    let delay = self.retry.delay(attempts);
                    tracing::warn!(operation, page, attempt = attempts, error = %kind, delay_ms = delay.as_millis() as u64, "retrying");
                    self.stats.inner.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(delay).await;
                }
                Err(kind) => {
                    return Err(FetchError {
                        operation: operation.to_owned(),
                        page,
                        attempts,
                        kind,
                    })
                }
            }
        }
    }

    async fn attempt<T, F>(&self, url: &str, interpret: F) -> Result<T, FetchErrorKind>
    where
        T: Send + 'static,
        F: Fn(u16, Vec<u8>) -> Result<T, FetchErrorKind> + Send + 'static,
    {
        tracing::debug!(url = %self.key.redact(url), "GET");
        self.stats.inner.calls.fetch_add(1, Ordering::Relaxed);
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| FetchErrorKind::from_request(e, false))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| FetchErrorKind::from_request(e, true))?;
        self.stats
            .inner
            .bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        let body = body.to_vec();
        if body.len() <= BODY_PARSE_INLINE_MAX {
            return interpret(status, body);
        }
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| interpret(status, body)))
            .await
            .map_err(FetchErrorKind::Task)?
    }
}

/// Appends `name=value` pairs to a URL, percent-encoding each value exactly once.
pub(crate) fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = base.to_owned();
    for (name, value) in pairs {
        if !(url.ends_with('?') || url.ends_with('&')) {
            url.push(if url.contains('?') { '&' } else { '?' });
        }
        url.push_str(name);
        url.push('=');
        url.push_str(&crate::key::encode_query_value(value));
    }
    url
}

/// Appends the service key, already encoded once, as the first query pair.
pub(crate) fn with_key(base: &str, key_param: &str, key: &ServiceKey) -> String {
    if key.is_empty() {
        return base.to_owned();
    }
    let sep = if base.contains('?') { "&" } else { "?" };
    format!("{base}{sep}{key_param}={}", key.encoded())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_within_the_step() {
        let policy = RetryPolicy {
            max_retries: 9,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for _ in 0..50 {
            let first = policy.delay(1);
            assert!(
                first >= Duration::from_millis(50) && first <= Duration::from_millis(100),
                "{first:?}"
            );
            let third = policy.delay(3);
            assert!(
                third >= Duration::from_millis(200) && third <= Duration::from_millis(400),
                "{third:?}"
            );
            assert!(policy.delay(30) <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn query_values_are_encoded_once_and_joined_properly() {
        let key = ServiceKey::new("a%2Bb").expect("key");
        let url = with_key("http://h/op", "serviceKey", &key);
        assert_eq!(url, "http://h/op?serviceKey=a%2Bb");
        let url = with_query(&url, &[("pageNo", "2"), ("q", "라 면")]);
        assert_eq!(
            url,
            "http://h/op?serviceKey=a%2Bb&pageNo=2&q=%EB%9D%BC%20%EB%A9%B4"
        );
        assert_eq!(
            with_query("http://h/op?x=1", &[("y", "2")]),
            "http://h/op?x=1&y=2"
        );
    }
}
