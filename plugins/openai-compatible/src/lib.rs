//! The OpenAI Chat Completions protocol, as plain functions: building the
//! request body and reading the response (and its errors) into the
//! provider-neutral types. `component.rs` sends it over `wasi:http`.

use serde_json::{Value, json};

/// A message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// Text.
    pub content: String,
}

/// What to ask.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Model name.
    pub model: String,
    /// Conversation.
    pub messages: Vec<Message>,
    /// JSON Schema (text) for structured output.
    pub json_schema: Option<String>,
    /// Schema name.
    pub schema_name: Option<String>,
    /// Temperature.
    pub temperature: Option<f32>,
    /// Output cap.
    pub max_tokens: Option<u32>,
    /// `json_object` instead of `json_schema` (servers without schemas).
    pub json_mode: bool,
}

/// A completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Text.
    pub text: String,
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Completion tokens.
    pub output_tokens: u32,
    /// `stop`, `length`, `content_filter` or other.
    pub finish_reason: String,
    /// Model that answered.
    pub model: String,
}

/// A failure, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// 429; retry after this many milliseconds when known.
    RateLimited(Option<u64>),
    /// 401/403.
    Auth(String),
    /// 400/404/413/422.
    BadRequest(String),
    /// 5xx, timeouts, resets.
    Transient(String),
    /// Unreadable answer.
    InvalidOutput(String),
}

/// The request body.
pub fn body(r: &Request) -> Result<Value, Failure> {
    let mut b = json!({
        "model": r.model,
        "messages": r.messages.iter().map(|m| json!({ "role": m.role, "content": m.content })).collect::<Vec<_>>(),
    });
    if let Some(t) = r.temperature {
        b["temperature"] = json!(t);
    }
    if let Some(m) = r.max_tokens {
        b["max_tokens"] = json!(m);
    }
    if let Some(s) = &r.json_schema {
        let schema: Value = serde_json::from_str(s)
            .map_err(|e| Failure::BadRequest(format!("the JSON Schema is not JSON: {e}")))?;
        b["response_format"] = if r.json_mode {
            json!({ "type": "json_object" })
        } else {
            json!({
                "type": "json_schema",
                "json_schema": {
                    "name": schema_name(r.schema_name.as_deref()),
                    "schema": schema,
                    "strict": true,
                },
            })
        };
    }
    Ok(b)
}

/// OpenAI wants `^[a-zA-Z0-9_-]{1,64}$`.
fn schema_name(n: Option<&str>) -> String {
    let s: String = n
        .unwrap_or("answer")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() { "answer".into() } else { s }
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

fn error_message(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned())
}

/// Reads a response (status, body, retry hint in ms).
pub fn read(status: u16, body: &[u8], retry_ms: Option<u64>) -> Result<Answer, Failure> {
    match status {
        200..=299 => {}
        429 => return Err(Failure::RateLimited(retry_ms)),
        401 | 403 => return Err(Failure::Auth(error_message(body))),
        400 | 404 | 405 | 413 | 422 => return Err(Failure::BadRequest(error_message(body))),
        _ => {
            return Err(Failure::Transient(format!(
                "HTTP {status}: {}",
                error_message(body)
            )));
        }
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Failure::InvalidOutput(format!("the response is not JSON: {e}")))?;
    let choice = &v["choices"][0];
    if let Some(refusal) = choice["message"]["refusal"].as_str() {
        return Err(Failure::InvalidOutput(format!(
            "the model refused: {refusal}"
        )));
    }
    let text = choice["message"]["content"]
        .as_str()
        .ok_or_else(|| Failure::InvalidOutput("no choices[0].message.content".into()))?;
    let tokens = |k: &str| v["usage"][k].as_u64().unwrap_or(0).min(u64::from(u32::MAX)) as u32;
    Ok(Answer {
        text: text.to_owned(),
        input_tokens: tokens("prompt_tokens"),
        output_tokens: tokens("completion_tokens"),
        finish_reason: choice["finish_reason"]
            .as_str()
            .unwrap_or("other")
            .to_owned(),
        model: v["model"].as_str().unwrap_or_default().to_owned(),
    })
}

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_output_request() {
        let b = body(&Request {
            model: "gpt-4o-mini".into(),
            messages: vec![Message {
                role: "user",
                content: "hi".into(),
            }],
            json_schema: Some(r#"{"type":"object"}"#.into()),
            schema_name: Some("step general".into()),
            temperature: Some(0.0),
            max_tokens: Some(100),
            json_mode: false,
        })
        .unwrap();
        assert_eq!(b["response_format"]["type"], "json_schema");
        assert_eq!(b["response_format"]["json_schema"]["name"], "step_general");
        assert_eq!(b["response_format"]["json_schema"]["strict"], true);
        assert_eq!(b["max_tokens"], 100);
    }

    #[test]
    fn responses_and_errors() {
        let ok = br#"{"model":"m","choices":[{"message":{"content":"{}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2}}"#;
        let a = read(200, ok, None).unwrap();
        assert_eq!(
            (a.input_tokens, a.output_tokens, a.finish_reason.as_str()),
            (10, 2, "stop")
        );
        assert_eq!(
            read(429, b"", Some(1500)),
            Err(Failure::RateLimited(Some(1500)))
        );
        assert!(
            matches!(read(401, br#"{"error":{"message":"bad key"}}"#, None), Err(Failure::Auth(m)) if m == "bad key")
        );
        assert!(matches!(
            read(503, b"down", None),
            Err(Failure::Transient(_))
        ));
        assert!(matches!(
            read(200, b"{not json", None),
            Err(Failure::InvalidOutput(_))
        ));
        assert_eq!(retry_after(None, Some("2")), Some(2000));
        assert_eq!(retry_after(Some("250"), Some("2")), Some(250));
    }
}
