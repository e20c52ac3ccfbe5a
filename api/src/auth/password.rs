//! Password hashing with argon2id, run on the blocking pool so it never stalls the async workers.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

use crate::error::ApiError;

/// Hashes `password` into a PHC string.
pub async fn hash(password: String) -> Result<String, ApiError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _enter = span.enter();
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(std::io::Error::other(e.to_string())))
    })
    .await
    .map_err(ApiError::internal)?
}

/// A real hash of a random password, verified against when the email is unknown, so both cases
/// take the same time and response timing does not reveal which emails have accounts.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let secret = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(secret.as_str().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Checks `password` against `phc` (or against a dummy when there is no account).
pub async fn verify(password: String, phc: Option<String>) -> Result<bool, ApiError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _enter = span.enter();
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| dummy_hash().to_owned());
        let ok = match PasswordHash::new(&phc) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        };
        ok && known
    })
    .await
    .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(phc.clone()))
            .await
            .unwrap());
        assert!(!verify("wrong horse".into(), Some(phc)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        assert!(!verify("anything".into(), None).await.unwrap());
    }
}
