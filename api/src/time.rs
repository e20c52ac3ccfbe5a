//! Timestamps in the API: RFC 3339 strings with an offset, shown in Asia/Seoul (+09:00, no DST),
//! stored as UTC unix milliseconds.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

/// Korea Standard Time.
const KST: UtcOffset = match UtcOffset::from_hms(9, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// A point in time, in UTC unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Formats as RFC 3339 in Korea Standard Time, e.g. `2026-11-22T19:30:00+09:00`.
    ///
    /// Total: a stored value whose Korean wall-clock date falls outside the years 1..=9999 (which
    /// RFC 3339 cannot write) is shown in UTC when that fits, else as its milliseconds. The API
    /// never lets such a time in, but a row written by other means must not take a request (or
    /// the task that serialises it) down.
    pub fn to_rfc3339(self) -> String {
        let Ok(utc) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
        else {
            return self.0.to_string();
        };
        utc.checked_to_offset(KST)
            .and_then(|t| t.format(&Rfc3339).ok())
            .or_else(|| utc.format(&Rfc3339).ok())
            .unwrap_or_else(|| self.0.to_string())
    }

    /// Parses RFC 3339 with any offset.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
            format!("expected an RFC 3339 time such as 2026-12-01T18:00:00+09:00 ({e})")
        })?;
        Ok(Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .examples([serde_json::json!("2026-12-01T18:00:00+09:00")])
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_korea_standard_time() {
        let t = Timestamp::parse("2026-12-01T09:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-01T18:00:00+09:00");
        assert_eq!(Timestamp::parse(&t.to_rfc3339()).unwrap(), t);
    }

    #[test]
    fn milliseconds_survive_a_round_trip() {
        let t = Timestamp(1_764_579_600_123);
        assert_eq!(Timestamp::parse(&t.to_rfc3339()).unwrap(), t);
    }

    #[test]
    fn every_stored_value_formats_without_panicking() {
        // 9999-12-31T23:59:59Z is year 10000 in Korea: shown in UTC instead.
        let last = Timestamp::parse("9999-12-31T23:59:59Z").unwrap();
        assert_eq!(last.to_rfc3339(), "9999-12-31T23:59:59Z");
        for ms in [
            i64::MIN,
            i64::MAX,
            -62_135_596_800_001,
            0,
            253_402_300_799_999,
        ] {
            assert!(!Timestamp(ms).to_rfc3339().is_empty(), "{ms}");
        }
        assert_eq!(Timestamp(i64::MAX).to_rfc3339(), i64::MAX.to_string());
    }

    #[test]
    fn times_without_offset_are_refused() {
        assert!(Timestamp::parse("2026-12-01T18:00:00").is_err());
        assert!(Timestamp::parse("tomorrow").is_err());
    }
}
