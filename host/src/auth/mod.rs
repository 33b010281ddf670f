//! Authentication: passwords, access tokens, refresh tokens, API keys and
//! the principal a request acts as.

pub mod password;
pub mod principal;
pub mod secrets;
pub mod service;
pub mod throttle;
pub mod tokens;

pub use principal::{Principal, Role};
