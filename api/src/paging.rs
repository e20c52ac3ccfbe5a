//! Shared list parameters and the `{items, next_cursor}` envelope.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

/// A page of results.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Checks `limit` (1..=100, default 20).
pub fn limit(raw: Option<i64>) -> Result<usize, ApiError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT as i64).contains(&n) => Ok(n as usize),
        Some(_) => Err(ApiError::invalid(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// Decodes an opaque `cursor`.
pub fn cursor(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some(c) => store::cursor::decode(c).map(Some).ok_or_else(|| {
            ApiError::malformed(Some("cursor".into()), "cursor is not one this API returned")
        }),
    }
}

/// A trimmed optional text parameter: empty (after trimming) means absent; longer than `max` as
/// sent is refused.
pub fn optional_text(
    s: Option<String>,
    field: &str,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match s {
        Some(s) if s.chars().count() > max => Err(ApiError::invalid(
            field,
            format!("{field} must be at most {max} characters"),
        )),
        Some(s) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
        None => Ok(None),
    }
}

/// An optional category code or code prefix: up to 9 digits as sent; empty means absent.
pub fn category(s: Option<String>) -> Result<Option<String>, ApiError> {
    match s {
        Some(c) if c.len() > 9 || !c.bytes().all(|b| b.is_ascii_digit()) => Err(ApiError::invalid(
            "category",
            "category must be up to 9 digits",
        )),
        Some(c) => Ok(Some(c).filter(|c| !c.is_empty())),
        None => Ok(None),
    }
}

/// An optional choice among `allowed`, exactly as sent; empty means absent.
pub fn choice(
    s: Option<String>,
    field: &str,
    allowed: &[&str],
) -> Result<Option<String>, ApiError> {
    match s {
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if allowed.contains(&v.as_str()) => Ok(Some(v)),
        Some(_) => Err(ApiError::invalid(
            field,
            format!("{field} must be one of {}", allowed.join(", ")),
        )),
        None => Ok(None),
    }
}
