//! Account values parsed from requests: each constructor rejects what is not valid.

use crate::error::ApiError;

/// A normalised email address: trimmed and lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let email = raw.trim().to_lowercase();
        let invalid = |why: &str| ApiError::invalid("email", format!("email {why}"));
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

/// A password of 8 to 128 characters.
pub struct Password(String);

impl Password {
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

/// A display name of 1 to 30 characters, trimmed.
pub struct Nickname(String);

impl Nickname {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let nick = raw.trim();
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
