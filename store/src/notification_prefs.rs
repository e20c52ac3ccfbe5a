//! A user's notification preferences: kinds they do not want pushed, and quiet hours in Korean
//! time during which nothing is pushed. Neither touches the inbox or the stream: every
//! notification is still written and streamed, so a muted kind or a quiet night loses nothing a
//! user can read later. A notification that falls in quiet hours is never pushed afterwards
//! either (the morning would bring a burst of stale pushes; the inbox has them).

use sqlx::AnyConnection;

use crate::db::Db;
use crate::error::Result;
use crate::rules::Invalid;

/// Korea keeps one offset all year (no daylight saving time since 1988): Asia/Seoul is UTC+09:00.
pub const SEOUL_OFFSET_MS: i64 = 9 * 3_600_000;
const DAY_MINUTES: i64 = 24 * 60;
/// The longest `muted_kinds` list taken (repeats included).
pub const MAX_MUTED: usize = 32;

/// A time of day in Seoul, as minutes after midnight (0..1440).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeOfDay(i64);

impl TimeOfDay {
    /// Parses `HH:MM` (00:00 to 23:59); `field` names it in the error.
    pub fn parse(text: &str, field: &str) -> std::result::Result<Self, Invalid> {
        let bad = || Invalid::new(field, "a time of day as HH:MM, 00:00 to 23:59");
        let (h, m) = text.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()))
        {
            return Err(bad());
        }
        let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(Self(h * 60 + m))
    }

    pub fn minutes(self) -> i64 {
        self.0
    }

    /// The Seoul time of day at `at` (unix ms).
    pub fn in_seoul(at: i64) -> Self {
        Self(
            (at + SEOUL_OFFSET_MS)
                .div_euclid(60_000)
                .rem_euclid(DAY_MINUTES),
        )
    }

    fn from_minutes(minutes: i64) -> Option<Self> {
        (0..DAY_MINUTES).contains(&minutes).then_some(Self(minutes))
    }
}

impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// Quiet hours: from `start` (inclusive) to `end` (exclusive), wrapping midnight when the start
/// is later than the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub start: TimeOfDay,
    pub end: TimeOfDay,
}

impl QuietHours {
    /// Quiet hours from `start` to `end`; equal times are refused (nothing, or the whole day?).
    pub fn new(start: TimeOfDay, end: TimeOfDay) -> std::result::Result<Self, Invalid> {
        if start == end {
            return Err(Invalid::new(
                "quiet_hours.end",
                "quiet hours must end at another time than they start",
            ));
        }
        Ok(Self { start, end })
    }

    /// Whether `at` (unix ms) falls in these quiet hours, by Seoul's clock.
    pub fn contains(&self, at: i64) -> bool {
        let t = TimeOfDay::in_seoul(at).0;
        let (s, e) = (self.start.0, self.end.0);
        if s < e {
            s <= t && t < e
        } else {
            t >= s || t < e
        }
    }
}

/// What a user chose; the default pushes everything at any hour.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preferences {
    /// Kinds (`store::notification_kinds`) never pushed, sorted, without repeats.
    pub muted_kinds: Vec<String>,
    pub quiet_hours: Option<QuietHours>,
}

impl Preferences {
    /// Whether a notification of `kind` written at `at` is pushed.
    pub fn pushes(&self, kind: &str, at: i64) -> bool {
        !self.muted_kinds.iter().any(|k| k == kind)
            && !self.quiet_hours.is_some_and(|q| q.contains(at))
    }

    /// Checks `kinds` against the kinds gonggu writes (a typo would mute nothing, silently).
    pub fn muted(kinds: &[String]) -> std::result::Result<Vec<String>, Invalid> {
        if kinds.len() > MAX_MUTED {
            return Err(Invalid::new(
                "muted_kinds",
                format!("at most {MAX_MUTED} kinds"),
            ));
        }
        let mut out = Vec::with_capacity(kinds.len());
        for (i, k) in kinds.iter().enumerate() {
            if !crate::notification_kinds::ALL.contains(&k.as_str()) {
                return Err(Invalid::new(
                    format!("muted_kinds[{i}]"),
                    format!(
                        "unknown kind `{k}`; one of {}",
                        crate::notification_kinds::ALL.join(", ")
                    ),
                ));
            }
            out.push(k.clone());
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn from_row(row: PreferencesRow) -> Self {
        let quiet_hours = match (row.quiet_start, row.quiet_end) {
            (Some(s), Some(e)) => TimeOfDay::from_minutes(s)
                .zip(TimeOfDay::from_minutes(e))
                .map(|(start, end)| QuietHours { start, end }),
            _ => None,
        };
        Self {
            muted_kinds: row
                .muted_kinds
                .split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect(),
            quiet_hours,
        }
    }
}

#[derive(sqlx::FromRow)]
struct PreferencesRow {
    muted_kinds: String,
    quiet_start: Option<i64>,
    quiet_end: Option<i64>,
}

/// The user's preferences (the default when they never set any), on `conn`.
pub async fn get_on(conn: &mut AnyConnection, user_id: i64) -> Result<Preferences> {
    let row: Option<PreferencesRow> = sqlx::query_as(
        "SELECT muted_kinds, quiet_start, quiet_end FROM notification_preferences WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Preferences::from_row).unwrap_or_default())
}

pub async fn get(db: &Db, user_id: i64) -> Result<Preferences> {
    let mut conn = db.pool().acquire().await?;
    get_on(&mut conn, user_id).await
}

/// Replaces the user's preferences.
pub async fn put(db: &Db, user_id: i64, prefs: &Preferences, now: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO notification_preferences (user_id, muted_kinds, quiet_start, quiet_end, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET \
         muted_kinds = excluded.muted_kinds, quiet_start = excluded.quiet_start, \
         quiet_end = excluded.quiet_end, updated_at = excluded.updated_at",
    )
    .bind(user_id)
    .bind(prefs.muted_kinds.join(","))
    .bind(prefs.quiet_hours.map(|q| q.start.0))
    .bind(prefs.quiet_hours.map(|q| q.end.0))
    .bind(now)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of `hh:mm` Seoul time on some day (Seoul's midnight is 15:00 UTC the day before).
    fn seoul(hh: i64, mm: i64) -> i64 {
        let seoul_midnight = 20_000 * 86_400_000 - SEOUL_OFFSET_MS;
        seoul_midnight + (hh * 60 + mm) * 60_000
    }

    fn t(s: &str) -> TimeOfDay {
        TimeOfDay::parse(s, "t").unwrap()
    }

    #[test]
    fn times_of_day_are_hh_mm() {
        assert_eq!(t("00:00").minutes(), 0);
        assert_eq!(t("23:59").minutes(), 1439);
        assert_eq!(t("08:05").to_string(), "08:05");
        for bad in [
            "24:00", "8:00", "08:60", "0800", "08:00:00", "ab:cd", "", "+8:00", "08: 0",
        ] {
            let err = TimeOfDay::parse(bad, "quiet_hours.start").unwrap_err();
            assert_eq!(err.field, "quiet_hours.start", "{bad}");
        }
    }

    #[test]
    fn seoul_time_is_utc_plus_nine() {
        assert_eq!(TimeOfDay::in_seoul(0).to_string(), "09:00");
        assert_eq!(TimeOfDay::in_seoul(seoul(23, 30)).to_string(), "23:30");
        assert_eq!(TimeOfDay::in_seoul(-60_000).to_string(), "08:59");
    }

    #[test]
    fn quiet_hours_may_wrap_midnight() {
        let night = QuietHours::new(t("23:00"), t("08:00")).unwrap();
        for (h, m, quiet) in [
            (22, 59, false),
            (23, 0, true),
            (0, 0, true),
            (7, 59, true),
            (8, 0, false),
            (12, 0, false),
        ] {
            assert_eq!(night.contains(seoul(h, m)), quiet, "{h}:{m}");
        }
        let lunch = QuietHours::new(t("12:00"), t("13:00")).unwrap();
        assert!(lunch.contains(seoul(12, 30)));
        assert!(!lunch.contains(seoul(13, 0)));
        assert!(!lunch.contains(seoul(0, 0)));
        assert_eq!(
            QuietHours::new(t("09:00"), t("09:00")).unwrap_err().field,
            "quiet_hours.end"
        );
    }

    #[test]
    fn muted_kinds_and_quiet_hours_stop_pushes() {
        let prefs = Preferences {
            muted_kinds: Preferences::muted(&[
                "reminder".into(),
                "penalty".into(),
                "reminder".into(),
            ])
            .unwrap(),
            quiet_hours: Some(QuietHours::new(t("23:00"), t("08:00")).unwrap()),
        };
        assert_eq!(prefs.muted_kinds, ["penalty", "reminder"]);
        assert!(!prefs.pushes("reminder", seoul(12, 0)));
        assert!(prefs.pushes("party_created", seoul(12, 0)));
        assert!(!prefs.pushes("party_created", seoul(23, 30)));
        assert!(Preferences::default().pushes("reminder", seoul(3, 0)));
        let err = Preferences::muted(&["reminder".into(), "spam".into()]).unwrap_err();
        assert_eq!(err.field, "muted_kinds[1]");
        let many = vec!["reminder".to_owned(); MAX_MUTED + 1];
        assert_eq!(Preferences::muted(&many).unwrap_err().field, "muted_kinds");
        assert_eq!(Preferences::muted(&many[1..]).unwrap(), ["reminder"]);
    }
}
