//! The rules values must follow, for every writer: the HTTP API, `gonggu seed`, background jobs.
//! Each check returns an [`Invalid`] naming the field, which the API answers as a 422. Lengths
//! count the characters as sent (surrounding spaces included), so the limit a client reads in the
//! OpenAPI document is the one applied; the value kept is trimmed.
//!
//! Emails and nicknames are NFKC-normalised (fullwidth `ａ` is `a`), and characters that show as
//! nothing (zero-width space, soft hyphen, Hangul fillers, …) are refused, so two accounts cannot
//! differ only in what nobody can see. Emails are ASCII: a look-alike letter from another script
//! (Cyrillic `і`) cannot make a second account that reads the same.

use std::ops::RangeInclusive;

use unicode_normalization::UnicodeNormalization;

/// A value that breaks a rule, naming the field it came in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
    /// A more specific problem code than `validation_failed`, where clients tell cases apart.
    pub code: Option<&'static str>,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            code: None,
        }
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }
}

/// Seats in a party, the leader's included.
pub const CAPACITY: RangeInclusive<i64> = 2..=50;
/// Members a party needs by its deadline when the leader names none (the leader and one more).
pub const MIN_MEMBERS_DEFAULT: i64 = 2;
pub const TITLE_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 2000;
/// The most one share may cost, in KRW.
pub const PRICE_MAX: i64 = 10_000_000;
pub const REASON_MAX: usize = 500;
pub const NICKNAME_MAX: usize = 30;
pub const EMAIL_MAX: usize = 254;

/// Unicode's Default_Ignorable_Code_Point: characters with no visible form of their own.
pub fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF)
}

/// A normalised email address: NFKC, trimmed, lower-cased, ASCII.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let invalid = |why: &str| Invalid::new("email", format!("email {why}"));
        if raw.chars().any(is_invisible) {
            return Err(invalid("must not contain invisible characters"));
        }
        let email = raw.nfkc().collect::<String>().trim().to_lowercase();
        if !email.is_ascii() {
            return Err(invalid(
                "must be ASCII (write an internationalised domain in its xn-- form)",
            ));
        }
        if email.len() > EMAIL_MAX {
            return Err(invalid("must be at most 254 characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(invalid("must contain @"));
        };
        if local.is_empty() || local.len() > 64 {
            return Err(invalid("needs 1 to 64 characters before @"));
        }
        if domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(invalid("needs a domain such as example.com after @"));
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("must not contain spaces"));
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name of 1 to 30 characters, NFKC-normalised and trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nickname(String);

impl Nickname {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.chars().any(is_invisible) {
            return Err(Invalid::new(
                "nickname",
                "nickname must not contain invisible characters",
            ));
        }
        let normalised: String = raw.nfkc().collect();
        let nick = normalised.trim();
        let n = nick.chars().count();
        if n == 0 || n > NICKNAME_MAX || raw.chars().count() > NICKNAME_MAX {
            return Err(Invalid::new(
                "nickname",
                format!("nickname must be 1 to {NICKNAME_MAX} characters"),
            ));
        }
        if nick.chars().any(char::is_control) {
            return Err(Invalid::new(
                "nickname",
                "nickname must not contain control characters",
            ));
        }
        Ok(Nickname(nick.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A party title: trimmed, 1 to [`TITLE_MAX`] characters.
pub fn title(raw: &str) -> Result<String, Invalid> {
    let t = raw.trim();
    if t.is_empty() || raw.chars().count() > TITLE_MAX {
        return Err(Invalid::new(
            "title",
            format!("title must be 1 to {TITLE_MAX} characters"),
        ));
    }
    Ok(t.to_owned())
}

/// A party description: trimmed, at most [`DESCRIPTION_MAX`] characters.
pub fn description(raw: &str) -> Result<String, Invalid> {
    let d = raw.trim();
    if raw.chars().count() > DESCRIPTION_MAX {
        return Err(Invalid::new(
            "description",
            format!("description must be at most {DESCRIPTION_MAX} characters"),
        ));
    }
    Ok(d.to_owned())
}

/// Seats in a party, the leader's included: within [`CAPACITY`].
pub fn capacity(capacity: i64) -> Result<i64, Invalid> {
    if !CAPACITY.contains(&capacity) {
        return Err(Invalid::new(
            "capacity",
            format!(
                "capacity must be between {} and {}, the leader included",
                CAPACITY.start(),
                CAPACITY.end()
            ),
        ));
    }
    Ok(capacity)
}

/// Members needed by the deadline, leader included: 2 up to the capacity.
pub fn min_members(min_members: i64, capacity: i64) -> Result<i64, Invalid> {
    if !(MIN_MEMBERS_DEFAULT..=capacity).contains(&min_members) {
        return Err(Invalid::new(
            "min_members",
            format!(
                "min_members must be between {MIN_MEMBERS_DEFAULT} and the capacity ({capacity})"
            ),
        ));
    }
    Ok(min_members)
}

/// The price of one share in KRW, 0 to [`PRICE_MAX`], if given.
pub fn price_per_share(price: Option<i64>) -> Result<Option<i64>, Invalid> {
    if price.is_some_and(|p| !(0..=PRICE_MAX).contains(&p)) {
        return Err(Invalid::new(
            "price_per_share",
            format!("price_per_share must be between 0 and {PRICE_MAX} KRW"),
        ));
    }
    Ok(price)
}

/// Why a party is cancelled: trimmed, 1 to [`REASON_MAX`] characters.
pub fn cancel_reason(raw: &str) -> Result<String, Invalid> {
    let r = raw.trim();
    if r.is_empty() || raw.chars().count() > REASON_MAX {
        return Err(Invalid::new(
            "reason",
            format!("reason must be 1 to {REASON_MAX} characters"),
        ));
    }
    Ok(r.to_owned())
}

/// An id a client names, which must be positive.
pub fn positive_id(id: i64, field: &str) -> Result<i64, Invalid> {
    if id <= 0 {
        return Err(Invalid::new(
            field,
            format!("{field} must be a positive id"),
        ));
    }
    Ok(id)
}

/// A party's times against `now`: both ahead, the deadline not after the meet.
pub fn party_times(meet_at: i64, deadline_at: i64, now: i64) -> Result<(), Invalid> {
    meet_ahead(meet_at, now)?;
    if deadline_at <= now {
        return Err(Invalid::new(
            "deadline_at",
            "deadline_at must be in the future",
        ));
    }
    if deadline_at > meet_at {
        return Err(Invalid::new(
            "deadline_at",
            "the booking deadline must not be after the meet time",
        ));
    }
    Ok(())
}

/// A meet time must be ahead of `now`.
pub fn meet_ahead(meet_at: i64, now: i64) -> Result<(), Invalid> {
    if meet_at <= now {
        return Err(Invalid::new("meet_at", "meet_at must be in the future"));
    }
    Ok(())
}

/// Refuses a time later than `latest` (now plus the configured horizon): nobody may plan parties
/// decades ahead, and far-future times are where formatting and arithmetic break.
/// `latest_text` is `latest` as the client should read it.
pub fn within_horizon(t: i64, field: &str, latest: i64, latest_text: &str) -> Result<i64, Invalid> {
    if t > latest {
        return Err(Invalid::new(
            field,
            format!(
                "{field} must be at most {latest_text} (the furthest a party may be planned ahead)"
            ),
        ));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            Email::parse("  Kim@Example.COM ").unwrap().as_str(),
            "kim@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_refused_naming_the_field() {
        for bad in [
            "",
            "kim",
            "kim@",
            "@example.com",
            "kim@localhost",
            "k m@example.com",
            "a@b@c.com",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad}");
        }
    }

    #[test]
    fn look_alike_emails_are_one_account_or_refused() {
        assert_eq!(
            Email::parse("ｋｉｍ@ｅｘａｍｐｌｅ.ｃｏｍ")
                .unwrap()
                .as_str(),
            "kim@example.com"
        );
        for bad in [
            "k\u{0456}m@example.com",
            "ki\u{200b}m@example.com",
            "kim@exam\u{ad}ple.com",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad}");
        }
    }

    #[test]
    fn nicknames_are_normalised_trimmed_bounded_and_visible() {
        assert_eq!(Nickname::parse("ｇｏｎｇｇｕ").unwrap().as_str(), "gonggu");
        assert_eq!(Nickname::parse(" 공구왕 ").unwrap().as_str(), "공구왕");
        for bad in ["공구\u{200b}왕", "\u{3164}", "   ", &"가".repeat(31)] {
            assert_eq!(
                Nickname::parse(bad).unwrap_err().field,
                "nickname",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn party_values_are_bounded_naming_their_field() {
        assert_eq!(capacity(2), Ok(2));
        assert_eq!(capacity(50), Ok(50));
        assert_eq!(capacity(1).unwrap_err().field, "capacity");
        assert_eq!(capacity(51).unwrap_err().field, "capacity");
        assert_eq!(min_members(2, 2), Ok(2));
        assert_eq!(min_members(10, 10), Ok(10));
        assert_eq!(min_members(1, 10).unwrap_err().field, "min_members");
        assert_eq!(min_members(11, 10).unwrap_err().field, "min_members");
        assert_eq!(price_per_share(None), Ok(None));
        assert_eq!(price_per_share(Some(PRICE_MAX)), Ok(Some(PRICE_MAX)));
        assert_eq!(
            price_per_share(Some(-1)).unwrap_err().field,
            "price_per_share"
        );
        assert_eq!(title("  라면  "), Ok("라면".to_owned()));
        assert_eq!(title(" ").unwrap_err().field, "title");
        assert_eq!(title(&"가".repeat(101)).unwrap_err().field, "title");
        assert_eq!(
            description(&"가".repeat(2001)).unwrap_err().field,
            "description"
        );
        assert_eq!(cancel_reason("").unwrap_err().field, "reason");
        assert_eq!(cancel_reason(&"x".repeat(501)).unwrap_err().field, "reason");
        assert_eq!(positive_id(0, "item_id").unwrap_err().field, "item_id");
    }

    #[test]
    fn party_times_must_be_ahead_and_in_order() {
        assert_eq!(party_times(20, 10, 5), Ok(()));
        assert_eq!(party_times(20, 20, 5), Ok(()));
        assert_eq!(party_times(5, 3, 5).unwrap_err().field, "meet_at");
        assert_eq!(party_times(20, 5, 5).unwrap_err().field, "deadline_at");
        assert_eq!(party_times(20, 21, 5).unwrap_err().field, "deadline_at");
        assert_eq!(within_horizon(10, "meet_at", 10, "then"), Ok(10));
        let err = within_horizon(11, "meet_at", 10, "then").unwrap_err();
        assert_eq!(err.field, "meet_at");
        assert!(err.message.contains("at most then"), "{}", err.message);
    }
}
