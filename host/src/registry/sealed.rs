//! Secrets sealed at rest: XChaCha20-Poly1305 under the server's encryption
//! key, with the owning object's id as associated data, so a sealed value
//! copied onto another project does not open.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const VERSION: &str = "v1:";

/// Why a sealed value does not open.
#[derive(Debug, thiserror::Error)]
#[error("sealed value cannot be opened: {0}")]
pub struct OpenError(&'static str);

/// Seals `plaintext` for the object `aad`.
pub fn seal(key: &[u8; 32], aad: &str, plaintext: &[u8]) -> String {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; 24];
    rand::rng().fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        )
        // Encryption fails only for messages beyond 256 GiB.
        .unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    format!("{VERSION}{}", STANDARD.encode(out))
}

/// Opens a value sealed by [`seal`] for the object `aad`.
pub fn open(key: &[u8; 32], aad: &str, sealed: &str) -> Result<Vec<u8>, OpenError> {
    let b64 = sealed
        .strip_prefix(VERSION)
        .ok_or(OpenError("unknown format"))?;
    let raw = STANDARD.decode(b64).map_err(|_| OpenError("not base64"))?;
    if raw.len() < 24 + 16 {
        return Err(OpenError("too short"));
    }
    let (nonce, ct) = raw.split_at(24);
    let nonce: [u8; 24] = nonce.try_into().map_err(|_| OpenError("too short"))?;
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: ct,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| OpenError("wrong key or tampered"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding_to_the_object() {
        let key = [7u8; 32];
        let s = seal(&key, "project-1", b"sk-secret");
        assert!(!s.contains("sk-secret"));
        assert_eq!(open(&key, "project-1", &s).unwrap(), b"sk-secret");
        assert!(open(&key, "project-2", &s).is_err(), "other object");
        assert!(open(&[8u8; 32], "project-1", &s).is_err(), "other key");
        let mut tampered = s.clone();
        tampered.pop();
        tampered.push('A');
        assert!(open(&key, "project-1", &tampered).is_err() || tampered == s);
        assert_ne!(
            seal(&key, "project-1", b"x"),
            seal(&key, "project-1", b"x"),
            "fresh nonce"
        );
    }
}
