//! Input rules shared by services, each failing with a precise BAD_USER_INPUT.

use crate::error::{ServiceError, ServiceResult};

/// Longest accepted email (RFC 5321 path limit).
pub const MAX_EMAIL: usize = 254;
/// Longest accepted password, in bytes (argon2 input stays cheap).
pub const MAX_PASSWORD: usize = 1024;
/// Shortest accepted password, in characters.
pub const MIN_PASSWORD: usize = 8;
/// Longest name of anything.
pub const MAX_NAME: usize = 200;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 10_000;

/// Normalises and checks an email address.
pub fn email(raw: &str) -> ServiceResult<String> {
    let e = raw.trim().to_lowercase();
    if e.len() > MAX_EMAIL {
        return Err(ServiceError::bad_input(format!(
            "email is longer than {MAX_EMAIL} characters"
        )));
    }
    let valid = match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if !valid {
        return Err(ServiceError::bad_input("email is not a valid address"));
    }
    Ok(e)
}

/// Checks a new password's length.
pub fn password(p: &str) -> ServiceResult<()> {
    if p.chars().count() < MIN_PASSWORD {
        return Err(ServiceError::bad_input(format!(
            "password must have at least {MIN_PASSWORD} characters"
        )));
    }
    if p.len() > MAX_PASSWORD {
        return Err(ServiceError::bad_input(format!(
            "password is longer than {MAX_PASSWORD} bytes"
        )));
    }
    Ok(())
}

/// A required name: trimmed, non-empty, bounded, no control characters.
pub fn name(raw: &str, field: &str) -> ServiceResult<String> {
    let n = raw.trim();
    if n.is_empty() {
        return Err(ServiceError::bad_input(format!(
            "{field} must not be empty"
        )));
    }
    if n.chars().count() > MAX_NAME {
        return Err(ServiceError::bad_input(format!(
            "{field} is longer than {MAX_NAME} characters"
        )));
    }
    if n.chars().any(char::is_control) {
        return Err(ServiceError::bad_input(format!(
            "{field} contains control characters"
        )));
    }
    Ok(n.to_owned())
}

/// An optional name; blank counts as absent.
pub fn optional_name(raw: Option<&str>, field: &str) -> ServiceResult<Option<String>> {
    match raw {
        Some(r) if !r.trim().is_empty() => name(r, field).map(Some),
        _ => Ok(None),
    }
}

/// An optional description, bounded.
pub fn description(raw: Option<&str>) -> ServiceResult<Option<String>> {
    match raw {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(ServiceError::bad_input(format!(
            "description is longer than {MAX_DESCRIPTION} characters"
        ))),
        Some(d) if d.trim().is_empty() => Ok(None),
        Some(d) => Ok(Some(d.trim().to_owned())),
        None => Ok(None),
    }
}
