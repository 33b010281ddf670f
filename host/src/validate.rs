//! Input rules shared by services, each failing with a precise BAD_USER_INPUT.
//!
//! [`text`] is the one check of every piece of user text that is stored
//! (names, notes, feedback, filenames, form field texts, reviewer and
//! reference values, plugin settings): no control characters, except line
//! feeds and tabs where the text may span lines. A NUL in particular would
//! be refused by PostgreSQL's text columns mid-write.

use serde_json::Value;

use crate::error::{ServiceError, ServiceResult};

/// Whether a stored text may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Names, filenames, options, settings: no control character at all.
    One,
    /// Notes, feedback, descriptions, values: line feeds and tabs allowed.
    Many,
}

/// Refuses a text with a control character (Unicode Cc: NUL, the rest of
/// C0, DEL, C1), `\n` and `\t` aside in [`Lines::Many`] text; the error
/// names `field` and the character.
pub fn text(raw: &str, field: &str, lines: Lines) -> ServiceResult<()> {
    let allowed = |c: char| lines == Lines::Many && (c == '\n' || c == '\t');
    match raw.chars().find(|c| c.is_control() && !allowed(*c)) {
        None => Ok(()),
        Some(c) => Err(ServiceError::bad_input(format!(
            "{field} contains a control character (U+{:04X}){}",
            u32::from(c),
            match lines {
                Lines::Many => "; only line breaks (\\n) and tabs are allowed",
                Lines::One => "",
            }
        ))),
    }
}

/// [`text`] over every string of a JSON value, object keys included.
pub fn json_text(v: &Value, field: &str, lines: Lines) -> ServiceResult<()> {
    match v {
        Value::String(s) => text(s, field, lines),
        Value::Array(items) => items.iter().try_for_each(|i| json_text(i, field, lines)),
        Value::Object(m) => m.iter().try_for_each(|(k, v)| {
            text(k, field, Lines::One)?;
            json_text(v, field, lines)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

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
    text(&e, "email", Lines::One)?;
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
                && !e.chars().any(char::is_whitespace)
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
    text(n, field, Lines::One)?;
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
        Some(d) => {
            text(d, "description", Lines::Many)?;
            Ok(Some(d.trim().to_owned()))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_characters_are_refused_naming_the_field() {
        assert!(text("plain text, é, 中文", "note", Lines::One).is_ok());
        assert!(text("two\nlines\tand a tab", "note", Lines::Many).is_ok());
        for (raw, lines) in [
            ("nul\0", Lines::Many),
            ("bell\u{7}", Lines::Many),
            ("carriage\rreturn", Lines::Many),
            ("del\u{7f}", Lines::Many),
            ("c1\u{85}", Lines::Many),
            ("line\nbreak", Lines::One),
            ("tab\t", Lines::One),
        ] {
            let e = text(raw, "the note", lines).expect_err(raw);
            assert!(
                matches!(&e, ServiceError::BadInput(m) if m.starts_with("the note contains a control character")),
                "{raw:?}: {e}"
            );
        }
        assert!(json_text(&json!({"a": ["x", {"b": "y\ny"}]}), "values", Lines::Many).is_ok());
        assert!(json_text(&json!({"a": ["x", {"b": "\0"}]}), "values", Lines::Many).is_err());
        assert!(json_text(&json!({"a\0": 1}), "values", Lines::Many).is_err());
        assert!(name("ok\0", "name").is_err());
        assert!(description(Some("fine\n\0")).is_err());
        assert!(email("a\0b@example.org").is_err());
    }
}
