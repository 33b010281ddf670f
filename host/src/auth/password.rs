//! argon2id password hashing, always off the async runtime (a hash takes
//! tens of milliseconds of CPU).

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

use crate::error::ServiceError;

/// Hashes a password into a PHC string (argon2id, random salt).
pub async fn hash(password: String) -> Result<String, ServiceError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!("argon2 hash: {e}")))
    })
    .await
    .map_err(|e| ServiceError::Internal(e.into()))?
}

/// True when `password` matches the PHC string `phc`.
pub async fn verify(password: String, phc: String) -> Result<bool, ServiceError> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&phc)
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!("stored hash unreadable: {e}")))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| ServiceError::Internal(e.into()))?
}
