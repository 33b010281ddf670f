//! What the first-party LLM adapters share, as plain Rust: the answer and
//! failure types every provider's responses are read into, the mapping of
//! HTTP statuses to failures, error messages from JSON error bodies, and
//! Retry-After parsing. Each adapter keeps only its provider's request and
//! response shapes.

use serde_json::Value;

/// Why an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Natural end (or the structured-output call).
    Stop,
    /// The output cap.
    Length,
    /// The provider's filter.
    ContentFilter,
    /// Anything else.
    Other,
}

/// A completion, provider-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Text (JSON text for structured output).
    pub text: String,
    /// Tokens sent.
    pub input_tokens: u32,
    /// Tokens received.
    pub output_tokens: u32,
    /// Why it ended.
    pub finish: Finish,
    /// Model that answered.
    pub model: String,
}

/// A failure, classified as the contract's `llm-error`.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// 429; retry after this many milliseconds when known.
    RateLimited(Option<u64>),
    /// 401/403.
    Auth(String),
    /// 400/404/405/413/422.
    BadRequest(String),
    /// 5xx (529 overloaded included), timeouts, resets.
    Transient(String),
    /// An answer that cannot be read.
    InvalidOutput(String),
}

/// `error.message` of a JSON error body, else the body's start.
pub fn error_message(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned())
}

/// The failure an HTTP status means (`Ok` for 2xx).
pub fn check_status(status: u16, body: &[u8], retry_ms: Option<u64>) -> Result<(), Failure> {
    match status {
        200..=299 => Ok(()),
        429 => Err(Failure::RateLimited(retry_ms)),
        401 | 403 => Err(Failure::Auth(error_message(body))),
        400 | 404 | 405 | 413 | 422 => Err(Failure::BadRequest(error_message(body))),
        _ => Err(Failure::Transient(format!(
            "HTTP {status}: {}",
            error_message(body)
        ))),
    }
}

/// Milliseconds to wait, from `retry-after-ms` or `retry-after` (seconds).
pub fn retry_after(retry_after_ms: Option<&str>, retry_after: Option<&str>) -> Option<u64> {
    if let Some(ms) = retry_after_ms.and_then(|v| v.trim().parse::<f64>().ok()) {
        return Some(ms.max(0.0) as u64);
    }
    retry_after
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|s| (s.max(0.0) * 1000.0) as u64)
}

/// A JSON body, or the failure of an unreadable answer.
pub fn json_body(body: &[u8]) -> Result<Value, Failure> {
    serde_json::from_slice(body)
        .map_err(|e| Failure::InvalidOutput(format!("the response is not JSON: {e}")))
}

/// A token count from a usage object (0 when absent).
pub fn tokens(v: &Value) -> u32 {
    v.as_u64().unwrap_or(0).min(u64::from(u32::MAX)) as u32
}

/// A JSON Schema given as text, parsed (a bad one is the caller's error).
pub fn schema(text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text)
        .map_err(|e| Failure::BadRequest(format!("the JSON Schema is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_hints() {
        assert_eq!(check_status(200, b"", None), Ok(()));
        assert_eq!(
            check_status(429, b"", Some(5)),
            Err(Failure::RateLimited(Some(5)))
        );
        assert_eq!(
            check_status(401, br#"{"error":{"message":"bad key"}}"#, None),
            Err(Failure::Auth("bad key".into()))
        );
        assert!(matches!(
            check_status(529, b"overloaded", None),
            Err(Failure::Transient(_))
        ));
        assert!(matches!(
            check_status(422, b"x", None),
            Err(Failure::BadRequest(_))
        ));
        assert_eq!(retry_after(None, Some("2")), Some(2000));
        assert_eq!(retry_after(Some("250"), Some("2")), Some(250));
        assert_eq!(retry_after(None, None), None);
    }
}
