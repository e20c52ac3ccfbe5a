//! Admission passes: short-lived signed tokens that let one user book one party once the waiting
//! room admitted them.
//!
//! A pass is an HS256 JWT naming the user, the party and the expiry of the admission. It is signed
//! with a key of its own, derived from the JWT secret, so a pass can never be used as an access token
//! nor an access token as a pass. The signature proves who and which party; the live queue proves the
//! admission is still unexpired and unused (a pass is consumed by the booking it allows).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Serialize, Deserialize)]
struct PassClaims {
    /// The user.
    sub: String,
    /// The party.
    pty: i64,
    /// Expiry in unix seconds (the JWT field).
    exp: i64,
    /// Expiry in unix milliseconds (the admission's own, exact).
    exp_ms: i64,
}

/// Why a presented pass does not allow the booking.
#[derive(Debug, PartialEq, Eq)]
pub enum PassError {
    /// Not a pass of ours (bad signature, garbage).
    Invalid,
    /// A pass of ours for another party.
    WrongParty,
    /// A pass of ours for another user.
    WrongUser,
    /// Past its expiry.
    Expired,
}

/// Signing and checking keys for passes.
pub struct PassKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl PassKeys {
    pub fn new(jwt_secret: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"gonggu admission pass v1\0");
        hasher.update(jwt_secret);
        let key = hasher.finalize();
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is judged against the app clock (tests move it), not the JWT library's.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["sub"]);
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
        }
    }

    /// A pass for `user` to book `party` until `expires_at` (unix ms).
    pub fn issue(
        &self,
        user: i64,
        party: i64,
        expires_at: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = PassClaims {
            sub: user.to_string(),
            pty: party,
            exp: expires_at.div_euclid(1000) + 1,
            exp_ms: expires_at,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Checks that `token` is a pass of ours for `user` and `party`, unexpired at `now` (unix ms).
    /// Returns the expiry.
    pub fn check(&self, token: &str, user: i64, party: i64, now: i64) -> Result<i64, PassError> {
        let data = jsonwebtoken::decode::<PassClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| PassError::Invalid)?;
        let claims = data.claims;
        if claims.pty != party {
            return Err(PassError::WrongParty);
        }
        if claims.sub.parse::<i64>().ok() != Some(user) {
            return Err(PassError::WrongUser);
        }
        if claims.exp_ms <= now {
            return Err(PassError::Expired);
        }
        Ok(claims.exp_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn a_pass_admits_its_user_to_its_party_until_it_expires() {
        let keys = PassKeys::new(b"secret");
        let pass = keys.issue(7, 42, NOW + 300_000).unwrap();
        assert_eq!(keys.check(&pass, 7, 42, NOW), Ok(NOW + 300_000));
        assert_eq!(
            keys.check(&pass, 7, 42, NOW + 300_000),
            Err(PassError::Expired)
        );
    }

    #[test]
    fn a_pass_is_bound_to_its_user_and_party() {
        let keys = PassKeys::new(b"secret");
        let pass = keys.issue(7, 42, NOW + 300_000).unwrap();
        assert_eq!(keys.check(&pass, 8, 42, NOW), Err(PassError::WrongUser));
        assert_eq!(keys.check(&pass, 7, 43, NOW), Err(PassError::WrongParty));
    }

    #[test]
    fn access_tokens_and_foreign_passes_are_not_passes() {
        let keys = PassKeys::new(b"secret");
        let access =
            crate::auth::jwt::TokenKeys::new(b"secret", std::time::Duration::from_secs(60))
                .issue(7, NOW)
                .unwrap();
        assert_eq!(keys.check(&access, 7, 42, NOW), Err(PassError::Invalid));
        let foreign = PassKeys::new(b"other").issue(7, 42, NOW + 1000).unwrap();
        assert_eq!(keys.check(&foreign, 7, 42, NOW), Err(PassError::Invalid));
        assert_eq!(
            keys.check("not a token", 7, 42, NOW),
            Err(PassError::Invalid)
        );
    }
}
