//! The nightly import: the same runs `gonggu ingest` makes (an `ingest::config::IngestConfig` per
//! kind), on a cron schedule read in Asia/Seoul time (`0 0 3 * * *`: 03:00 every day).
//!
//! apalis-cron would tick once on every instance; here the sweeper (one instance, under a lease)
//! pushes one job per kind and tick, keyed by the tick, so however many instances run, a tick's
//! import runs once. The sweeper pushes the latest tick at or before now, so an instance that
//! starts after a missed tick runs it then.

use std::str::FromStr;

use chrono::{DateTime, FixedOffset, Offset, TimeZone, Utc};
use ingest::config::IngestConfig;
use ingest::run::Kind;

/// The default schedule: 03:00 in Korea every day (sec min hour day month weekday).
pub const DEFAULT_SCHEDULE: &str = "0 0 3 * * *";

/// Korea has no daylight saving time: Asia/Seoul is always UTC+9.
fn seoul() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| Utc.fix())
}

/// What to import each night, and when.
#[derive(Clone, Debug)]
pub struct Nightly {
    pub schedule: cron::Schedule,
    pub items: Option<IngestConfig>,
    pub markets: Option<IngestConfig>,
}

impl Nightly {
    /// Parses a cron expression (six fields, seconds first), naming the setting in the error.
    pub fn schedule(expr: &str) -> Result<cron::Schedule, String> {
        cron::Schedule::from_str(expr).map_err(|e| {
            format!("GONGGU_NIGHTLY_SCHEDULE: `{expr}` is not a cron schedule (sec min hour day month weekday): {e}")
        })
    }

    /// The configured imports, by kind.
    pub fn runs(&self) -> impl Iterator<Item = (Kind, &IngestConfig)> {
        self.items
            .iter()
            .map(|c| (Kind::Items, c))
            .chain(self.markets.iter().map(|c| (Kind::Markets, c)))
    }

    pub fn config(&self, kind: Kind) -> Option<&IngestConfig> {
        match kind {
            Kind::Items => self.items.as_ref(),
            Kind::Markets => self.markets.as_ref(),
        }
    }
}

/// The latest tick of `schedule` at or before `now_ms` (UTC ms), read in Asia/Seoul, looking back
/// at most 35 days (monthly schedules); `None` when there is none in that span.
pub fn latest_tick(schedule: &cron::Schedule, now_ms: i64) -> Option<i64> {
    const SPAN_MS: i64 = 35 * 24 * 3_600_000;
    let from: DateTime<FixedOffset> = seoul().timestamp_millis_opt(now_ms - SPAN_MS).single()?;
    let mut latest = None;
    // Bounded: an every-second schedule over 35 days would be millions of ticks.
    for tick in schedule.after(&from).take(200_000) {
        let at = tick.timestamp_millis();
        if at > now_ms {
            break;
        }
        latest = Some(at);
    }
    latest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn the_default_tick_is_three_in_the_morning_in_seoul() {
        let schedule = Nightly::schedule(DEFAULT_SCHEDULE).unwrap();
        assert_eq!(
            latest_tick(&schedule, ms("2026-12-01T10:00:00+09:00")),
            Some(ms("2026-12-01T03:00:00+09:00"))
        );
        assert_eq!(
            latest_tick(&schedule, ms("2026-12-01T02:59:59+09:00")),
            Some(ms("2026-11-30T03:00:00+09:00")),
            "before today's tick, yesterday's is the latest"
        );
        assert_eq!(
            latest_tick(&schedule, ms("2026-12-01T03:00:00+09:00")),
            Some(ms("2026-12-01T03:00:00+09:00")),
            "a tick is due at its own time"
        );
    }

    #[test]
    fn a_bad_schedule_names_the_setting() {
        let err = Nightly::schedule("every night").unwrap_err();
        assert!(err.starts_with("GONGGU_NIGHTLY_SCHEDULE"), "{err}");
    }
}
