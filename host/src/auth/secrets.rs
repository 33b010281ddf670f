//! Random bearer secrets (refresh tokens, API keys) and how they are stored:
//! only a SHA-256 of a 256-bit random secret is kept, which is enough for
//! secrets of that entropy and allows lookup by hash.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh secret: `prefix` + 43 url-safe characters (256 random bits).
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Hex SHA-256 of a secret, the stored form.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Prefix of API keys, so they are recognisable in logs and secret scanners.
pub const API_KEY_PREFIX: &str = "evs_";
/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "evr_";
