//! argon2id password hashing (PHC strings). Callers run these on the login
//! guard's hashing threads (a hash takes tens of milliseconds of CPU),
//! never on the async runtime.
//!
//! Each thread hashes in one memory block of its own, kept for its next
//! hash: argon2's ~19 MiB are then allocated once per thread instead of once
//! per hash (the allocator would otherwise keep several freed blocks
//! resident per thread; measured here: ~190 MiB for two threads).

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};

use crate::error::ServiceError;

thread_local! {
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

fn internal(what: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(anyhow::anyhow!("{what}: {e}"))
}

/// Runs argon2 with `params` into `out`, in this thread's memory block.
fn run(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), ServiceError> {
    let blocks = params.block_count();
    // A stored hash decides its own cost; refuse one no sane setting makes
    // (256 MiB), rather than allocate whatever a row says.
    if blocks > 256 * 1024 {
        return Err(internal("stored hash", "memory cost above 256 MiB"));
    }
    let argon = Argon2::new(algorithm, version, params);
    MEMORY.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() < blocks {
            m.resize(blocks, Block::default());
        }
        argon
            .hash_password_into_with_memory(password, salt, out, &mut m[..blocks])
            .map_err(|e| internal("argon2", e))
    })
}

/// Hashes a password into a PHC string (argon2id, default parameters,
/// random salt).
pub fn hash(password: &str) -> Result<String, ServiceError> {
    let params = Params::default();
    let salt = Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    run(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        password.as_bytes(),
        salt.as_ref(),
        &mut out,
    )?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| internal("argon2 params", e))?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| internal("argon2 output", e))?),
    };
    Ok(phc.to_string())
}

/// True when `password` matches the PHC string `phc` (compared in constant time).
pub fn verify(password: &str, phc: &str) -> Result<bool, ServiceError> {
    let parsed = PasswordHash::new(phc).map_err(|e| internal("stored hash unreadable", e))?;
    let algorithm =
        Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| internal("stored hash", e))?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|e| internal("stored hash", e))?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(|e| internal("stored hash", e))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(internal("stored hash", "no salt or no output"));
    };
    let mut out = vec![0u8; expected.len()];
    run(
        algorithm,
        version,
        params,
        password.as_bytes(),
        salt.as_ref(),
        &mut out,
    )?;
    let got = Output::new(&out).map_err(|e| internal("argon2 output", e))?;
    // `Output`'s equality is constant-time.
    Ok(got == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[test]
    fn hashes_verify_both_ways_with_the_reference_implementation() {
        let phc = hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse", &phc).unwrap());
        assert!(!verify("wrong horse", &phc).unwrap());
        // Our strings are ordinary PHC strings …
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &PasswordHash::new(&phc).unwrap())
                .is_ok()
        );
        // … and hashes made the ordinary way (existing rows) still verify.
        use argon2::PasswordHasher;
        let theirs = Argon2::default()
            .hash_password(b"old password")
            .unwrap()
            .to_string();
        assert!(verify("old password", &theirs).unwrap());
        assert!(!verify("old passwords", &theirs).unwrap());
        assert!(verify("x", "not a phc string").is_err());
    }
}
