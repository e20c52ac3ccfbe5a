//! Fetch errors, classified as transient (retry) or permanent (stop), naming the page and the code.

use std::fmt;

use crate::envelope::{classify_code, CodeClass, ParseError};

/// A call that failed for good: which operation, which page, after how many attempts, and why.
#[derive(Debug)]
pub struct FetchError {
    /// The API operation (`getProductInfoSvc.do`, the last path segment of a paged URL, …).
    pub operation: String,
    /// The page, for paged sources.
    pub page: Option<u32>,
    /// Attempts made, the first included.
    pub attempts: u32,
    pub kind: FetchErrorKind,
}

impl FetchError {
    /// True when the cause was transient and the retries ran out: other pages may still succeed.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    /// True when retrying cannot help (bad key, unknown service, bad parameters, malformed reply):
    /// the run should stop.
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }

    /// The API's result or reason code, or the HTTP status, when there was one.
    pub fn code(&self) -> Option<String> {
        match &self.kind {
            FetchErrorKind::Api { code, .. } => Some(code.clone()),
            FetchErrorKind::Status { status } => Some(status.to_string()),
            _ => None,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.operation)?;
        if let Some(page) = self.page {
            write!(f, " page {page}")?;
        }
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            ": {} (after {} attempt{plural})",
            self.kind, self.attempts
        )
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.kind.source_error()
    }
}

/// Why a call failed. Request errors never carry the URL (it holds the service key).
#[derive(Debug, thiserror::Error)]
pub enum FetchErrorKind {
    #[error("timed out")]
    Timeout,
    #[error("connection failed")]
    Connect(#[source] reqwest::Error),
    #[error("reading the reply failed (truncated body?)")]
    Body(#[source] reqwest::Error),
    #[error("HTTP status {status}")]
    Status { status: u16 },
    #[error("{} error {code} ({message}) at HTTP {http_status}", if *gateway { "gateway" } else { "API" })]
    Api {
        code: String,
        message: String,
        gateway: bool,
        http_status: u16,
    },
    #[error("malformed reply")]
    Malformed(#[source] ParseError),
    #[error("short page: expected {expected} rows, got {got}")]
    ShortPage { expected: u64, got: u64 },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("the parsing task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl FetchErrorKind {
    /// Timeouts, connection and body errors, HTTP 5xx/408/429, transient API codes (quota 22, …)
    /// and short pages are worth retrying.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout | Self::Connect(_) | Self::Body(_) | Self::ShortPage { .. } => true,
            Self::Status { status } => *status >= 500 || *status == 429 || *status == 408,
            Self::Api { code, .. } => classify_code(code) == CodeClass::Transient,
            Self::Malformed(_) | Self::Config(_) | Self::Task(_) => false,
        }
    }

    fn source_error(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(e) | Self::Body(e) => Some(e),
            Self::Malformed(e) => Some(e),
            Self::Task(e) => Some(e),
            _ => None,
        }
    }

    /// Classifies a reqwest error, dropping its URL.
    pub(crate) fn from_request(error: reqwest::Error, reading_body: bool) -> Self {
        let error = error.without_url();
        if error.is_timeout() {
            Self::Timeout
        } else if error.is_builder() {
            Self::Config(error.to_string())
        } else if reading_body || error.is_body() || error.is_decode() {
            Self::Body(error)
        } else {
            Self::Connect(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_and_server_errors_are_transient_and_key_errors_are_not() {
        let api = |code: &str| FetchErrorKind::Api {
            code: code.into(),
            message: String::new(),
            gateway: true,
            http_status: 200,
        };
        assert!(api("22").is_transient());
        assert!(api("01").is_transient());
        for code in ["30", "31", "32", "12", "10", "11", "20"] {
            assert!(!api(code).is_transient(), "{code}");
        }
        assert!(FetchErrorKind::Status { status: 503 }.is_transient());
        assert!(FetchErrorKind::Status { status: 429 }.is_transient());
        assert!(!FetchErrorKind::Status { status: 404 }.is_transient());
        assert!(!FetchErrorKind::Malformed(ParseError::Empty).is_transient());
    }

    #[test]
    fn the_message_names_the_operation_page_code_and_attempts() {
        let error = FetchError {
            operation: "getItems".into(),
            page: Some(4),
            attempts: 1,
            kind: FetchErrorKind::Api {
                code: "30".into(),
                message: "SERVICE_KEY_IS_NOT_REGISTERED_ERROR".into(),
                gateway: true,
                http_status: 200,
            },
        };
        assert_eq!(
            error.to_string(),
            "getItems page 4: gateway error 30 (SERVICE_KEY_IS_NOT_REGISTERED_ERROR) at HTTP 200 (after 1 attempt)"
        );
        assert_eq!(error.code().as_deref(), Some("30"));
        assert!(error.is_permanent());
    }
}
