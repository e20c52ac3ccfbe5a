//! Message encryption for Web Push (RFC 8291, the `aes128gcm` content coding of RFC 8188): the
//! payload is readable only by the browser holding the subscription's private key and auth
//! secret, never by the push service that carries it.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, ECDH_P256};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

/// The record size written in the header: the whole message is one record, well under it.
const RECORD_SIZE: u32 = 4096;
/// The longest plaintext one record holds (the record size less the tag and the delimiter).
pub const MAX_PLAINTEXT: usize = RECORD_SIZE as usize - 16 - 1;

/// Why a message could not be encrypted.
#[derive(Debug, thiserror::Error)]
pub enum EceError {
    #[error("the subscription's p256dh is not a P-256 public key")]
    BadPublicKey,
    #[error("the subscription's auth secret is not 16 bytes")]
    BadAuth,
    #[error("the payload is longer than one record ({0} bytes)")]
    TooLong(usize),
    #[error("the cryptography library refused")]
    Crypto,
}

impl From<ring::error::Unspecified> for EceError {
    fn from(_: ring::error::Unspecified) -> Self {
        EceError::Crypto
    }
}

/// HKDF output of `n` bytes (ring types each length).
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[&[u8]], n: usize) -> Result<Vec<u8>, EceError> {
    let mut out = vec![0u8; n];
    prk.expand(info, Len(n))?.fill(&mut out)?;
    Ok(out)
}

/// The derived content-encryption key and nonce (RFC 8291 §3.4, RFC 8188 §2.2-2.3).
fn derive(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), EceError> {
    let prk_key = hkdf::Salt::new(hkdf::HKDF_SHA256, auth).extract(ecdh_secret);
    let ikm = expand(&prk_key, &[b"WebPush: info\0", ua_public, as_public], 32)?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&ikm);
    let cek = expand(&prk, &[b"Content-Encoding: aes128gcm\0"], 16)?;
    let nonce = expand(&prk, &[b"Content-Encoding: nonce\0"], 12)?;
    Ok((cek, nonce))
}

/// Encrypts `plaintext` for the browser whose public key is `ua_public` (65 bytes, uncompressed)
/// and auth secret `auth` (16 bytes): the body of the push request.
pub fn encrypt(ua_public: &[u8], auth: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EceError> {
    if auth.len() != 16 {
        return Err(EceError::BadAuth);
    }
    if ua_public.len() != 65 || ua_public[0] != 4 {
        return Err(EceError::BadPublicKey);
    }
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(EceError::TooLong(plaintext.len()));
    }
    let rng = SystemRandom::new();
    // A fresh sender key and salt per message (RFC 8291 §3.1, RFC 8188 §2.1).
    let as_private = EphemeralPrivateKey::generate(&ECDH_P256, &rng)?;
    let as_public = as_private.compute_public_key()?.as_ref().to_vec();
    let mut salt = [0u8; 16];
    rng.fill(&mut salt)?;
    let peer = UnparsedPublicKey::new(&ECDH_P256, ua_public);
    agreement::agree_ephemeral(as_private, &peer, |secret| {
        seal(secret, auth, ua_public, &as_public, &salt, plaintext)
    })
    .map_err(|_| EceError::BadPublicKey)?
}

/// The message from its ECDH secret on: one record (the plaintext, the last-record delimiter,
/// no padding) under the header `salt | rs | idlen | as_public`.
fn seal(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8; 16],
    plaintext: &[u8],
) -> Result<Vec<u8>, EceError> {
    let (cek, nonce) = derive(ecdh_secret, auth, ua_public, as_public, salt)?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &cek)?);
    let mut record = Vec::with_capacity(plaintext.len() + 17);
    record.extend_from_slice(plaintext);
    record.push(2);
    // The first record's nonce is the derived one (XOR its sequence number, 0).
    key.seal_in_place_append_tag(
        Nonce::try_assume_unique_for_key(&nonce)?,
        Aad::empty(),
        &mut record,
    )?;
    let idlen = u8::try_from(as_public.len()).map_err(|_| EceError::Crypto)?;
    let mut body = Vec::with_capacity(21 + as_public.len() + record.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(idlen);
    body.extend_from_slice(as_public);
    body.extend_from_slice(&record);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    /// RFC 8291 §5 and Appendix A: from the example's ECDH secret, keys and salt to its body,
    /// byte for byte (a self-consistent but wrong derivation could not pass this).
    #[test]
    fn a_message_seals_to_the_rfc_8291_example() {
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let body = seal(
            &b64("kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs"),
            &b64("BTBZMqHH6r4Tts7J_aSIgg"),
            &b64("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"),
            &b64("BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"),
            &salt,
            b"When I grow up, I want to be a watermelon",
        )
        .unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml\
             mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT\
             pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn bad_keys_and_long_payloads_are_refused() {
        let ua = b64("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4");
        let auth = [7u8; 16];
        assert!(matches!(
            encrypt(&ua, &auth[..15], b"x"),
            Err(EceError::BadAuth)
        ));
        assert!(matches!(
            encrypt(&ua[..64], &auth, b"x"),
            Err(EceError::BadPublicKey)
        ));
        let mut off_curve = ua.clone();
        off_curve[64] ^= 1;
        assert!(matches!(
            encrypt(&off_curve, &auth, b"x"),
            Err(EceError::BadPublicKey)
        ));
        let long = vec![b'a'; MAX_PLAINTEXT + 1];
        assert!(matches!(
            encrypt(&ua, &auth, &long),
            Err(EceError::TooLong(_))
        ));
        let body = encrypt(&ua, &auth, b"hello").unwrap();
        assert_eq!(body.len(), 16 + 4 + 1 + 65 + 5 + 1 + 16);
        assert_eq!(body[20], 65);
    }
}
