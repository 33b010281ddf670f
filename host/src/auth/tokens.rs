//! Short-lived access tokens: HS256 JWTs with a `kid`, checked for
//! signature, algorithm, exp, iat, aud and iss.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ServiceError;

/// Clock skew tolerated on `exp`, in seconds.
const LEEWAY_SECS: u64 = 5;

/// Claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Expiry (seconds since epoch).
    pub exp: i64,
    /// Issued at (seconds since epoch).
    pub iat: i64,
    /// Audience.
    pub aud: String,
    /// Issuer.
    pub iss: String,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    /// Verification keys by kid: the current one and any still-accepted older ones.
    decoding: std::collections::HashMap<String, DecodingKey>,
    kid: String,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("kid", &self.kid).finish()
    }
}

impl TokenKeys {
    /// Keys from a secret of at least 32 bytes.
    pub fn new(secret: &[u8], kid: &str, issuer: &str, audience: &str, ttl_secs: u64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: [(kid.to_owned(), DecodingKey::from_secret(secret))].into(),
            kid: kid.to_owned(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(900),
        }
    }

    /// Also accepts tokens signed with `secret` under `kid` (key rotation).
    pub fn accept_previous(mut self, kid: &str, secret: &[u8]) -> Self {
        self.decoding
            .entry(kid.to_owned())
            .or_insert_with(|| DecodingKey::from_secret(secret));
        self
    }

    /// A new access token for `user_id`.
    pub fn issue(&self, user_id: &str) -> Result<String, ServiceError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_owned(),
            iat: now,
            exp: now + self.ttl_secs,
            aud: self.audience.clone(),
            iss: self.issuer.clone(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| ServiceError::Internal(e.into()))
    }

    /// The user id of a valid token; any defect is UNAUTHENTICATED.
    pub fn verify(&self, token: &str) -> Result<String, ServiceError> {
        self.claims(token).map(|c| c.sub)
    }

    /// How long a valid token stays accepted (its expiry plus the leeway);
    /// `None` for a token that is not valid now.
    pub fn expires_in(&self, token: &str) -> Option<std::time::Duration> {
        let c = self.claims(token).ok()?;
        let left = c.exp + LEEWAY_SECS as i64 + 1 - chrono::Utc::now().timestamp();
        Some(std::time::Duration::from_secs(left.max(0) as u64))
    }

    fn claims(&self, token: &str) -> Result<Claims, ServiceError> {
        let bad = |why: &str| ServiceError::Unauthenticated(format!("invalid access token: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed"))?;
        // Only HS256 is accepted; `alg: none` and key-confusion attempts fail here.
        if header.alg != Algorithm::HS256 {
            return Err(bad("unsupported algorithm"));
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|k| self.decoding.get(k))
            .ok_or_else(|| bad("unknown key id"))?;
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[&self.audience]);
        v.set_issuer(&[&self.issuer]);
        v.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
        v.leeway = LEEWAY_SECS;
        let data = jsonwebtoken::decode::<Claims>(token, key, &v).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => bad("expired"),
            _ => bad("rejected"),
        })?;
        if data.claims.iat > chrono::Utc::now().timestamp() + 60 {
            return Err(bad("issued in the future"));
        }
        Ok(data.claims)
    }
}
