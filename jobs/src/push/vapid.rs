//! VAPID (RFC 8292): the application server's P-256 key pair. Browsers subscribe with its public
//! key, and every push request carries a short-lived ES256 JWT signed with the private one, so a
//! push service accepts pushes for a subscription only from the server it was made for.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

/// How long a signed token is valid (RFC 8292 allows at most 24 hours).
const TOKEN_TTL_SECS: u64 = 12 * 3600;

/// Why a key could not be read or a token signed.
#[derive(Debug, thiserror::Error)]
pub enum VapidError {
    #[error("{0} is not base64url")]
    NotBase64(&'static str),
    #[error("the VAPID private and public keys are not a P-256 key pair")]
    NotAKeyPair,
    #[error("the VAPID key file does not hold a P-256 key (PKCS#8)")]
    BadPkcs8,
    #[error("could not sign the VAPID token")]
    Sign,
}

/// The application server's key pair.
pub struct VapidKey {
    pair: EcdsaKeyPair,
    /// The PKCS#8 document it was read from or generated as (what the key file holds).
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("VapidKey")
            .field("public_key", &self.public_key())
            .finish()
    }
}

impl VapidKey {
    /// A new random key pair.
    pub fn generate() -> Result<Self, VapidError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| VapidError::BadPkcs8)?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// The key pair in a PKCS#8 document (the key file's form).
    pub fn from_pkcs8(doc: &[u8]) -> Result<Self, VapidError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc, &rng)
            .map_err(|_| VapidError::BadPkcs8)?;
        Ok(Self {
            pair,
            pkcs8: doc.to_vec(),
        })
    }

    /// The key pair as web push tools print it: the private scalar (32 bytes) and the public
    /// point (65 bytes, uncompressed), both base64url.
    pub fn from_base64url(private: &str, public: &str) -> Result<Self, VapidError> {
        let d = URL_SAFE_NO_PAD
            .decode(private.trim().trim_end_matches('='))
            .map_err(|_| VapidError::NotBase64("the VAPID private key"))?;
        let q = URL_SAFE_NO_PAD
            .decode(public.trim().trim_end_matches('='))
            .map_err(|_| VapidError::NotBase64("the VAPID public key"))?;
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &d,
            &q,
            &rng,
        )
        .map_err(|_| VapidError::NotAKeyPair)?;
        Ok(Self {
            pair,
            pkcs8: Vec::new(),
        })
    }

    /// The PKCS#8 document of a generated or file-read key (empty for one given as raw keys).
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key, base64url (the `applicationServerKey` browsers subscribe with).
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.pair.public_key().as_ref())
    }

    /// The `Authorization` header for a push to `endpoint` (RFC 8292 §3): `vapid t=<jwt>, k=<key>`,
    /// the token's audience the endpoint's origin, its expiry `now_secs` plus 12 hours.
    pub fn authorization(
        &self,
        endpoint: &reqwest::Url,
        subject: Option<&str>,
        now_secs: u64,
    ) -> Result<String, VapidError> {
        let audience = endpoint.origin().ascii_serialization();
        let mut claims = serde_json::json!({
            "aud": audience,
            "exp": now_secs + TOKEN_TTL_SECS,
        });
        if let Some(sub) = subject {
            claims["sub"] = serde_json::Value::from(sub);
        }
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{claims}");
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| VapidError::Sign)?;
        Ok(format!(
            "vapid t={input}.{}, k={}",
            URL_SAFE_NO_PAD.encode(sig.as_ref()),
            self.public_key()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    #[test]
    fn a_token_is_signed_by_the_key_it_names_for_the_endpoints_origin() {
        let key = VapidKey::generate().unwrap();
        let again = VapidKey::from_pkcs8(key.pkcs8()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let url = reqwest::Url::parse("https://push.example.net:8443/wpush/v2/abc?x=1").unwrap();
        let header = key
            .authorization(&url, Some("mailto:ops@gonggu.kr"), 1_000)
            .unwrap();
        let rest = header.strip_prefix("vapid t=").unwrap();
        let (token, k) = rest.split_once(", k=").unwrap();
        assert_eq!(k, key.public_key());
        let (input, sig) = token.rsplit_once('.').unwrap();
        let public = URL_SAFE_NO_PAD.decode(k).unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
            .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
            .expect("a valid ES256 signature");
        let claims = input.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://push.example.net:8443");
        assert_eq!(claims["exp"], 1_000 + TOKEN_TTL_SECS);
        assert_eq!(claims["sub"], "mailto:ops@gonggu.kr");
    }

    #[test]
    fn raw_keys_must_be_a_pair() {
        // RFC 8291 Appendix A's application server key pair.
        let d = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
        let q = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
        assert_eq!(VapidKey::from_base64url(d, q).unwrap().public_key(), q);
        let other = VapidKey::generate().unwrap().public_key();
        assert!(matches!(
            VapidKey::from_base64url(d, &other),
            Err(VapidError::NotAKeyPair)
        ));
        assert!(matches!(
            VapidKey::from_base64url("!!", q),
            Err(VapidError::NotBase64(_))
        ));
    }
}
