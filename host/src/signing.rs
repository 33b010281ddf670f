//! Short-lived signed links (page images, export downloads): an
//! HMAC-SHA256 of the link's fields, hex in the URL, checked in constant
//! time, then its expiry. A link is signed only after the caller was
//! checked against the object's organization, so following it needs no
//! token and no token is ever put into a URL.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{ServiceError, ServiceResult};

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], message: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message.as_bytes());
    mac
}

/// A key of its own for one kind of link, derived from `key`, so one
/// kind's signature can never pass for another's.
pub fn derive(key: &[u8], purpose: &str) -> [u8; 32] {
    mac(key, purpose).finalize().into_bytes().into()
}

/// The hex signature of `message` under `key`.
pub fn sign(key: &[u8], message: &str) -> String {
    hex::encode(mac(key, message).finalize().into_bytes())
}

/// What a link says of itself when it is refused.
pub struct Refusal {
    /// The signature does not match (or is not hex).
    pub invalid: &'static str,
    /// It matched, but `expires` has passed.
    pub expired: &'static str,
}

/// FORBIDDEN unless `signature` is `message`'s under `key` and `now` is not
/// past `expires`.
pub fn check(
    key: &[u8],
    message: &str,
    signature: &str,
    expires: i64,
    now: i64,
    refusal: &Refusal,
) -> ServiceResult<()> {
    let invalid = || ServiceError::forbidden(refusal.invalid);
    let signature = hex::decode(signature).map_err(|_| invalid())?;
    mac(key, message)
        .verify_slice(&signature)
        .map_err(|_| invalid())?;
    if now > expires {
        return Err(ServiceError::forbidden(refusal.expired));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO: Refusal = Refusal {
        invalid: "invalid",
        expired: "expired",
    };

    #[test]
    fn a_signature_holds_for_its_message_and_key_until_it_expires() {
        let key = [3u8; 32];
        let sig = sign(&key, "doc|1|800|100");
        assert!(check(&key, "doc|1|800|100", &sig, 100, 100, &NO).is_ok());
        let refused = |r: ServiceResult<()>| match r {
            Err(ServiceError::Forbidden(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(check(&key, "doc|1|800|100", &sig, 100, 101, &NO)),
            "expired"
        );
        assert_eq!(
            refused(check(&key, "doc|2|800|100", &sig, 100, 0, &NO)),
            "invalid"
        );
        assert_eq!(
            refused(check(&[4u8; 32], "doc|1|800|100", &sig, 100, 0, &NO)),
            "invalid"
        );
        assert_eq!(
            refused(check(&key, "doc|1|800|100", "zz", 100, 0, &NO)),
            "invalid"
        );
        assert_ne!(derive(&key, "a"), derive(&key, "b"));
    }
}
