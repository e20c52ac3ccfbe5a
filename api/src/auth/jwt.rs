//! Access tokens: short-lived HS256 JWTs naming the user. They are checked without a database
//! round trip; revocation works through the refresh tokens, which are short-lived's backstop.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
}

/// Signing and verification keys.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], access_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
        }
    }

    /// A signed access token for `user_id`, issued at `now_ms`.
    pub fn issue(&self, user_id: i64, now_ms: i64) -> Result<String, jsonwebtoken::errors::Error> {
        let iat = now_ms / 1000;
        let claims = Claims {
            sub: user_id.to_string(),
            iat,
            exp: iat + self.access_ttl.as_secs() as i64,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The user id of a valid, unexpired token.
    pub fn verify(&self, token: &str) -> Option<i64> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        data.claims.sub.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    }

    #[test]
    fn a_token_names_its_user() {
        let keys = TokenKeys::new(b"secret", Duration::from_secs(60));
        let token = keys.issue(42, now_ms()).unwrap();
        assert_eq!(keys.verify(&token), Some(42));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let ours = TokenKeys::new(b"secret", Duration::from_secs(60));
        let theirs = TokenKeys::new(b"other", Duration::from_secs(60));
        assert_eq!(ours.verify(&theirs.issue(42, now_ms()).unwrap()), None);
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = TokenKeys::new(b"secret", Duration::from_secs(60));
        let token = keys.issue(42, now_ms() - 3_600_000).unwrap();
        assert_eq!(keys.verify(&token), None);
    }
}
