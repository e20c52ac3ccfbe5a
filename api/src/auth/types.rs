//! Account values parsed from requests. Emails and nicknames follow the store's rules
//! ([`store::rules`]), which `gonggu seed` uses too; the password rules are the API's own, as only
//! the API takes passwords.

pub use store::rules::{Email, Nickname};

use crate::error::ApiError;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
