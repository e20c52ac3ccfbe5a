//! Account values parsed from requests: each constructor rejects what is not valid.
//!
//! Emails and nicknames are NFKC-normalised (fullwidth `ａ` is `a`), and characters that show as
//! nothing (zero-width space, soft hyphen, Hangul fillers, …) are refused, so two accounts cannot
//! differ only in what nobody can see. Emails are ASCII: a look-alike letter from another script
//! (Cyrillic `і`) cannot make a second account that reads the same.

use unicode_normalization::UnicodeNormalization;

use crate::error::ApiError;

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
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let invalid = |why: &str| ApiError::invalid("email", format!("email {why}"));
        if raw.chars().any(is_invisible) {
            return Err(invalid("must not contain invisible characters"));
        }
        let email = raw.nfkc().collect::<String>().trim().to_lowercase();
        if !email.is_ascii() {
            return Err(invalid(
                "must be ASCII (write an internationalised domain in its xn-- form)",
            ));
        }
        if email.len() > 254 {
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

/// A password of 8 to 128 characters that is not all whitespace and not among the easiest to
/// guess (zxcvbn's estimate, which knows the common passwords, words, keyboard walks and dates,
/// and the account's own email and nickname).
pub struct Password(String);

/// zxcvbn's score (0 to 4) a new password must reach: 2 means more than a million guesses.
const MIN_PASSWORD_SCORE: u8 = 2;

impl Password {
    /// Checks a new password against the rules and the account's own details.
    pub fn parse_new(raw: String, email: &Email, nickname: &Nickname) -> Result<Self, ApiError> {
        let password = Self::parse(raw)?;
        if password.0.trim().is_empty() {
            return Err(ApiError::invalid(
                "password",
                "password must not be only spaces",
            ));
        }
        let local = email.as_str().split('@').next().unwrap_or_default();
        let inputs = [email.as_str(), local, nickname.as_str()];
        let score = u8::from(zxcvbn::zxcvbn(&password.0, &inputs).score());
        if score < MIN_PASSWORD_SCORE {
            return Err(ApiError::invalid(
                "password",
                "password is too easy to guess (a common password, word or pattern, or your email or \
                 nickname); try a few unrelated words",
            )
            .with_code("weak_password"));
        }
        Ok(password)
    }

    /// Checks only the length (for logging in with a password set before the stronger rules).
    pub fn parse(raw: String) -> Result<Self, ApiError> {
        let n = raw.chars().count();
        if n < 8 {
            return Err(ApiError::invalid(
                "password",
                "password must be at least 8 characters",
            ));
        }
        if n > 128 {
            return Err(ApiError::invalid(
                "password",
                "password must be at most 128 characters",
            ));
        }
        Ok(Password(raw))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A display name of 1 to 30 characters, NFKC-normalised and trimmed.
pub struct Nickname(String);

impl Nickname {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        if raw.chars().any(is_invisible) {
            return Err(ApiError::invalid(
                "nickname",
                "nickname must not contain invisible characters",
            ));
        }
        let normalised: String = raw.nfkc().collect();
        let nick = normalised.trim();
        let n = nick.chars().count();
        if n == 0 || n > 30 {
            return Err(ApiError::invalid(
                "nickname",
                "nickname must be 1 to 30 characters",
            ));
        }
        if nick.chars().any(char::is_control) {
            return Err(ApiError::invalid(
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
            assert_eq!(err.field.as_deref(), Some("email"), "{bad}");
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
            assert_eq!(err.field.as_deref(), Some("email"), "{bad}");
        }
    }

    #[test]
    fn nicknames_are_normalised_and_visible() {
        assert_eq!(Nickname::parse("ｇｏｎｇｇｕ").unwrap().as_str(), "gonggu");
        assert!(Nickname::parse("공구\u{200b}왕").is_err());
        assert!(Nickname::parse("\u{3164}").is_err());
    }

    #[test]
    fn guessable_passwords_are_refused() {
        let email = Email::parse("minji.kim@example.com").unwrap();
        let nick = Nickname::parse("민지").unwrap();
        for weak in [
            "password",
            "password123",
            "qwertyuiop",
            "12345678",
            "          ",
            "minji.kim@example.com",
            "iloveyou1",
        ] {
            let err = Password::parse_new(weak.into(), &email, &nick).err();
            assert_eq!(
                err.and_then(|e| e.field),
                Some("password".to_owned()),
                "{weak:?}"
            );
        }
        for fine in ["correct horse", "바람부는 시장골목", "tangerine-bicycle-91"] {
            assert!(
                Password::parse_new(fine.into(), &email, &nick).is_ok(),
                "{fine}"
            );
        }
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("비밀번호비밀번호".into()).is_ok());
    }

    #[test]
    fn nicknames_are_trimmed_and_bounded() {
        assert_eq!(Nickname::parse(" 공구왕 ").unwrap().as_str(), "공구왕");
        assert!(Nickname::parse("   ").is_err());
        assert!(Nickname::parse(&"가".repeat(31)).is_err());
    }
}
