//! The data.go.kr service key: decoded once, encoded exactly once, never shown.
//!
//! The portal hands out the key twice, "Encoding" (`abc%2Bdef%3D%3D`) and "Decoding" (`abc+def==`).
//! Clients that encode the already-encoded one send `%252B` and the gateway answers error 30. Here
//! the configured key is percent-decoded once (a no-op on the decoded form), then percent-encoded
//! exactly once when a URL is built; `+` is sent as `%2B`, never raw (the gateway would read a space).

use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What stays unescaped in a query value: RFC 3986 unreserved characters only.
pub const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a query value (anything but unreserved characters).
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// A service key. `Debug` shows `ServiceKey(***)`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceKey {
    decoded: String,
}

/// The configured key was not text after percent-decoding.
#[derive(Debug, thiserror::Error)]
#[error("the service key is not valid UTF-8 once percent-decoded")]
pub struct InvalidServiceKey;

impl ServiceKey {
    /// Takes the key as configured, in either the portal's encoded or decoded form.
    pub fn new(configured: &str) -> Result<Self, InvalidServiceKey> {
        let decoded = percent_decode_str(configured.trim())
            .decode_utf8()
            .map_err(|_| InvalidServiceKey)?;
        Ok(Self {
            decoded: decoded.into_owned(),
        })
    }

    /// The key percent-encoded once, ready for a query string.
    pub fn encoded(&self) -> String {
        encode_query_value(&self.decoded)
    }

    /// The decoded key (for the mock's check; do not log it).
    pub fn expose_decoded(&self) -> &str {
        &self.decoded
    }

    /// True when no key was configured (calls go out without one, as to the mock).
    pub fn is_empty(&self) -> bool {
        self.decoded.is_empty()
    }

    /// Replaces every appearance of the key (decoded or encoded) in `text` with `***`.
    pub fn redact(&self, text: &str) -> String {
        if self.decoded.is_empty() {
            return text.to_owned();
        }
        text.replace(&self.encoded(), "***")
            .replace(&self.decoded, "***")
    }
}

impl fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECODED: &str = "a1B2+c3/d4==";
    const ENCODED: &str = "a1B2%2Bc3%2Fd4%3D%3D";

    #[test]
    fn the_encoded_and_the_decoded_key_are_sent_the_same_way() {
        assert_eq!(ServiceKey::new(DECODED).expect("key").encoded(), ENCODED);
        assert_eq!(ServiceKey::new(ENCODED).expect("key").encoded(), ENCODED);
    }

    #[test]
    fn a_plus_is_never_sent_raw() {
        assert!(!ServiceKey::new(DECODED)
            .expect("key")
            .encoded()
            .contains('+'));
    }

    #[test]
    fn the_key_never_shows_in_debug_output_or_redacted_text() {
        let key = ServiceKey::new(DECODED).expect("key");
        assert_eq!(format!("{key:?}"), "ServiceKey(***)");
        let url = format!("http://x/y?serviceKey={ENCODED}&pageNo=1 raw {DECODED}");
        let redacted = key.redact(&url);
        assert!(
            !redacted.contains(ENCODED) && !redacted.contains(DECODED),
            "{redacted}"
        );
        assert_eq!(redacted, "http://x/y?serviceKey=***&pageNo=1 raw ***");
    }
}
