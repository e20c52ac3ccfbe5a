//! Faults the mock injects, per page and for the first N attempts, so a retried run can be compared
//! with a clean one.

use std::str::FromStr;
use std::time::Duration;

/// One kind of misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// This HTTP status with an HTML body (5xx: transient; 4xx: permanent).
    Status(u16),
    /// HTTP 429 with the gateway's quota error (reason 22).
    RateLimited,
    /// HTTP 200 with `resultCode` 22 in the envelope.
    QuotaCode,
    /// HTTP 200 with this `resultCode` in the envelope (10, 11, 01, …).
    ResultCode(String),
    /// The gateway's `<OpenAPI_ServiceResponse>` with this reason code at this status.
    Gateway { status: u16, code: String },
    /// Half the body, then the connection is cut.
    Truncated,
    /// A complete HTTP 200 reply whose body is cut JSON (a malformed page: permanent).
    Malformed,
    /// The page with no rows, `totalCount` unchanged (a short page: transient).
    EmptyPage,
    /// The reply is held back this long before being served normally (for timeouts).
    Delay(Duration),
}

/// A fault and where it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub fault: Fault,
    /// Only this page (the consumer-price operations count as page 1); `None`: every page.
    pub page: Option<u32>,
    /// Only the first N attempts at that page; `None`: every attempt.
    pub first_attempts: Option<u32>,
    /// Only this path, e.g. `/items`; `None`: every path.
    pub path: Option<String>,
}

impl FaultRule {
    /// A fault on every attempt at every page.
    pub fn always(fault: Fault) -> Self {
        Self {
            fault,
            page: None,
            first_attempts: None,
            path: None,
        }
    }

    /// Limits the fault to one page.
    pub fn on_page(mut self, page: u32) -> Self {
        self.page = Some(page);
        self
    }

    /// Limits the fault to the first `n` attempts.
    pub fn first(mut self, n: u32) -> Self {
        self.first_attempts = Some(n);
        self
    }

    /// Limits the fault to one path.
    pub fn on_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// True when this rule fires for `attempt` (1-based) at `page` of `path`.
    pub fn applies(&self, path: &str, page: u32, attempt: u32) -> bool {
        self.page.is_none_or(|p| p == page)
            && self.first_attempts.is_none_or(|n| attempt <= n)
            && self.path.as_deref().is_none_or(|p| p == path)
    }
}

/// `KIND[@PAGE][xN]`, e.g. `500@3x2` (HTTP 500 on page 3, first two attempts), `429`, `quota@2x1`,
/// `code:10`, `gateway:30`, `gateway:22:429`, `truncated@4x1`, `malformed@2`, `empty@5x1`,
/// `delay:2000@3x1` (milliseconds).
impl FromStr for FaultRule {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (rest, first_attempts) = match spec.rsplit_once('x') {
            Some((rest, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                (rest, Some(number(n, spec)?))
            }
            _ => (spec, None),
        };
        let (kind, page) = match rest.split_once('@') {
            Some((kind, page)) => (kind, Some(number(page, spec)?)),
            None => (rest, None),
        };
        let parts: Vec<&str> = kind.split(':').collect();
        let fault = match parts.as_slice() {
            ["429"] | ["ratelimit"] => Fault::RateLimited,
            [status] if status.bytes().all(|b| b.is_ascii_digit()) => {
                Fault::Status(number(status, spec)? as u16)
            }
            ["quota"] => Fault::QuotaCode,
            ["code", code] => Fault::ResultCode((*code).to_owned()),
            ["gateway", code] => Fault::Gateway {
                status: 200,
                code: (*code).to_owned(),
            },
            ["gateway", code, status] => Fault::Gateway {
                status: number(status, spec)? as u16,
                code: (*code).to_owned(),
            },
            ["truncated"] => Fault::Truncated,
            ["malformed"] => Fault::Malformed,
            ["empty"] => Fault::EmptyPage,
            ["delay", ms] => Fault::Delay(Duration::from_millis(u64::from(number(ms, spec)?))),
            _ => return Err(format!("unknown fault {spec:?}")),
        };
        Ok(Self {
            fault,
            page,
            first_attempts,
            path: None,
        })
    }
}

fn number(text: &str, spec: &str) -> Result<u32, String> {
    text.parse()
        .map_err(|_| format!("bad number {text:?} in fault {spec:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_name_kind_page_and_attempts() {
        assert_eq!(
            "500@3x2".parse(),
            Ok(FaultRule::always(Fault::Status(500)).on_page(3).first(2))
        );
        assert_eq!("429".parse(), Ok(FaultRule::always(Fault::RateLimited)));
        assert_eq!(
            "gateway:22:429@1".parse(),
            Ok(FaultRule::always(Fault::Gateway {
                status: 429,
                code: "22".into()
            })
            .on_page(1))
        );
        assert_eq!(
            "delay:50x1".parse(),
            Ok(FaultRule::always(Fault::Delay(Duration::from_millis(50))).first(1))
        );
        assert!("bogus".parse::<FaultRule>().is_err());
    }

    #[test]
    fn a_rule_fires_only_on_its_page_and_first_attempts() {
        let rule = FaultRule::always(Fault::QuotaCode).on_page(2).first(1);
        assert!(rule.applies("/items", 2, 1));
        assert!(!rule.applies("/items", 2, 2));
        assert!(!rule.applies("/items", 3, 1));
    }
}
