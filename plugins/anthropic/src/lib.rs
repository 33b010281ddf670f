//! The Anthropic Messages protocol, as plain functions: the request body
//! (structured output as a forced tool call whose `input_schema` is the
//! JSON Schema) and the reading of responses and errors.

use serde_json::{Value, json};

/// Protocol version sent in `anthropic-version`.
pub const API_VERSION: &str = "2023-06-01";
/// Output cap when the request sets none (the API requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// Name of the tool that carries structured output.
pub const TOOL: &str = "record_answer";

/// What to ask.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Model.
    pub model: String,
    /// System prompt (all system messages joined).
    pub system: String,
    /// `(role, text)` of user/assistant messages.
    pub messages: Vec<(&'static str, String)>,
    /// JSON Schema text.
    pub json_schema: Option<String>,
    /// Temperature.
    pub temperature: Option<f32>,
    /// Output cap.
    pub max_tokens: Option<u32>,
}

/// A completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Text (the tool input as JSON for structured output).
    pub text: String,
    /// Input tokens.
    pub input_tokens: u32,
    /// Output tokens.
    pub output_tokens: u32,
    /// `stop`, `length` or `other`.
    pub finish: &'static str,
    /// Model.
    pub model: String,
}

/// A classified failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// 429.
    RateLimited(Option<u64>),
    /// 401/403.
    Auth(String),
    /// 400/404/413.
    BadRequest(String),
    /// 5xx, 529 overloaded.
    Transient(String),
    /// Unreadable.
    InvalidOutput(String),
}

/// The request body.
pub fn body(r: &Request) -> Result<Value, Failure> {
    let mut b = json!({
        "model": r.model,
        "max_tokens": r.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": r.messages.iter().map(|(role, text)| json!({ "role": role, "content": text })).collect::<Vec<_>>(),
    });
    if !r.system.is_empty() {
        b["system"] = json!(r.system);
    }
    if let Some(t) = r.temperature {
        b["temperature"] = json!(t);
    }
    if let Some(s) = &r.json_schema {
        let schema: Value = serde_json::from_str(s)
            .map_err(|e| Failure::BadRequest(format!("the JSON Schema is not JSON: {e}")))?;
        b["tools"] = json!([{
            "name": TOOL,
            "description": "Record the answer, exactly in this schema.",
            "input_schema": schema,
        }]);
        b["tool_choice"] = json!({ "type": "tool", "name": TOOL });
    }
    Ok(b)
}

fn error_message(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned())
}

/// Reads a response.
pub fn read(status: u16, body: &[u8], retry_ms: Option<u64>) -> Result<Answer, Failure> {
    match status {
        200..=299 => {}
        429 => return Err(Failure::RateLimited(retry_ms)),
        401 | 403 => return Err(Failure::Auth(error_message(body))),
        400 | 404 | 413 | 422 => return Err(Failure::BadRequest(error_message(body))),
        _ => {
            return Err(Failure::Transient(format!(
                "HTTP {status}: {}",
                error_message(body)
            )));
        }
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Failure::InvalidOutput(format!("the response is not JSON: {e}")))?;
    let blocks = v["content"]
        .as_array()
        .ok_or_else(|| Failure::InvalidOutput("no content".into()))?;
    // The tool call carries structured output; else the text blocks.
    let text = match blocks.iter().find(|b| b["type"] == "tool_use") {
        Some(t) => t["input"].to_string(),
        None => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
    };
    let tokens = |k: &str| v["usage"][k].as_u64().unwrap_or(0).min(u64::from(u32::MAX)) as u32;
    Ok(Answer {
        text,
        input_tokens: tokens("input_tokens"),
        output_tokens: tokens("output_tokens"),
        finish: match v["stop_reason"].as_str() {
            Some("end_turn" | "tool_use" | "stop_sequence") => "stop",
            Some("max_tokens") => "length",
            _ => "other",
        },
        model: v["model"].as_str().unwrap_or_default().to_owned(),
    })
}

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_output_is_a_forced_tool_call() {
        let b = body(&Request {
            model: "claude".into(),
            system: "sys".into(),
            messages: vec![("user", "hi".into())],
            json_schema: Some(r#"{"type":"object"}"#.into()),
            temperature: None,
            max_tokens: None,
        })
        .unwrap();
        assert_eq!(b["tool_choice"]["name"], TOOL);
        assert_eq!(b["tools"][0]["input_schema"]["type"], "object");
        assert_eq!(b["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(b["system"], "sys");
    }

    #[test]
    fn responses_and_errors() {
        let ok = br#"{"model":"claude-x","stop_reason":"tool_use","usage":{"input_tokens":7,"output_tokens":3},
            "content":[{"type":"tool_use","name":"record_answer","input":{"a":1}}]}"#;
        let a = read(200, ok, None).unwrap();
        assert_eq!(a.text, r#"{"a":1}"#);
        assert_eq!((a.input_tokens, a.output_tokens, a.finish), (7, 3, "stop"));
        assert_eq!(
            read(429, b"", Some(1000)),
            Err(Failure::RateLimited(Some(1000)))
        );
        assert!(matches!(
            read(529, b"overloaded", None),
            Err(Failure::Transient(_))
        ));
        assert!(matches!(
            read(401, br#"{"error":{"message":"invalid x-api-key"}}"#, None),
            Err(Failure::Auth(_))
        ));
    }
}
